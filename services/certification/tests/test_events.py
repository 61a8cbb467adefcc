"""Change events of the certification service: written with each change, served by its feed
as CloudEvents, filtered by the reader's scopes and counties; and the migration creating them."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from certification.app import SPEC
from certification.tests.conftest import make_credit_code
from kit.db import as_utc
from kit.testing import Harness, check_migration_adds_tables

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
EVENTS = "/api/v1/events"
READER = ["events:read", "certificates:read"]


async def feed(service: Harness, scopes: list[str] = READER, **kwargs: Any) -> list[dict[str, Any]]:
    response = await service.client(scopes=scopes, **kwargs).get(EVENTS, params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def same_item(event_item: dict[str, Any], served: dict[str, Any]) -> bool:
    """Whether an event's item is the record as served (SQLite serves stored times naive)."""

    def moment(text: str) -> datetime:
        return as_utc(datetime.fromisoformat(text))

    times = ("created_at", "updated_at")
    return all(moment(event_item[name]) == moment(served[name]) for name in times) and {
        k: v for k, v in event_item.items() if k not in times
    } == {k: v for k, v in served.items() if k not in times}


async def test_a_new_certificate_is_a_certificate_created_event(
    service: Harness, new_certificate: NewCertificate
) -> None:
    certificate = await new_certificate()
    (event,) = await feed(service)
    assert event["type"] == "certificate.created"
    assert event["source"] == "/certification"
    assert event["specversion"] == "1.0"
    assert event["subject"] == f"certificates/{certificate['id']}"
    assert event["countycode"] == "320323"
    assert event["sequence"] == "1".zfill(20)
    assert event["data"]["id"] == certificate["id"]
    assert same_item(event["data"]["item"], certificate)


async def test_a_status_change_carries_from_to_and_reason(
    service: Harness, new_certificate: NewCertificate
) -> None:
    certificate = await new_certificate(issued_on="2024-03-01")
    client = service.client()
    url = f"/api/v1/certificates/{certificate['id']}"
    etag = (await client.get(url)).headers["ETag"]
    changed = await client.post(
        f"{url}/status",
        json={"status": "suspended", "reason": "監督審核不合格"},
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    _, moved = await feed(service)
    assert moved["type"] == "certificate.status_changed"
    assert (moved["data"]["from"], moved["data"]["to"]) == ("valid", "suspended")
    assert moved["data"]["reason"] == "監督審核不合格"
    assert same_item(moved["data"]["item"], changed.json())
    stale = await client.post(
        f"{url}/status", json={"status": "valid", "reason": "x"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert len(await feed(service)) == 2


def _csv(numbers: range) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["certificate_number", "standard", "certification_body", "enterprise_credit_code"]
    header += ["enterprise_name", "county_code", "scope", "issued_on"]
    writer.writerow(header)
    for n in numbers:
        writer.writerow([
            f"IMP-{n}", "ISO 14001:2015", "中國質量認證中心", make_credit_code(n),
            f"徐州第{n}化工有限公司", "320381", "化工產品的生產", "2023-05-01",
        ])  # fmt: skip
    return buffer.getvalue().encode()


async def test_each_imported_row_is_an_event_as_its_get_answers(service: Harness) -> None:
    client = service.client()
    headers = {"Content-Type": "text/csv"}
    url = "/api/v1/certificates/import"
    dry = await client.post(
        url, content=_csv(range(1, 4)), params={"dry_run": "true"}, headers=headers
    )
    assert dry.status_code == 200, dry.text
    assert await feed(service) == []
    stored = await client.post(url, content=_csv(range(1, 4)), headers=headers)
    assert stored.status_code == 201, stored.text
    events = await feed(service)
    assert [e["type"] for e in events] == ["certificate.created"] * 3
    for event in events:
        served = (await client.get(f"/api/v1/certificates/{event['data']['id']}")).json()
        assert same_item(event["data"]["item"], served)


async def test_bound_and_scope_limited_readers(
    service: Harness, new_certificate: NewCertificate
) -> None:
    await new_certificate(county_code="320323")
    await new_certificate(county_code="320381")
    bound = await feed(service, county_codes=["320381"])
    assert [e["countycode"] for e in bound] == ["320381"]
    assert await feed(service, scopes=["events:read", "brands:read"]) == []
    assert (await service.client(scopes=["certificates:read"]).get(EVENTS)).status_code == 403


async def test_the_migration_creates_and_drops_the_event_tables(tmp_path: Path) -> None:
    await check_migration_adds_tables(
        spec=SPEC, tmp_dir=tmp_path, before="0003", revision="0004", tables={"event", "event_once"}
    )
