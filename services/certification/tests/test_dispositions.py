"""The food-processing rectification (扶持一批、整頓一批、關閉一批): one current disposition per
enterprise, each new decision a PATCH kept in the history with its date, and the statistics
of the dispositions on a date."""

import asyncio
import csv
import io
from typing import Any

import pytest

from certification.tests.conftest import make_credit_code
from kit.testing import Harness, xlsx_values
from kit.xlsxio import XLSX_MEDIA_TYPE

URL = "/api/v1/food-dispositions"
BASE: dict[str, Any] = {
    "enterprise_credit_code": make_credit_code(1),
    "enterprise_name": "銅山縣某米面加工廠",
    "county_code": "320323",
    "licence_number": "QS320301010001",
    "disposition": "rectifying",
    "decided_on": "2008-03-01",
    "deadline": "2008-06-30",
    "reason": "生產場所衛生條件不達標",
}


async def _create(service: Harness, payload: dict[str, Any]) -> dict[str, Any]:
    response = await service.client().post(URL, json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _patch(service: Harness, item: dict[str, Any], change: dict[str, Any]) -> Any:
    client = service.client()
    url = f"{URL}/{item['id']}"
    etag = (await client.get(url)).headers["ETag"]
    return await client.patch(url, json=change, headers={"If-Match": etag})


async def test_create_answers_location_etag_and_labels(service: Harness) -> None:
    response = await service.client().post(URL, json=BASE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert body["disposition"] == "rectifying"
    assert body["disposition_label"] == "整頓"
    assert body["deadline"] == "2008-06-30"
    fetched = await service.client().get(response.headers["Location"])
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert fetched.json()["licence_number"] == "QS320301010001"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"disposition": "abolished"}, "disposition"),
        ({"deadline": None}, "deadline"),
        ({"deadline": "2008-02-01"}, "deadline"),
        ({"disposition": "supported"}, "deadline"),
        ({"decided_on": "2999-01-01"}, "decided_on"),
        ({"county_code": "110101"}, "county_code"),
        ({"licence_number": "QS3203"}, "licence_number"),
        ({"enterprise_credit_code": "913203"}, "enterprise_credit_code"),
        ({"reason": ""}, "reason"),
    ],
)
async def test_bad_input_names_the_field(
    service: Harness, change: dict[str, Any], field: str
) -> None:
    response = await service.client().post(URL, json=BASE | change)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await service.client().get(URL)).json()["items"] == []


async def test_one_current_disposition_per_enterprise(service: Harness) -> None:
    client = service.client()
    await _create(service, BASE)
    again = await client.post(URL, json=BASE | {"disposition": "closed", "deadline": None})
    assert again.status_code == 409
    assert again.json()["field"] == "enterprise_credit_code"


async def test_concurrent_creates_for_one_enterprise_store_one(service: Harness) -> None:
    client = service.client()
    responses = await asyncio.gather(
        client.post(URL, json=BASE), client.post(URL, json=BASE | {"reason": "另一份"})
    )
    assert sorted(r.status_code for r in responses) == [201, 409]


async def test_idempotency_key_replays_the_first_create(service: Harness) -> None:
    client = service.client()
    headers = {"Idempotency-Key": "disposition-1"}
    first = await client.post(URL, json=BASE, headers=headers)
    again = await client.post(URL, json=BASE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


async def test_a_new_decision_is_a_patch_kept_in_history_with_an_event(
    service: Harness,
) -> None:
    client = service.client()
    item = await _create(service, BASE)
    url = f"{URL}/{item['id']}"
    missing = await client.patch(url, json={"disposition": "closed", "reason": "x"})
    assert missing.status_code == 428
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"disposition": "closed", "decided_on": "2008-02-01", "reason": "早於整頓"}, "decided_on"),
        ({"disposition": "rectifying", "reason": "x", "deadline": None}, "deadline"),
        ({"disposition": "supported", "decided_on": "2008-07-01"}, "reason"),
        ({"disposition": "closed", "deadline": "2009-01-01", "reason": "x"}, "deadline"),
    ]
    for change, field in refusals:
        refused = await _patch(service, item, change)
        assert refused.status_code == 422, (change, refused.text)
        assert field in [error["field"] for error in refused.json()["errors"]]
    done = await _patch(
        service,
        item,
        {"disposition": "supported", "decided_on": "2008-07-01", "reason": "整頓合格, 扶持"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["disposition"] == "supported"
    assert done.json()["deadline"] is None
    assert done.json()["reason"] == "整頓合格, 扶持"
    history = (await client.get(f"{url}/history")).json()["items"]
    assert [entry["action"] for entry in history] == ["created", "decided"]
    assert history[1]["before"] == {
        "disposition": "rectifying",
        "decided_on": "2008-03-01",
        "deadline": "2008-06-30",
        "reason": "生產場所衛生條件不達標",
    }
    assert history[1]["after"]["disposition"] == "supported"
    assert history[1]["reason"] == "整頓合格, 扶持"
    events = (
        await service.client(scopes=["events:read", "certificates:read"]).get(
            "/api/v1/events", params={"limit": 100}
        )
    ).json()["items"]
    assert [(e["type"], e["data"]["from"], e["data"]["to"]) for e in events] == [
        ("disposition.changed", None, "rectifying"),
        ("disposition.changed", "rectifying", "supported"),
    ]
    assert events[1]["data"]["decided_on"] == "2008-07-01"


async def test_a_correction_edits_the_current_decision_without_an_event(
    service: Harness,
) -> None:
    client = service.client()
    item = await _create(service, BASE)
    done = await _patch(
        service, item, {"deadline": "2008-09-30", "enterprise_name": "新名", "reason": "更正"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["deadline"] == "2008-09-30"
    assert done.json()["reason"] == BASE["reason"]
    history = (await client.get(f"{URL}/{item['id']}/history")).json()["items"]
    assert history[-1]["action"] == "updated"
    assert history[-1]["after"] == {"enterprise_name": "新名", "deadline": "2008-09-30"}
    events = (
        await service.client(scopes=["events:read", "certificates:read"]).get(
            "/api/v1/events", params={"limit": 100}
        )
    ).json()["items"]
    assert len(events) == 1


async def test_county_binding_and_filters(service: Harness) -> None:
    await _create(service, BASE)
    other = await _create(
        service,
        BASE
        | {
            "enterprise_credit_code": make_credit_code(2),
            "county_code": "320302",
            "disposition": "closed",
            "deadline": None,
            "licence_number": None,
        },
    )
    bound = service.client(county_codes=["320302"])
    listed = (await bound.get(URL)).json()["items"]
    assert [item["id"] for item in listed] == [other["id"]]
    refused = await bound.post(URL, json=BASE | {"enterprise_credit_code": make_credit_code(3)})
    assert refused.status_code == 403
    mine = await _create(service, BASE | {"enterprise_credit_code": make_credit_code(4)})
    assert (await bound.get(f"{URL}/{mine['id']}")).status_code == 404
    etag = (await service.client().get(f"{URL}/{mine['id']}")).headers["ETag"]
    moved = await bound.patch(
        f"{URL}/{mine['id']}",
        json={"disposition": "closed", "deadline": None, "reason": "x"},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 403
    assert moved.json()["field"] == "county_code"
    closed = (await service.client().get(URL, params={"disposition": "closed"})).json()
    assert [item["id"] for item in closed["items"]] == [other["id"]]
    exported = await service.client().get(f"{URL}/export", params={"county_code": "320323"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(row["disposition"], row["deadline"]) for row in rows] == [
        ("rectifying", "2008-06-30")
    ] * 2


# The statistics' fixture, by enterprise:
# P 320323  rectifying 2008-03-01, supported 2008-07-01
# Q 320323  rectifying 2008-04-01, closed 2008-09-15
# R 320323  supported 2008-10-01
# S 320302  closed 2008-05-20
# T 320302  rectifying 2008-06-01, decided 2009-02-01 closed (after the year)
# U 320311  supported 2009-03-01: nothing in 2008
# On 2008-06-15: 320323 rectifying P, Q; 320302 closed S, rectifying T
# On 2008-12-31: 320323 supported P, R, closed Q; 320302 closed S, rectifying T
@pytest.fixture
async def dispositions(service: Harness) -> None:
    async def decide(n: int, county: str, *decisions: tuple[str, str]) -> None:
        first, *later = decisions
        deadline = {"deadline": "2009-12-31"} if first[0] == "rectifying" else {"deadline": None}
        item = await _create(
            service,
            BASE
            | deadline
            | {
                "enterprise_credit_code": make_credit_code(100 + n),
                "county_code": county,
                "disposition": first[0],
                "decided_on": first[1],
                "licence_number": None,
            },
        )
        for disposition, on in later:
            response = await _patch(
                service, item, {"disposition": disposition, "decided_on": on, "reason": "決定"}
            )
            assert response.status_code == 200, response.text

    await decide(1, "320323", ("rectifying", "2008-03-01"), ("supported", "2008-07-01"))
    await decide(2, "320323", ("rectifying", "2008-04-01"), ("closed", "2008-09-15"))
    await decide(3, "320323", ("supported", "2008-10-01"))
    await decide(4, "320302", ("closed", "2008-05-20"))
    await decide(5, "320302", ("rectifying", "2008-06-01"), ("closed", "2009-02-01"))
    await decide(6, "320311", ("supported", "2009-03-01"))


def _counts(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {
        row["county_code"]: (row["supported"], row["rectifying"], row["closed"], row["total"])
        for row in body["by_county"]
        if row["total"]
    }


@pytest.mark.usefixtures("dispositions")
async def test_stats_take_each_enterprise_s_disposition_on_the_date(service: Harness) -> None:
    client = service.client()
    year_end = (await client.get(f"{URL}/stats", params={"year": 2008})).json()
    assert year_end["as_of"] == "2008-12-31"
    assert _counts(year_end) == {"320323": (2, 0, 1, 3), "320302": (0, 1, 1, 2)}
    assert year_end["totals"] == {"supported": 2, "rectifying": 1, "closed": 2, "total": 5}
    assert "320311" in [row["county_code"] for row in year_end["by_county"]]

    june = (await client.get(f"{URL}/stats", params={"year": 2008, "as_of": "2008-06-15"})).json()
    assert _counts(june) == {"320323": (0, 2, 0, 2), "320302": (0, 1, 1, 2)}

    later = (await client.get(f"{URL}/stats", params={"year": 2009})).json()
    assert _counts(later) == {
        "320323": (2, 0, 1, 3),
        "320302": (0, 0, 2, 2),
        "320311": (1, 0, 0, 1),
    }
    one = (await client.get(f"{URL}/stats", params={"year": 2008, "county_code": "320302"})).json()
    assert [row["county_code"] for row in one["by_county"]] == ["320302"]
    bound = (
        await service.client(county_codes=["320323"]).get(f"{URL}/stats", params={"year": 2008})
    ).json()
    assert _counts(bound) == {"320323": (2, 0, 1, 3)}
    assert bound["totals"]["total"] == 3
    early = await client.get(f"{URL}/stats", params={"year": 2008, "as_of": "2007-12-31"})
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "as_of"


def _csv(rows: list[dict[str, str]]) -> bytes:
    header = list(BASE)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _imported(n: int, **changes: str) -> dict[str, str]:
    return {
        **{name: str(value) for name, value in BASE.items()},
        "enterprise_credit_code": make_credit_code(200 + n),
        "enterprise_name": f"徐州第{n}食品廠",
        **changes,
    }


async def test_import_stores_all_rows_or_none_with_a_report(service: Harness) -> None:
    client = service.client()
    existing = await _create(service, BASE | {"enterprise_credit_code": make_credit_code(299)})
    headers = {"Content-Type": "text/csv"}
    good = [_imported(1), _imported(2, disposition="closed", deadline="")]
    bad = [
        *good,
        _imported(1),
        _imported(3, deadline=""),
        _imported(99, enterprise_credit_code=existing["enterprise_credit_code"]),
        _imported(4, disposition="extinct"),
    ]
    rejected = await client.post(f"{URL}/import", content=_csv(bad), headers=headers)
    assert rejected.status_code == 422, rejected.text
    assert [(e["line"], e["field"]) for e in rejected.json()["errors"]] == [
        (4, "enterprise_credit_code"),
        (5, "deadline"),
        (6, "enterprise_credit_code"),
        (7, "disposition"),
    ]
    assert len((await client.get(URL)).json()["items"]) == 1
    dry = await client.post(
        f"{URL}/import", content=_csv(good), headers=headers, params={"dry_run": "true"}
    )
    assert dry.status_code == 200, dry.text
    assert len((await client.get(URL)).json()["items"]) == 1
    stored = await client.post(f"{URL}/import", content=_csv(good), headers=headers)
    assert stored.status_code == 201, stored.text
    assert stored.json()["stored"] == 2
    closed = (await client.get(URL, params={"disposition": "closed"})).json()["items"]
    assert [item["enterprise_name"] for item in closed] == ["徐州第2食品廠"]
    history = (await client.get(f"{URL}/{closed[0]['id']}/history")).json()["items"]
    assert [(h["action"], h["reason"]) for h in history] == [("imported", "CSV import, line 3")]
    events = (
        await service.client(scopes=["events:read", "certificates:read"]).get(
            "/api/v1/events", params={"limit": 100}
        )
    ).json()["items"]
    assert [e["data"]["to"] for e in events] == ["rectifying", "rectifying", "closed"]


async def test_the_template_imports_as_it_is(service: Harness) -> None:
    client = service.client()
    template = await client.get(f"{URL}/import/template.xlsx")
    assert template.status_code == 200, template.text
    assert template.headers["content-type"] == XLSX_MEDIA_TYPE
    assert "处置" in xlsx_values(template.content)[0]
    checked = await client.post(
        f"{URL}/import",
        content=template.content,
        params={"dry_run": "true"},
        headers={"Content-Type": XLSX_MEDIA_TYPE},
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] == 1
