"""Alerts: listings expiring within N days, overdue suspensions, and the daily sweep that
emits each alert once."""

import asyncio
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from brand_registry import alerts
from brand_registry.app import build_app
from brand_registry.settings import Settings
from brand_registry.tests.support import create, credit_code, set_status
from kit.testing import Harness, xlsx_values


@pytest.fixture
def today(service: Harness) -> date:
    settings: Settings = service.app.state.settings
    return settings.today()


async def _listing(service: Harness, number: int, valid_until: date) -> dict[str, Any]:
    return await create(
        service.client(),
        product_name=f"產品{number}",
        enterprise_credit_code=credit_code(number),
        valid_until=valid_until.isoformat(),
    )


async def _status(service: Harness, item: dict[str, Any], status: str, on: date) -> None:
    response = await set_status(service.client(), item["id"], status, effective_on=on.isoformat())
    assert response.status_code == 200, response.text


@pytest.fixture
async def listings(service: Harness, today: date) -> dict[str, dict[str, Any]]:
    """One listing per boundary, named by what it is today."""
    offsets = {"today": 0, "in_7": 7, "in_30": 30, "in_31": 31, "in_90": 90, "yesterday": -1}
    items = {
        name: await _listing(service, number, today + timedelta(days=offset))
        for number, (name, offset) in enumerate(offsets.items(), start=1)
    }
    items["suspended"] = await _listing(service, 20, today + timedelta(days=10))
    items["revoked"] = await _listing(service, 21, today + timedelta(days=10))
    items["far"] = await _listing(service, 22, date(2035, 12, 31))
    await _status(service, items["suspended"], "suspended", today)
    await _status(service, items["revoked"], "revoked", today)
    return items


async def _names(service: Harness, **params: Any) -> list[str]:
    response = await service.client().get("/api/v1/brands", params=params)
    assert response.status_code == 200, response.text
    return sorted(item["product_name"] for item in response.json()["items"])


def _products(listings: dict[str, dict[str, Any]], *names: str) -> list[str]:
    return sorted(listings[name]["product_name"] for name in names)


async def test_expiring_within_days_lists_listings_in_force_up_to_the_last_day(
    service: Harness, listings: dict[str, dict[str, Any]]
) -> None:
    assert await _names(service, expiring_within_days=30) == _products(
        listings, "today", "in_7", "in_30"
    )
    assert await _names(service, expiring_within_days=31) == _products(
        listings, "today", "in_7", "in_30", "in_31"
    )
    assert await _names(service, expiring_within_days=1) == _products(listings, "today")
    assert await _names(service, expiring_within_days=90, county_code="320382") == []


async def test_expiring_within_days_counts_from_as_of(
    service: Harness, listings: dict[str, dict[str, Any]], today: date
) -> None:
    on_day_7 = (today + timedelta(days=7)).isoformat()
    assert await _names(service, expiring_within_days=23, as_of=on_day_7) == _products(
        listings, "in_7", "in_30"
    )
    earlier = (today - timedelta(days=1)).isoformat()
    assert await _names(service, expiring_within_days=11, as_of=earlier) == _products(
        listings, "yesterday", "today", "in_7", "suspended", "revoked"
    )


async def test_the_export_takes_the_same_filter(
    service: Harness, listings: dict[str, dict[str, Any]]
) -> None:
    client = service.client()
    csv = await client.get("/api/v1/brands/export", params={"expiring_within_days": 7})
    assert csv.status_code == 200, csv.text
    assert len(csv.text.strip().splitlines()) == 3
    xlsx = await client.get(
        "/api/v1/brands/export", params={"expiring_within_days": 7, "format": "xlsx"}
    )
    rows = xlsx_values(xlsx.content)
    assert len(rows) == 3
    assert "暂停超期" in rows[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("expiring_within_days", "0"),
        ("expiring_within_days", "3651"),
        ("expiring_within_days", "soon"),
        ("overdue_suspension", "maybe"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(service: Harness, name: str, value: str) -> None:
    response = await service.client().get("/api/v1/brands", params={name: value})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [name]


async def test_the_calendars_end_bounds_the_window(service: Harness) -> None:
    response = await service.client().get(
        "/api/v1/brands", params={"expiring_within_days": 3650, "as_of": "9999-12-30"}
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def suspensions(service: Harness, today: date) -> dict[str, dict[str, Any]]:
    """Listings suspended six months plus a day, six months minus a day, and one suspended
    long ago whose validity has ended."""
    cutoff = service.app.state.catalogue.suspension_cutoff(today)
    overdue = await _listing(service, 30, date(2035, 12, 31))
    not_yet = await _listing(service, 31, date(2035, 12, 31))
    lapsed = await _listing(service, 32, today - timedelta(days=1))
    reinstated = await _listing(service, 33, date(2035, 12, 31))
    await _status(service, overdue, "suspended", cutoff - timedelta(days=1))
    await _status(service, not_yet, "suspended", cutoff + timedelta(days=1))
    await _status(service, lapsed, "suspended", cutoff - timedelta(days=30))
    await _status(service, reinstated, "suspended", cutoff - timedelta(days=30))
    await _status(service, reinstated, "active", cutoff)
    return {"overdue": overdue, "not_yet": not_yet, "lapsed": lapsed, "reinstated": reinstated}


async def test_overdue_suspensions_are_listed_and_flagged(
    service: Harness, suspensions: dict[str, dict[str, Any]]
) -> None:
    client = service.client()
    overdue = (await client.get("/api/v1/brands", params={"overdue_suspension": "true"})).json()
    assert [item["id"] for item in overdue["items"]] == [suspensions["overdue"]["id"]]
    assert overdue["items"][0]["suspension_overdue"] is True
    suspended = (await client.get("/api/v1/brands", params={"status": "suspended"})).json()
    flags = {item["id"]: item["suspension_overdue"] for item in suspended["items"]}
    assert flags == {suspensions["overdue"]["id"]: True, suspensions["not_yet"]["id"]: False}
    one = await client.get(f"/api/v1/brands/{suspensions['overdue']['id']}")
    assert one.json()["suspension_overdue"] is True
    everything = (await client.get("/api/v1/brands", params={"overdue_suspension": "false"})).json()
    assert len(everything["items"]) == 4


def test_the_suspension_cutoff_is_calendar_months_back(service: Harness) -> None:
    catalogue = service.app.state.catalogue
    assert catalogue.suspension_cutoff(date(2026, 12, 2)) == date(2026, 6, 2)
    assert catalogue.suspension_cutoff(date(2026, 8, 31)) == date(2026, 2, 28)
    assert catalogue.suspension_cutoff(date(2026, 3, 15)) == date(2025, 9, 15)


async def test_due_alerts_follow_the_thresholds_and_the_suspension_limit(
    service: Harness,
    listings: dict[str, dict[str, Any]],
    suspensions: dict[str, dict[str, Any]],
    today: date,
) -> None:
    async with service.app.state.sessionmaker() as session:
        due = await alerts.due_alerts(
            session=session,
            catalogue=service.app.state.catalogue,
            today=today,
            thresholds=[90, 30, 7],
        )
    keyed = {alert.key: alert for alert in due}
    ids = {name: item["id"] for name, item in {**listings, **suspensions}.items()}
    since = service.app.state.catalogue.suspension_cutoff(today) - timedelta(days=1)
    assert set(keyed) == {
        f"brand.expiring_soon:{ids['today']}:7",
        f"brand.expiring_soon:{ids['in_7']}:7",
        f"brand.expiring_soon:{ids['in_30']}:30",
        f"brand.expiring_soon:{ids['in_31']}:90",
        f"brand.expiring_soon:{ids['in_90']}:90",
        f"brand.suspension_overdue:{ids['overdue']}:{since.isoformat()}",
    }
    soon = keyed[f"brand.expiring_soon:{ids['in_30']}:30"]
    assert soon.subject == f"brands/{ids['in_30']}"
    assert soon.county_code == "320323"
    assert (soon.data["days_left"], soon.data["threshold_days"]) == (30, 30)
    assert (
        soon.data["item"] == (await service.client().get(f"/api/v1/brands/{ids['in_30']}")).json()
    )
    late = keyed[f"brand.suspension_overdue:{ids['overdue']}:{since.isoformat()}"]
    assert late.data["item"]["suspension_overdue"] is True
    assert late.data["limit_months"] == 6


async def _feed(service: Harness) -> list[dict[str, Any]]:
    client = service.client(["events:read", "brands:read"])
    response = await client.get("/api/v1/events", params={"type": "brand.*"})
    assert response.status_code == 200, response.text
    return [
        event
        for event in response.json()["items"]
        if event["type"] in {alerts.EXPIRING_SOON, alerts.SUSPENSION_OVERDUE}
    ]


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_the_sweep_emits_each_alert_once_across_runs_and_restarts(
    service: Harness,
    listings: dict[str, dict[str, Any]],
    suspensions: dict[str, dict[str, Any]],
    today: date,
) -> None:
    app = service.app
    settings: Settings = app.state.settings

    async def run() -> int:
        return await alerts.sweep(
            sessionmaker=app.state.sessionmaker,
            catalogue=app.state.catalogue,
            today=today,
            thresholds=settings.alert_thresholds_days,
        )

    assert await run() == 6
    assert await run() == 0
    first = await _feed(service)
    expected = [
        (alerts.EXPIRING_SOON, listings[name]["id"], threshold)
        for name, threshold in [
            ("today", 7),
            ("in_7", 7),
            ("in_30", 30),
            ("in_31", 90),
            ("in_90", 90),
        ]
    ] + [(alerts.SUSPENSION_OVERDUE, suspensions["overdue"]["id"], None)]
    assert sorted(
        (e["type"], e["data"]["id"], e["data"].get("threshold_days")) for e in first
    ) == sorted(expected, key=lambda entry: (entry[0], entry[1], entry[2] or 0))
    overdue = next(e for e in first if e["type"] == alerts.SUSPENSION_OVERDUE)
    assert overdue["subject"] == f"brands/{suspensions['overdue']['id']}"
    assert overdue["source"] == "/brand_registry"
    assert overdue["countycode"] == "320323"

    later = await _listing(service, 40, today + timedelta(days=3))
    restarted = build_app(
        settings.model_copy(update={"alert_sweep_enabled": True, "alert_sweep_delay_seconds": 0})
    )
    async with restarted.router.lifespan_context(restarted):
        sweeper = restarted.state.alert_sweeper
        await _until(lambda: sweeper.last_run_at is not None)
        assert sweeper.last_emitted == 1
    after = await _feed(service)
    assert len(after) == 7
    assert [e["data"]["id"] for e in after[6:]] == [later["id"]]


async def test_the_sweep_task_runs_at_each_interval_and_stops_with_the_app(
    service: Harness, listings: dict[str, dict[str, Any]]
) -> None:
    settings: Settings = service.app.state.settings
    app = build_app(
        settings.model_copy(
            update={
                "alert_sweep_enabled": True,
                "alert_sweep_delay_seconds": 0,
                "alert_sweep_interval_seconds": 0.05,
            }
        )
    )
    async with app.router.lifespan_context(app):
        sweeper = app.state.alert_sweeper
        await _until(lambda: sweeper.last_run_at is not None)
        first_run = sweeper.last_run_at
        await _until(lambda: sweeper.last_run_at != first_run)
        assert sweeper.last_emitted == 0
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < 2
    assert len(await _feed(service)) == 5
