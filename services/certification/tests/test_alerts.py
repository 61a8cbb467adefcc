"""Alerts: certificates expiring within N days, overdue suspensions, and the daily sweep
that emits each alert once."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from certification import alerts
from certification import service as service_rules
from certification.app import build_app
from certification.settings import Settings
from kit.testing import Harness, xlsx_values

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
FUTURE = "2035-12-31"


async def _change(service: Harness, item: dict[str, Any], status: str, on: date) -> None:
    client = service.client()
    url = f"/api/v1/certificates/{item['id']}"
    etag = (await client.get(url)).headers["ETag"]
    body = {"status": status, "reason": "監督審核發現嚴重不符合", "effective_on": on.isoformat()}
    response = await client.post(f"{url}/status", json=body, headers={"If-Match": etag})
    assert response.status_code == 200, response.text


@pytest.fixture
async def expiring(
    service: Harness, new_certificate: NewCertificate, today: date
) -> dict[str, dict[str, Any]]:
    """One certificate per boundary, named by what it is on today."""

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    items = {
        "today": await new_certificate(certificate_number="T-0", expires_on=day(0)),
        "in_7": await new_certificate(certificate_number="T-7", expires_on=day(7)),
        "in_30": await new_certificate(certificate_number="T-30", expires_on=day(30)),
        "in_31": await new_certificate(certificate_number="T-31", expires_on=day(31)),
        "in_90": await new_certificate(certificate_number="T-90", expires_on=day(90)),
        "yesterday": await new_certificate(certificate_number="T-1", expires_on=day(-1)),
        "suspended": await new_certificate(certificate_number="S-10", expires_on=day(10)),
        "withdrawn": await new_certificate(certificate_number="W-10", expires_on=day(10)),
        "far": await new_certificate(certificate_number="F-1", expires_on=FUTURE),
    }
    await _change(service, items["suspended"], "suspended", today)
    await _change(service, items["withdrawn"], "withdrawn", today)
    return items


async def _numbers(service: Harness, **params: Any) -> list[str]:
    response = await service.client().get("/api/v1/certificates", params=params)
    assert response.status_code == 200, response.text
    return sorted(item["certificate_number"] for item in response.json()["items"])


async def test_expiring_within_days_lists_certificates_in_force_up_to_the_last_day(
    service: Harness, expiring: dict[str, dict[str, Any]]
) -> None:
    assert await _numbers(service, expiring_within_days=30) == ["T-0", "T-30", "T-7"]
    assert await _numbers(service, expiring_within_days=31) == ["T-0", "T-30", "T-31", "T-7"]
    assert await _numbers(service, expiring_within_days=1) == ["T-0"]
    assert await _numbers(service, expiring_within_days=90, county_code="320302") == []


async def test_expiring_within_days_counts_from_as_of(
    service: Harness, expiring: dict[str, dict[str, Any]], today: date
) -> None:
    # On the day T-7 expires, T-0 has expired and T-30 is 23 days away.
    on_day_7 = (today + timedelta(days=7)).isoformat()
    assert await _numbers(service, expiring_within_days=23, as_of=on_day_7) == ["T-30", "T-7"]
    # Before the suspension and withdrawal, both were in force and expiring.
    earlier = (today - timedelta(days=1)).isoformat()
    assert await _numbers(service, expiring_within_days=11, as_of=earlier) == [
        "S-10",
        "T-0",
        "T-1",
        "T-7",
        "W-10",
    ]


async def test_the_export_takes_the_same_filter(
    service: Harness, expiring: dict[str, dict[str, Any]]
) -> None:
    client = service.client()
    csv = await client.get("/api/v1/certificates/export", params={"expiring_within_days": 7})
    assert csv.status_code == 200, csv.text
    lines = csv.text.lstrip("\ufeff").strip().splitlines()
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["T-0", "T-7"]
    xlsx = await client.get(
        "/api/v1/certificates/export", params={"expiring_within_days": 7, "format": "xlsx"}
    )
    assert len(xlsx_values(xlsx.content)) == 3


@pytest.mark.parametrize("value", ["0", "3651", "-5", "soon"])
async def test_a_bad_window_is_a_422_naming_the_field(service: Harness, value: str) -> None:
    response = await service.client().get(
        "/api/v1/certificates", params={"expiring_within_days": value}
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["expiring_within_days"]


async def test_the_calendars_end_bounds_the_window(service: Harness) -> None:
    response = await service.client().get(
        "/api/v1/certificates", params={"expiring_within_days": 3650, "as_of": "9999-12-30"}
    )
    assert response.status_code == 200, response.text


async def test_overdue_suspensions_start_a_day_past_the_limit(
    service: Harness, new_certificate: NewCertificate, today: date
) -> None:
    overdue = await new_certificate(certificate_number="O-1", expires_on=FUTURE)
    not_yet = await new_certificate(certificate_number="O-2", expires_on=FUTURE)
    lapsed = await new_certificate(
        certificate_number="O-3", expires_on=(today - timedelta(days=1)).isoformat()
    )
    six_months_ago = service_rules.months_before(today, 6)
    await _change(service, overdue, "suspended", six_months_ago - timedelta(days=1))
    await _change(service, not_yet, "suspended", six_months_ago + timedelta(days=1))
    await _change(service, lapsed, "suspended", six_months_ago - timedelta(days=30))
    assert await _numbers(service, overdue_suspension="true") == ["O-1"]


async def test_due_alerts_follow_the_thresholds_and_the_suspension_limit(
    service: Harness, new_certificate: NewCertificate, expiring: dict[str, Any], today: date
) -> None:
    limit = service.app.state.catalogue.suspension_limit_months
    assert limit == 6
    overdue = await new_certificate(certificate_number="O-1", expires_on=FUTURE)
    not_yet = await new_certificate(certificate_number="O-2", expires_on=FUTURE)
    six_months_ago = service_rules.months_before(today, 6)
    await _change(service, overdue, "suspended", six_months_ago - timedelta(days=1))
    await _change(service, not_yet, "suspended", six_months_ago + timedelta(days=1))
    confidential = await new_certificate(
        certificate_number="C-1",
        expires_on=(today + timedelta(days=3)).isoformat(),
        confidential=True,
    )
    async with service.app.state.sessionmaker() as session:
        due = await alerts.due_alerts(
            session=session,
            catalogue=service.app.state.catalogue,
            today=today,
            thresholds=[90, 30, 7],
        )
    keyed = {alert.key: alert for alert in due}
    ids = {name: item["id"] for name, item in expiring.items()}
    assert set(keyed) == {
        f"certificate.expiring_soon:{ids['today']}:7",
        f"certificate.expiring_soon:{ids['in_7']}:7",
        f"certificate.expiring_soon:{ids['in_30']}:30",
        f"certificate.expiring_soon:{ids['in_31']}:90",
        f"certificate.expiring_soon:{ids['in_90']}:90",
        f"certificate.suspension_overdue:{overdue['id']}:{six_months_ago - timedelta(days=1)}",
    }
    assert confidential["id"] not in {alert.data["id"] for alert in due}
    soon = keyed[f"certificate.expiring_soon:{ids['in_30']}:30"]
    assert soon.subject == f"certificates/{ids['in_30']}"
    assert soon.county_code == "320323"
    assert soon.data["days_left"] == 30
    assert soon.data["threshold_days"] == 30
    assert soon.data["kind"] == "management_system"
    assert soon.data["item"]["certificate_number"] == "T-30"
    late = keyed[
        f"certificate.suspension_overdue:{overdue['id']}:{six_months_ago - timedelta(days=1)}"
    ]
    assert late.data["item"]["suspension_overdue"] is True
    assert late.data["limit_months"] == 6
    assert not_yet["id"] not in {alert.data["id"] for alert in due}


async def _feed(service: Harness) -> list[dict[str, Any]]:
    client = service.client(["events:read", "certificates:read"])
    response = await client.get("/api/v1/events", params={"type": "certificate.*"})
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
    service: Harness, new_certificate: NewCertificate, expiring: dict[str, Any], today: date
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

    assert await run() == 5
    assert await run() == 0
    first = await _feed(service)
    assert sorted((e["subject"], e["data"]["threshold_days"]) for e in first) == sorted(
        (f"certificates/{expiring[name]['id']}", threshold)
        for name, threshold in [
            ("today", 7),
            ("in_7", 7),
            ("in_30", 30),
            ("in_31", 90),
            ("in_90", 90),
        ]
    )
    event = next(e for e in first if e["data"]["id"] == expiring["in_7"]["id"])
    assert event["source"] == "/certification"
    assert event["countycode"] == "320323"
    assert event["data"]["item"]["certificate_number"] == "T-7"

    later = await new_certificate(
        certificate_number="L-3", expires_on=(today + timedelta(days=3)).isoformat()
    )
    restarted = build_app(
        settings.model_copy(update={"alert_sweep_enabled": True, "alert_sweep_delay_seconds": 0})
    )
    async with restarted.router.lifespan_context(restarted):
        sweeper = restarted.state.alert_sweeper
        await _until(lambda: sweeper.last_run_at is not None)
        assert sweeper.last_emitted == 1
    after = await _feed(service)
    assert len(after) == 6
    assert [e["data"]["id"] for e in after[5:]] == [later["id"]]
    assert len({e["id"] for e in after}) == 6


async def test_the_sweep_task_runs_at_each_interval_and_stops_with_the_app(
    service: Harness, expiring: dict[str, Any]
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
        ready = await service.client().get("/health/ready")
        assert ready.status_code == 200
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < 2
    assert len(await _feed(service)) == 5
