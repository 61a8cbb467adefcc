"""Change events of the assessment service: reported values submitted, accepted and returned,
runs published; served by its feed as CloudEvents, filtered by the reader's scopes and
counties; and the migration creating them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assessment.app import SPEC
from kit.testing import Harness, check_migration_adds_tables

from .builders import PIZHOU, TONGSHAN, bound_client, reported, small_target_set
from .fakes import FakeDataServices
from .test_standings import _load

EVENTS = "/api/v1/events"
VALUES = "/api/v1/reported-values"
RUNS = "/api/v1/assessments/2007/runs"
READER = ["events:read", "assessments:read"]
COVERAGE = "industrial_standard_coverage"


async def feed(service: Harness, scopes: list[str] = READER, **kwargs: Any) -> list[dict[str, Any]]:
    response = await service.client(scopes=scopes, **kwargs).get(EVENTS, params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _target_set(service: Harness) -> None:
    response = await service.client().put("/api/v1/target-sets/2007", json=small_target_set())
    assert response.status_code == 201, response.text


async def test_a_value_submitted_then_returned_then_accepted(service: Harness) -> None:
    await _target_set(service)
    county = bound_client(service, [TONGSHAN])
    reviewer = service.client(["assessments:read", "assessments:review"], client_id="reviewer")
    first = await county.post(VALUES, json=reported(TONGSHAN, COVERAGE, 0.96))
    assert first.status_code == 201, first.text
    returned = await reviewer.post(
        f"{VALUES}/{first.json()['id']}/status",
        json={"state": "returned", "comment": "請附清單"},
        headers={"If-Match": first.headers["ETag"]},
    )
    assert returned.status_code == 200, returned.text
    second = await county.post(VALUES, json=reported(TONGSHAN, COVERAGE, 0.95))
    accepted = await reviewer.post(
        f"{VALUES}/{second.json()['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": second.headers["ETag"]},
    )
    assert accepted.status_code == 200, accepted.text
    events = await feed(service)
    assert [e["type"] for e in events] == [
        "reported_value.submitted",
        "reported_value.returned",
        "reported_value.submitted",
        "reported_value.accepted",
    ]
    submitted, sent_back, corrected, taken = events
    assert submitted["source"] == "/assessment"
    assert submitted["subject"] == f"reported-values/{first.json()['id']}"
    assert submitted["countycode"] == TONGSHAN
    assert submitted["data"]["item"] == first.json()
    assert sent_back["data"]["comment"] == "請附清單"
    assert sent_back["data"]["item"] == returned.json()
    assert corrected["data"]["supersedes"] == first.json()["id"]
    assert taken["data"]["item"] == accepted.json()


async def test_a_refused_review_emits_nothing(service: Harness) -> None:
    await _target_set(service)
    value = await service.client().post(VALUES, json=reported(TONGSHAN, COVERAGE, 0.9))
    reviewer = service.client(["assessments:read", "assessments:review"], client_id="reviewer")
    stale = await reviewer.post(
        f"{VALUES}/{value.json()['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": '"stale"'},
    )
    assert stale.status_code == 412
    assert [e["type"] for e in await feed(service)] == ["reported_value.submitted"]


async def test_bound_and_scope_limited_readers(service: Harness) -> None:
    await _target_set(service)
    client = service.client()
    for county in (TONGSHAN, PIZHOU):
        assert (await client.post(VALUES, json=reported(county, COVERAGE, 0.9))).status_code == 201
    bound = await feed(service, county_codes=[PIZHOU])
    assert [e["countycode"] for e in bound] == [PIZHOU]
    assert await feed(service, scopes=["events:read", "brands:read"]) == []
    assert (await service.client(scopes=["assessments:read"]).get(EVENTS)).status_code == 403


async def test_a_published_run_is_an_event_without_a_county(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    created = await client.post(RUNS)
    assert created.status_code == 201, created.text
    published = await client.post(
        f"{RUNS}/{created.json()['id']}/publish", headers={"If-Match": created.headers["ETag"]}
    )
    assert published.status_code == 200, published.text
    runs = [e for e in await feed(service) if e["type"].startswith("assessment_run.")]
    (event,) = runs
    assert event["type"] == "assessment_run.published"
    assert event["subject"] == f"assessment-runs/{created.json()['id']}"
    assert "countycode" not in event
    assert event["data"]["year"] == 2007
    assert event["data"]["item"] == published.json()
    only_runs = await service.client(scopes=READER).get(EVENTS, params={"type": "assessment_run.*"})
    assert [e["id"] for e in only_runs.json()["items"]] == [event["id"]]
    bound = await feed(service, county_codes=[PIZHOU])
    assert event["id"] in [e["id"] for e in bound]


async def test_the_migration_creates_and_drops_the_event_tables(tmp_path: Path) -> None:
    await check_migration_adds_tables(
        spec=SPEC, tmp_dir=tmp_path, before="0005", revision="0006", tables={"event", "event_once"}
    )
