"""Change events of the inspection service: a spot-check's `spot_check.published` is due on
its bulletin day and never visible before, corrections follow it, the events move with the
bulletin day; the feed filters by scopes and counties; and the migration creating them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from inspection.app import SPEC
from inspection.tests.support import PAST, TODAY, spot_check
from kit.events import sequence_due
from kit.testing import Harness, check_migration_adds_tables

URL = "/api/v1/spot-checks"
EVENTS = "/api/v1/events"
READER = ["events:read", "spot-checks:read"]
ZONE = ZoneInfo("Asia/Shanghai")


async def feed(service: Harness, scopes: list[str] = READER, **kwargs: Any) -> list[dict[str, Any]]:
    response = await service.client(scopes=scopes, **kwargs).get(EVENTS, params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def create(service: Harness, **overrides: Any) -> dict[str, Any]:
    response = await service.client().post(URL, json=spot_check(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def correct(service: Harness, check_id: str, **changes: Any) -> dict[str, Any]:
    client = service.client()
    etag = (await client.get(f"{URL}/{check_id}")).headers["ETag"]
    response = await client.patch(
        f"{URL}/{check_id}", json={**changes, "reason": "更正"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def start_of(day: Any) -> datetime:
    return datetime.combine(day, time.min, ZONE)


async def test_a_published_check_is_a_spot_check_published_event(service: Harness) -> None:
    check = await create(service)
    (event,) = await feed(service)
    assert event["type"] == "spot_check.published"
    assert event["source"] == "/inspection"
    assert event["subject"] == f"spot-checks/{check['id']}"
    assert event["countycode"] == "320323"
    assert datetime.fromisoformat(event["time"]) == start_of(PAST)
    assert event["data"]["published_on"] == PAST.isoformat()
    served = (await service.client(scopes=["spot-checks:read"]).get(f"{URL}/{check['id']}")).json()
    assert event["data"]["item"]["published"] is True
    assert event["data"]["item"]["result"] == served["result"]
    assert event["data"]["item"]["version"] == served["version"]


async def test_a_check_is_not_published_before_its_bulletin_day(service: Harness) -> None:
    day = TODAY + timedelta(days=5)
    check = await create(service, sample_code="F", published_on=day.isoformat())
    await create(service, sample_code="U", published_on=None)
    assert await feed(service) == []
    sessionmaker = service.app.state.sessionmaker
    assert await sequence_due(sessionmaker, now=start_of(day) - timedelta(seconds=1)) == 0
    assert await feed(service) == []
    assert await sequence_due(sessionmaker, now=start_of(day)) == 1
    (event,) = await feed(service)
    assert event["subject"] == f"spot-checks/{check['id']}"
    assert event["data"]["item"]["published"] is True


async def test_an_earlier_bulletin_day_publishes_at_once_with_the_correction(
    service: Harness,
) -> None:
    check = await create(service, published_on=(TODAY + timedelta(days=5)).isoformat())
    assert await feed(service) == []
    await correct(service, check["id"], published_on=PAST.isoformat())
    published, corrected = await feed(service)
    assert published["type"] == "spot_check.published"
    assert corrected["type"] == "spot_check.corrected"
    assert corrected["data"]["changes"]["published_on"][1] == PAST.isoformat()
    assert corrected["data"]["reason"] == "更正"


async def test_a_correction_before_publication_waits_for_the_bulletin_day(
    service: Harness,
) -> None:
    day = TODAY + timedelta(days=3)
    check = await create(service, published_on=day.isoformat())
    await correct(service, check["id"], product_name="速凍湯圓")
    assert await feed(service) == []
    await sequence_due(service.app.state.sessionmaker, now=start_of(day))
    published, corrected = await feed(service)
    assert (published["type"], corrected["type"]) == (
        "spot_check.published",
        "spot_check.corrected",
    )
    assert corrected["data"]["item"]["product_name"] == "速凍湯圓"


async def test_a_bulletin_day_moved_later_or_withdrawn_moves_the_event(service: Harness) -> None:
    first = await create(
        service, sample_code="A", published_on=(TODAY + timedelta(days=2)).isoformat()
    )
    second = await create(
        service, sample_code="B", published_on=(TODAY + timedelta(days=2)).isoformat()
    )
    later = TODAY + timedelta(days=20)
    await correct(service, first["id"], published_on=later.isoformat())
    await correct(service, second["id"], published_on=None)
    sessionmaker = service.app.state.sessionmaker
    assert await sequence_due(sessionmaker, now=start_of(TODAY + timedelta(days=10))) == 0
    assert await sequence_due(sessionmaker, now=start_of(later)) == 2
    events = await feed(service)
    assert {e["subject"] for e in events} == {f"spot-checks/{first['id']}"}
    assert [e["type"] for e in events] == ["spot_check.published", "spot_check.corrected"]


async def test_a_correction_of_a_published_check_is_an_event_at_once(service: Harness) -> None:
    check = await create(service)
    corrected = await correct(service, check["id"], product_name="速凍湯圓")
    _, event = await feed(service)
    assert event["type"] == "spot_check.corrected"
    assert event["data"]["changes"] == {"product_name": ["速凍水餃", "速凍湯圓"]}
    assert event["data"]["item"]["product_name"] == corrected["product_name"]
    assert datetime.fromisoformat(event["time"]) > datetime.now(UTC) - timedelta(minutes=1)


async def test_imported_checks_are_published_on_their_bulletin_days(service: Harness) -> None:
    rows = [
        spot_check(sample_code=f"I-{n}", result="pass", published_on=day)
        for n, day in enumerate([PAST.isoformat(), (TODAY + timedelta(days=9)).isoformat(), ""])
    ]
    header = [name for name in rows[0] if name != "nonconforming_items"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = await service.client().post(
        f"{URL}/import", content=buffer.getvalue().encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    (event,) = await feed(service)
    assert event["data"]["item"]["sample_code"] == "I-0"
    await sequence_due(service.app.state.sessionmaker, now=start_of(TODAY + timedelta(days=9)))
    assert [e["data"]["item"]["sample_code"] for e in await feed(service)] == ["I-0", "I-1"]


async def test_bound_and_scope_limited_readers(service: Harness) -> None:
    await create(service, sample_code="T", county_code="320323")
    await create(service, sample_code="P", county_code="320382")
    bound = await feed(service, county_codes=["320382"])
    assert [e["countycode"] for e in bound] == ["320382"]
    assert await feed(service, scopes=["events:read", "brands:read"]) == []
    assert (await service.client(scopes=["spot-checks:read"]).get(EVENTS)).status_code == 403


async def test_the_migration_creates_and_drops_the_event_tables(tmp_path: Path) -> None:
    await check_migration_adds_tables(
        spec=SPEC, tmp_dir=tmp_path, before="0004", revision="0005", tables={"event", "event_once"}
    )
