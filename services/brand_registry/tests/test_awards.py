"""Quality awards (§三.4: 全國質量獎, 省質量管理獎, 市質量管理獎, 服務質量獎, 卓越績效 self-assessments):
kinds and their levels from `config/award_kinds.json`, one award of a kind, level and year per
enterprise (concurrent duplicates too), ETag/If-Match on every change, revocation with its
reason, history, events, county binding and stats against a hand count."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx

from brand_registry.tests.support import PIZHOU, TONGSHAN, credit_code
from kit.testing import Harness, xlsx_values
from kit.xlsxio import XLSX_MEDIA_TYPE

AWARDS = "/api/v1/awards"
STATS = "/api/v1/awards/stats"
COPIES = 20


def award(number: int = 1, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "city_quality_management_award",
        "level": "city",
        "year": 2008,
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": f"徐州第{number}機械廠",
        "county_code": TONGSHAN,
        "awarded_on": "2008-05-01",
    }
    values.update(overrides)
    return values


async def record(client: httpx.AsyncClient, number: int = 1, **overrides: Any) -> dict[str, Any]:
    response = await client.post(AWARDS, json=award(number, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def revoke(client: httpx.AsyncClient, award_id: str, on: str | None = None) -> httpx.Response:
    etag = (await client.get(f"{AWARDS}/{award_id}")).headers["ETag"]
    body: dict[str, Any] = {"status": "revoked", "reason": "弄虛作假"}
    if on is not None:
        body["effective_on"] = on
    return await client.post(f"{AWARDS}/{award_id}/status", json=body, headers={"If-Match": etag})


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


async def test_an_award_is_recorded_edited_revoked_and_its_history_kept(
    service: Harness,
) -> None:
    client = service.client()
    created = await client.post(AWARDS, json=award(excellence_score=612.5))
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["Location"] == f"{AWARDS}/{body['id']}"
    assert body["kind_label"] == "市質量管理獎"
    assert (body["status"], body["revoked_on"], body["excellence_score"]) == (
        "awarded",
        None,
        612.5,
    )
    url = f"{AWARDS}/{body['id']}"
    read = await client.get(url)
    assert read.json() == body
    etag = read.headers["ETag"]
    assert etag == created.headers["ETag"]

    problem(await client.patch(url, json={"enterprise_name": "徐工"}), 428)
    edited = await client.patch(
        url, json={"enterprise_name": "徐工集團"}, headers={"If-Match": etag}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["enterprise_name"] == "徐工集團"
    assert edited.headers["ETag"] != etag
    stale = await client.patch(url, json={"enterprise_name": "x"}, headers={"If-Match": etag})
    problem(stale, 412)
    problem(
        await client.patch(
            url,
            json={"kind": "national_quality_award"},
            headers={"If-Match": edited.headers["ETag"]},
        ),
        422,
    )

    revoked = await revoke(client, body["id"], on="2009-02-01")
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["revoked_on"]) == ("revoked", "2009-02-01")
    again = problem(await revoke(client, body["id"]), 409)
    assert (again["current_status"], again["requested_status"]) == ("revoked", "revoked")

    history = (await client.get(f"{url}/history")).json()["items"]
    assert [h["action"] for h in history] == ["created", "updated", "status_changed"]
    assert history[1]["changes"] == {"enterprise_name": ["徐州第1機械廠", "徐工集團"]}
    assert (history[2]["from_status"], history[2]["to_status"]) == ("awarded", "revoked")
    assert history[2]["reason"] == "弄虛作假"
    assert history[2]["effective_on"] == "2009-02-01"


async def test_changes_are_events(service: Harness) -> None:
    client = service.client()
    body = await record(client)
    assert (await revoke(client, body["id"])).status_code == 200
    reader = service.client(scopes=["events:read", "brands:read"])
    events = (await reader.get("/api/v1/events", params={"limit": 100})).json()["items"]
    created, changed = [e for e in events if e["type"].startswith("award.")]
    assert created["type"] == "award.created"
    assert created["subject"] == f"awards/{body['id']}"
    assert created["countycode"] == TONGSHAN
    assert created["data"]["item"]["kind"] == "city_quality_management_award"
    assert changed["type"] == "award.status_changed"
    assert (changed["data"]["from"], changed["data"]["to"]) == ("awarded", "revoked")
    assert changed["data"]["item"]["status"] == "revoked"


async def test_kind_level_score_dates_and_county_are_checked(service: Harness) -> None:
    client = service.client()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "golden_award"}, "kind"),
        ({"kind": "national_quality_award", "level": "city"}, "level"),
        ({"level": "county"}, "level"),
        ({"kind": "excellence_performance_self_assessment"}, "excellence_score"),
        ({"excellence_score": 1000.5}, "excellence_score"),
        ({"excellence_score": -1}, "excellence_score"),
        ({"awarded_on": "2999-01-01"}, "awarded_on"),
        ({"awarded_on": "1900-01-01"}, "awarded_on"),
        ({"county_code": "320399"}, "county_code"),
        ({"year": 1800}, "year"),
        ({"enterprise_credit_code": "123"}, "enterprise_credit_code"),
    ]
    for overrides, field in cases:
        body = problem(await client.post(AWARDS, json=award(**overrides)), 422)
        assert [e["field"] for e in body["errors"]] == [field], overrides
    assessed = await record(
        client, kind="excellence_performance_self_assessment", excellence_score=480
    )
    assert assessed["excellence_score"] == 480
    etag = (await client.get(f"{AWARDS}/{assessed['id']}")).headers["ETag"]
    cleared = await client.patch(
        f"{AWARDS}/{assessed['id']}", json={"excellence_score": None}, headers={"If-Match": etag}
    )
    assert [e["field"] for e in problem(cleared, 422)["errors"]] == ["excellence_score"]
    assert (await client.get(AWARDS)).json()["items"] == [assessed]


async def test_one_award_of_a_kind_level_and_year_per_enterprise(service: Harness) -> None:
    client = service.client()
    first = await record(client)
    duplicate = problem(await client.post(AWARDS, json=award(awarded_on="2008-06-01")), 409)
    assert duplicate["existing_id"] == first["id"]
    assert duplicate["errors"][0]["field"] == "kind"
    await record(client, year=2009, awarded_on="2009-05-01")
    await record(client, kind="service_quality_award")
    await record(client, 2)
    # A revoked award still holds its place: the enterprise had it that year.
    assert (await revoke(client, first["id"])).status_code == 200
    problem(await client.post(AWARDS, json=award()), 409)


async def test_identical_awards_sent_together_store_one(service: Harness) -> None:
    clients = [service.client() for _ in range(COPIES)]
    responses = await asyncio.gather(*(c.post(AWARDS, json=award()) for c in clients))
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.status_code for r in responses]
    listed = (await service.client().get(AWARDS)).json()["items"]
    assert [item["id"] for item in listed] == [created[0].json()["id"]]
    sequential = problem(await service.client().post(AWARDS, json=award()), 409)
    refused = [problem(r, 409) for r in responses if r.status_code != 201]
    assert len(refused) == COPIES - 1
    assert all(body == sequential for body in refused)


async def test_a_retry_with_the_same_idempotency_key_answers_the_first(service: Harness) -> None:
    client = service.client()
    headers = {"Idempotency-Key": "award-1"}
    first = await client.post(AWARDS, json=award(), headers=headers)
    retry = await client.post(AWARDS, json=award(), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    other = await client.post(AWARDS, json=award(2), headers=headers)
    assert other.status_code == 422
    assert len((await client.get(AWARDS)).json()["items"]) == 1


async def test_the_list_filters(service: Harness) -> None:
    client = service.client()
    a = await record(client, 1)
    b = await record(client, 2, kind="service_quality_award", level="provincial")
    c = await record(client, 3, year=2009, awarded_on="2009-03-01", county_code=PIZHOU)

    async def ids(**params: Any) -> set[str]:
        response = await client.get(AWARDS, params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids() == {a["id"], b["id"], c["id"]}
    assert await ids(kind="service_quality_award") == {b["id"]}
    assert await ids(level="city") == {a["id"], c["id"]}
    assert await ids(year=2009) == {c["id"]}
    assert await ids(county_code=PIZHOU) == {c["id"]}
    assert await ids(enterprise_credit_code=credit_code(2)) == {b["id"]}
    assert await ids(status="revoked") == set()
    page = (await client.get(AWARDS, params={"limit": 2})).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = (await client.get(AWARDS, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert len(rest["items"]) == 1
    for params, field in [
        ({"county_code": "320399"}, "county_code"),
        ({"level": "county"}, "level"),
        ({"year": "soon"}, "year"),
    ]:
        body = problem(await client.get(AWARDS, params=params), 422)
        assert body["errors"][0]["field"] == field, params


async def test_county_binding(service: Harness) -> None:
    tongshan = service.client(
        ["brands:read", "brands:write"], client_id="tongshan", county_codes=[TONGSHAN]
    )
    mine = await record(tongshan)
    outside = await tongshan.post(AWARDS, json=award(2, county_code=PIZHOU))
    assert problem(outside, 403)["field"] == "county_code"
    theirs = await record(service.client(), 3, county_code=PIZHOU)
    listed = (await tongshan.get(AWARDS)).json()["items"]
    assert [item["id"] for item in listed] == [mine["id"]]
    problem(await tongshan.get(f"{AWARDS}/{theirs['id']}"), 404)
    etag = (await tongshan.get(f"{AWARDS}/{mine['id']}")).headers["ETag"]
    moved = await tongshan.patch(
        f"{AWARDS}/{mine['id']}", json={"county_code": PIZHOU}, headers={"If-Match": etag}
    )
    assert problem(moved, 403)["field"] == "county_code"
    stats = (await tongshan.get(STATS, params={"year": 2008})).json()
    assert [c["county_code"] for c in stats["by_county"]] == [TONGSHAN]
    assert stats["totals"]["awards"] == 1


async def _register(client: httpx.AsyncClient) -> None:
    # Tongshan: a1 and a2 count in 2008; a3 was revoked in 2008; a4 is of 2007; a5, of 2008,
    # was conferred only in January 2009.
    await record(client, 1, awarded_on="2008-05-01")
    await record(
        client,
        2,
        kind="excellence_performance_self_assessment",
        excellence_score=520,
        awarded_on="2008-11-20",
    )
    a3 = await record(client, 3, kind="service_quality_award", level="provincial")
    assert (await revoke(client, a3["id"], on="2008-10-01")).status_code == 200
    await record(
        client,
        4,
        kind="national_quality_award",
        level="national",
        year=2007,
        awarded_on="2007-12-01",
    )
    await record(
        client, 5, kind="provincial_quality_award", level="provincial", awarded_on="2009-01-10"
    )
    # Pizhou: b1 counts in 2008 and is revoked in March 2009; b2 counts.
    b1 = await record(
        client, 6, kind="service_quality_award", county_code=PIZHOU, awarded_on="2008-06-01"
    )
    assert (await revoke(client, b1["id"], on="2009-03-01")).status_code == 200
    await record(
        client,
        7,
        kind="provincial_quality_award",
        level="provincial",
        county_code=PIZHOU,
        awarded_on="2008-12-31",
    )


KINDS = [
    "national_quality_award",
    "provincial_quality_award",
    "city_quality_management_award",
    "service_quality_award",
    "excellence_performance_self_assessment",
]


def counts(total: int, kinds: dict[str, int], levels: dict[str, int]) -> dict[str, Any]:
    return {
        "awards": total,
        "by_kind": {kind: kinds.get(kind, 0) for kind in KINDS},
        "by_level": {level: levels.get(level, 0) for level in ("national", "provincial", "city")},
    }


async def test_stats_match_the_hand_count(service: Harness) -> None:
    client = service.client()
    await _register(client)
    response = await client.get(STATS, params={"year": 2008})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["year"], body["as_of"]) == (2008, "2008-12-31")
    by_county = {c.pop("county_code"): c for c in body["by_county"]}
    assert len(by_county) == 11
    assert by_county[TONGSHAN] == counts(
        2,
        {"city_quality_management_award": 1, "excellence_performance_self_assessment": 1},
        {"city": 2},
    )
    assert by_county[PIZHOU] == counts(
        2,
        {"service_quality_award": 1, "provincial_quality_award": 1},
        {"city": 1, "provincial": 1},
    )
    assert by_county["320321"] == counts(0, {}, {})
    assert body["totals"] == counts(
        4,
        {
            "city_quality_management_award": 1,
            "excellence_performance_self_assessment": 1,
            "service_quality_award": 1,
            "provincial_quality_award": 1,
        },
        {"city": 3, "provincial": 1},
    )


async def test_stats_as_of_a_later_date_and_for_one_county(service: Harness) -> None:
    client = service.client()
    await _register(client)
    later = (await client.get(STATS, params={"year": 2008, "as_of": "2009-06-01"})).json()
    by_county = {c["county_code"]: c for c in later["by_county"]}
    # a5 has been conferred by then; b1 has been revoked.
    assert by_county[TONGSHAN]["awards"] == 3
    assert by_county[TONGSHAN]["by_level"]["provincial"] == 1
    assert by_county[PIZHOU]["awards"] == 1
    assert later["totals"]["awards"] == 4
    national = (await client.get(STATS, params={"year": 2007})).json()
    assert national["totals"]["by_kind"]["national_quality_award"] == 1
    one = (await client.get(STATS, params={"year": 2008, "county_code": PIZHOU})).json()
    assert [c["county_code"] for c in one["by_county"]] == [PIZHOU]
    assert one["totals"]["awards"] == 2
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "year"),
        ({"year": 2008, "county_code": "320399"}, "county_code"),
        ({"year": 2008, "as_of": "2008-02-30"}, "as_of"),
    ]
    for params, field in bad:
        assert problem(await client.get(STATS, params=params), 422)["errors"][0]["field"] == field


IMPORT = "/api/v1/awards/import"
EXPORT = "/api/v1/awards/export"
IMPORT_HEADER = [
    "kind",
    "level",
    "year",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "awarded_on",
    "excellence_score",
]


def award_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=IMPORT_HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


async def post_csv(client: httpx.AsyncClient, body: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        IMPORT, content=body, params=params, headers={"Content-Type": "text/csv"}
    )


async def test_an_import_stores_every_row_or_none(service: Harness) -> None:
    client = service.client()
    await record(client, 9)
    rows = [
        award(1),
        award(2, kind="excellence_performance_self_assessment", excellence_score="480"),
        award(3, kind="excellence_performance_self_assessment"),
        award(1),
        award(9),
        award(4, kind="national_quality_award"),
    ]
    response = await post_csv(client, award_csv(rows))
    body = problem(response, 422)
    assert [(e["line"], e["field"]) for e in body["errors"]] == [
        (4, "excellence_score"),
        (5, "kind"),
        (6, "kind"),
        (7, "level"),
    ]
    assert body["stored"] == 0
    assert len((await client.get(AWARDS)).json()["items"]) == 1

    good = award_csv(rows[:2])
    dry = await post_csv(client, good, dry_run="true")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["valid"], dry.json()["stored"]) == (2, 0)
    stored = await post_csv(client, good)
    assert stored.status_code == 201, stored.text
    assert stored.json()["stored"] == 2
    listed = (await client.get(AWARDS)).json()["items"]
    assert len(listed) == 3
    scores = {item["enterprise_credit_code"]: item["excellence_score"] for item in listed}
    assert scores[credit_code(2)] == 480
    history = (await client.get(f"{AWARDS}/{listed[0]['id']}/history")).json()["items"]
    assert [(h["action"], h["reason"]) for h in history] == [("created", "CSV import")]
    reader = service.client(scopes=["events:read", "brands:read"])
    events = (await reader.get("/api/v1/events", params={"limit": 100})).json()["items"]
    assert sum(e["type"] == "award.created" for e in events) == 3


async def test_an_import_row_outside_the_binding_refuses_the_file(service: Harness) -> None:
    bound = service.client(
        ["brands:read", "brands:write"], client_id="tongshan", county_codes=[TONGSHAN]
    )
    response = await post_csv(bound, award_csv([award(1), award(2, county_code=PIZHOU)]))
    assert problem(response, 403)["lines"] == [3]
    assert (await service.client().get(AWARDS)).json()["items"] == []


async def test_the_export_imports_back_and_the_template_imports(service: Harness) -> None:
    client = service.client()
    await record(client, 1)
    await record(client, 2, county_code=PIZHOU, kind="service_quality_award")
    exported = await client.get(EXPORT)
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {r["kind_label"] for r in rows} == {"市質量管理獎", "服務質量獎"}
    only = list(
        csv.DictReader(
            io.StringIO(
                (await client.get(EXPORT, params={"county_code": PIZHOU})).content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert [r["county_code"] for r in only] == [PIZHOU]
    workbook = await client.get(EXPORT, params={"format": "xlsx"})
    assert workbook.headers["content-type"] == XLSX_MEDIA_TYPE
    assert xlsx_values(workbook.content)[0][:3] == ["编号", "奖项类别", "奖项名称"]

    await service.reset()
    client = service.client()
    again = await client.post(
        IMPORT, content=workbook.content, headers={"Content-Type": XLSX_MEDIA_TYPE}
    )
    assert again.status_code == 201, again.text
    assert again.json()["stored"] == 2
    template = await client.get("/api/v1/awards/import/template.xlsx")
    assert template.status_code == 200, template.text
    tried = await client.post(
        IMPORT,
        content=template.content,
        params={"dry_run": "true"},
        headers={"Content-Type": XLSX_MEDIA_TYPE},
    )
    assert tried.status_code == 200, tried.text
