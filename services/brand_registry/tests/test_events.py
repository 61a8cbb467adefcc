"""Change events of the brand registry: written with each change, served by its feed as
CloudEvents, filtered by the reader's scopes and counties; and the migration creating them."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from brand_registry.app import SPEC
from brand_registry.tests.support import PIZHOU, TONGSHAN, create, credit_code, listing, set_status
from kit.db import as_utc
from kit.testing import Harness, check_migration_adds_tables

EVENTS = "/api/v1/events"
READER = ["events:read", "brands:read"]


async def feed(service: Harness, scopes: list[str] = READER, **kwargs: Any) -> list[dict[str, Any]]:
    params = kwargs.pop("params", {"limit": 1000})
    response = await service.client(scopes=scopes, **kwargs).get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def same_item(event_item: dict[str, Any], served: dict[str, Any]) -> bool:
    """Whether an event's item is the listing as served (SQLite serves its times naive)."""

    def moment(text: str) -> datetime:
        return as_utc(datetime.fromisoformat(text))

    times = ("created_at", "updated_at")
    return all(moment(event_item[name]) == moment(served[name]) for name in times) and {
        k: v for k, v in event_item.items() if k not in times
    } == {k: v for k, v in served.items() if k not in times}


async def test_a_new_listing_is_a_brand_created_event(service: Harness) -> None:
    client = service.client()
    brand = await create(client)
    (event,) = await feed(service)
    assert event["type"] == "brand.created"
    assert event["source"] == "/brand_registry"
    assert event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json"
    assert event["subject"] == f"brands/{brand['id']}"
    assert event["countycode"] == TONGSHAN
    assert event["sequence"] == "1".zfill(20)
    assert event["data"]["id"] == brand["id"]
    served = (await client.get(f"/api/v1/brands/{brand['id']}")).json()
    assert same_item(event["data"]["item"], served)


async def test_a_refused_listing_emits_nothing(service: Harness) -> None:
    client = service.client()
    await create(client)
    duplicate = await client.post("/api/v1/brands", json=listing())
    assert duplicate.status_code == 409
    assert len(await feed(service)) == 1


async def test_a_status_change_carries_from_to_and_reason(service: Harness) -> None:
    client = service.client()
    brand = await create(client)
    changed = await set_status(client, brand["id"], "suspended", reason="抽查不合格")
    assert changed.status_code == 200, changed.text
    created, moved = await feed(service)
    assert moved["type"] == "brand.status_changed"
    assert moved["data"]["from"] == "active"
    assert moved["data"]["to"] == "suspended"
    assert moved["data"]["reason"] == "抽查不合格"
    assert same_item(moved["data"]["item"], changed.json())
    assert int(moved["sequence"]) > int(created["sequence"])


async def test_review_flags_raised_and_withdrawn_are_events(service: Harness) -> None:
    client = service.client()
    enterprise = credit_code(5)
    brand = await create(client, enterprise_credit_code=enterprise)
    flagger = service.client(scopes=["brands:flag"], client_id="inspection")
    flag = {
        "enterprise_credit_code": enterprise,
        "source": "inspection",
        "reference": "spot-check-9",
        "reason": "Spot-check failed",
    }
    assert (await flagger.post("/api/v1/brands/review-flags", json=flag)).status_code == 201
    cleared = await flagger.post(
        "/api/v1/brands/review-flags/inspection/spot-check-9/clear", json={"reason": "複查合格"}
    )
    assert cleared.status_code == 200, cleared.text
    raised, withdrawn = [e for e in await feed(service) if e["type"] == "brand.review_flagged"]
    assert raised["subject"] == withdrawn["subject"] == f"brands/{brand['id']}"
    assert raised["data"]["flagged"] is True
    assert raised["data"]["source"] == "inspection"
    assert raised["data"]["reference"] == "spot-check-9"
    assert raised["data"]["item"]["review_required"] is True
    assert withdrawn["data"]["flagged"] is False
    assert withdrawn["data"]["item"]["review_required"] is False


async def test_each_imported_row_is_an_event_and_a_dry_run_none(service: Harness) -> None:
    header = list(listing())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for n in range(1, 4):
        writer.writerow(
            listing(enterprise_credit_code=credit_code(100 + n), product_name=f"產品{n}")
        )
    body = buffer.getvalue().encode()
    client = service.client()
    headers = {"Content-Type": "text/csv"}
    dry = await client.post(
        "/api/v1/brands/import", content=body, params={"dry_run": "true"}, headers=headers
    )
    assert dry.status_code == 200, dry.text
    assert await feed(service) == []
    stored = await client.post("/api/v1/brands/import", content=body, headers=headers)
    assert stored.status_code == 201, stored.text
    events = await feed(service)
    assert [e["type"] for e in events] == ["brand.created"] * 3
    assert sorted(e["data"]["item"]["product_name"] for e in events) == ["產品1", "產品2", "產品3"]


async def test_a_bound_reader_sees_only_its_counties(service: Harness) -> None:
    client = service.client()
    await create(client, county_code=TONGSHAN)
    await create(client, county_code=PIZHOU, enterprise_credit_code=credit_code(2))
    bound = await feed(service, county_codes=[PIZHOU])
    assert [e["countycode"] for e in bound] == [PIZHOU]
    assert len(await feed(service)) == 2


async def test_a_reader_without_brands_read_sees_no_brand_events(service: Harness) -> None:
    await create(service.client())
    assert await feed(service, scopes=["events:read", "certificates:read"]) == []
    refused = await service.client(scopes=["brands:read"]).get(EVENTS)
    assert refused.status_code == 403


async def test_the_feed_resumes_after_its_cursor(service: Harness) -> None:
    client = service.client()
    for n in range(3):
        await create(client, enterprise_credit_code=credit_code(20 + n))
    reader = service.client(scopes=READER)
    first = (await reader.get(EVENTS, params={"limit": 2})).json()
    rest = (await reader.get(EVENTS, params={"after": first["next_after"]})).json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3
    assert rest["next_after"] == 3


async def test_the_migration_creates_and_drops_the_event_tables(tmp_path: Path) -> None:
    await check_migration_adds_tables(
        spec=SPEC, tmp_dir=tmp_path, before="0005", revision="0006", tables={"event", "event_once"}
    )
