"""Re-inspections (復檢): links, chains and their final result."""

import csv
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from inspection.settings import Settings
from inspection.tests.support import PAST, TODAY, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"


async def _record(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    response = await client.post(URL, json=spot_check(**overrides))
    assert response.status_code == 201, response.text
    return response


def _reinspection(original: httpx.Response, **overrides: Any) -> dict[str, Any]:
    body = original.json()
    return spot_check(
        plan_code=body["plan_code"],
        sample_code=body["sample_code"],
        reinspection_of=body["id"],
        sampled_on=PAST.isoformat(),
        **overrides,
    )


async def test_a_passing_reinspection_overturns_the_original(service: Harness) -> None:
    client = service.client()
    original = await _record(client)
    retest = await client.post(URL, json=_reinspection(original, result="pass"))
    assert retest.status_code == 201, retest.text
    assert retest.json()["reinspection_of"] == original.json()["id"]
    assert retest.json()["root_id"] == original.json()["id"]
    assert retest.json()["final_result"] is None
    root = (await client.get(f"{URL}/{original.json()['id']}")).json()
    assert root["result"] == "fail"
    assert root["final_result"] == "pass"
    history = (await client.get(f"{URL}/{retest.json()['id']}/history")).json()["items"]
    assert history[0]["action"] == "reinspected"


async def test_a_chain_resolves_to_its_last_result(service: Harness) -> None:
    client = service.client()
    original = await _record(client)
    upheld = await client.post(URL, json=_reinspection(original))
    assert upheld.status_code == 201
    root_url = f"{URL}/{original.json()['id']}"
    assert (await client.get(root_url)).json()["final_result"] == "fail"
    passed = await client.post(URL, json=_reinspection(upheld, result="pass"))
    assert passed.status_code == 201, passed.text
    assert (await client.get(root_url)).json()["final_result"] == "pass"

    corrected = await client.patch(
        f"{URL}/{passed.json()['id']}",
        json={
            "result": "fail",
            "nonconforming_items": [
                {"item": "菌落總數", "requirement": "≤10^5", "measured": "10^6"}
            ],
            "reason": "lab re-issued the report",
        },
        headers={"If-Match": passed.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    assert (await client.get(root_url)).json()["final_result"] == "fail"


async def test_bad_reinspection_links_are_refused_and_store_nothing(service: Harness) -> None:
    client = service.client()
    failed = await _record(client, sample_code="F")
    passed = await _record(client, sample_code="P", result="pass")
    refused = await _record(
        client,
        sample_code="R",
        refused=True,
        nonconforming_items=[],
        mandatory_standard_violation=False,
    )
    await client.post(URL, json=_reinspection(failed))

    cases: list[tuple[dict[str, Any], int, str]] = [
        (_reinspection(passed), 409, "reinspection_of"),
        (_reinspection(refused), 409, "reinspection_of"),
        (_reinspection(failed), 409, "reinspection_of"),
        ({**_reinspection(failed), "plan_code": "2024-SJ-99"}, 409, "plan_code"),
        ({**_reinspection(failed), "sample_code": "OTHER"}, 409, "sample_code"),
        ({**_reinspection(failed), "reinspection_of": "missing"}, 422, "reinspection_of"),
    ]
    for body, status, field in cases:
        response = await client.post(URL, json=body)
        assert response.status_code == status, (body, response.text)
        problem = response.json()
        named = problem.get("field") or problem["errors"][0]["field"]
        assert named == field
    listed = await client.get(URL, params={"include_unpublished": True, "limit": 500})
    assert len(listed.json()["items"]) == 4


async def test_a_reinspected_check_stays_failed_and_keeps_its_sample(service: Harness) -> None:
    client = service.client()
    original = await _record(client)
    await client.post(URL, json=_reinspection(original, result="pass"))
    headers = {"If-Match": (await client.get(f"{URL}/{original.json()['id']}")).headers["ETag"]}
    to_pass = await client.patch(
        f"{URL}/{original.json()['id']}",
        json={
            "result": "pass",
            "nonconforming_items": [],
            "mandatory_standard_violation": False,
            "reason": "r",
        },
        headers=headers,
    )
    assert to_pass.status_code == 409
    assert to_pass.json()["field"] == "result"
    renamed = await client.patch(
        f"{URL}/{original.json()['id']}",
        json={"sample_code": "S-NEW", "reason": "r"},
        headers=headers,
    )
    assert renamed.status_code == 409


async def test_a_reinspection_may_be_sampled_in_the_next_year(service: Harness) -> None:
    client = service.client()
    original = await _record(
        client,
        sampled_on=(PAST - timedelta(days=400)).isoformat(),
        published_on=(PAST - timedelta(days=390)).isoformat(),
    )
    retest = await client.post(URL, json=_reinspection(original, result="pass"))
    assert retest.status_code == 201, retest.text


async def _public_view(reader: httpx.AsyncClient, root_id: str, year: int) -> dict[str, Any]:
    """What a read-only client learns of one original: item, list, export and stats."""
    item = await reader.get(f"{URL}/{root_id}")
    assert item.status_code == 200, item.text
    listed = {i["id"]: i for i in (await reader.get(URL)).json()["items"]}
    exported = csv.DictReader(
        io.StringIO((await reader.get(f"{URL}/export")).text.lstrip("\ufeff"))
    )
    stats = (await reader.get(f"{URL}/stats", params={"year": year})).json()
    return {
        "item": item.json(),
        "etag": item.headers["ETag"],
        "listed": listed[root_id]["final_result"],
        "listed_ids": sorted(listed),
        "exported": {row["id"]: row["final_result"] for row in exported},
        "totals": stats["totals"],
        "findings": stats["findings_totals"]["total"],
    }


async def test_an_overturn_reaches_readers_on_the_reinspections_bulletin_day(
    service: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = service.client()
    reader = service.client(["spot-checks:read"], client_id="provincial-platform")
    original = await _record(writer)
    root_id = original.json()["id"]
    year = date.fromisoformat(original.json()["sampled_on"]).year
    published = await _public_view(reader, root_id, year)
    assert published["item"]["final_result"] == "fail"

    tomorrow = TODAY + timedelta(days=1)
    retest = await writer.post(
        URL, json=_reinspection(original, result="pass", published_on=tomorrow.isoformat())
    )
    assert retest.status_code == 201, retest.text

    # Until then the reader sees the original as it was published, down to its ETag.
    assert await _public_view(reader, root_id, year) == published
    assert published["exported"] == {root_id: "fail"}
    assert published["totals"] == {"checked": 1, "passed": 0, "pass_rate": 0.0}
    assert published["findings"] == 1
    # A writer sees what is coming.
    assert (await writer.get(f"{URL}/{root_id}")).json()["final_result"] == "pass"
    everything = await writer.get(URL, params={"include_unpublished": True})
    assert {i["id"]: i["final_result"] for i in everything.json()["items"]}[root_id] == "pass"

    monkeypatch.setattr(Settings, "today", lambda _settings: tomorrow)
    public = await _public_view(reader, root_id, year)
    assert public["item"]["final_result"] == "pass"
    assert public["listed"] == "pass"
    assert public["listed_ids"] == sorted([root_id, retest.json()["id"]])
    assert public["exported"] == {root_id: "pass", retest.json()["id"]: ""}
    assert public["totals"] == {"checked": 1, "passed": 1, "pass_rate": 1.0}
    assert public["findings"] == 0


async def test_an_overturn_without_a_bulletin_date_stays_unseen(service: Harness) -> None:
    writer = service.client()
    reader = service.client(["spot-checks:read"], client_id="provincial-platform")
    original = await _record(writer)
    root_id = original.json()["id"]
    year = date.fromisoformat(original.json()["sampled_on"]).year
    published = await _public_view(reader, root_id, year)
    upheld = await writer.post(URL, json=_reinspection(original, published_on=None))
    assert upheld.status_code == 201, upheld.text
    passed = await writer.post(URL, json=_reinspection(upheld, result="pass", published_on=None))
    assert passed.status_code == 201, passed.text
    assert await _public_view(reader, root_id, year) == published
    assert (await writer.get(f"{URL}/{root_id}")).json()["final_result"] == "pass"
