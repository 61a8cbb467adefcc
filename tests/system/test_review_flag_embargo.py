"""A review flag keeps the spot-check embargo, with the real brand registry and inspection
service as uvicorn processes: a failure whose bulletin is due tomorrow flags the listing only
once that day has come, and a re-inspection that overturns a failure clears the flag on its
own bulletin day, each across a restart of the inspection service.

The day comes by the bureau's calendar: the inspection service runs at UTC-12, where the
bulletin day is still tomorrow, and is restarted at UTC+14, where it has come (the calendars
are 26 hours apart). Each call to the brand registry carries the ID of the request that
caused it, which the registry's access line names."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from kit.identifiers import credit_code_check_char
from tests.system.inspection_processes import Suite, make_suite

BEHIND, AHEAD = "Etc/GMT+12", "Etc/GMT-14"  # UTC-12 and UTC+14 (POSIX signs)


def _today(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def _tomorrow_behind() -> date:
    """Tomorrow at UTC-12, not about to become today while a test runs."""
    now = datetime.now(ZoneInfo(BEHIND))
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    if (midnight - now).total_seconds() < 120:
        time.sleep((midnight - now).total_seconds() + 1)
    return _today(BEHIND) + timedelta(days=1)


def _credit_code(serial: int) -> str:
    first17 = f"91320303MA2XQ{serial:04d}"
    return first17 + credit_code_check_char(first17)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = make_suite(tmp_path_factory.mktemp("review-flag-embargo"), INSPECTION_TIMEZONE=BEHIND)
    running.brand_registry.start()
    try:
        yield running
    finally:
        running.stop()


def _calendar(suite: Suite, zone: str) -> None:
    """(Re)start the inspection service on the bureau's calendar at `zone`."""
    if suite.inspection.running:
        if suite.inspection.env["INSPECTION_TIMEZONE"] == zone:
            return
        suite.inspection.stop()
        assert suite.inspection.shut_down_cleanly()
    suite.inspection.env["INSPECTION_TIMEZONE"] = zone
    suite.inspection.start()


def _eventually(condition: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.2)


def _listing(suite: Suite, credit_code: str) -> str:
    response = httpx.post(
        f"{suite.brand_registry.url}/api/v1/brands",
        headers=suite.headers("brand_registry", "brands:write"),
        json={
            "product_name": "速凍湯圓",
            "brand_name": "彭城",
            "enterprise_credit_code": credit_code,
            "enterprise_name": "徐州彭城食品有限公司",
            "county_code": "320323",
            "tier": "city_famous",
            "sector": "industry",
            "awarded_on": (date.today() - timedelta(days=200)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _record(suite: Suite, request_id: str, **fields: Any) -> dict[str, Any]:
    sampled = _today(BEHIND) - timedelta(days=20)
    body = {
        "plan_code": "2026-SJ-11",
        "level": "provincial",
        "product_category": "food",
        "product_name": "速凍湯圓",
        "enterprise_name": "徐州彭城食品有限公司",
        "county_code": "320323",
        "sampled_on": sampled.isoformat(),
        "result": "fail",
        "nonconforming_items": [
            {"item": "菌落總數", "requirement": "≤10000 CFU/g", "measured": "52000 CFU/g"}
        ],
        "published_on": (sampled + timedelta(days=5)).isoformat(),
        **fields,
    }
    response = httpx.post(
        f"{suite.inspection.url}/api/v1/spot-checks",
        headers={**suite.headers("inspection", "spot-checks:write"), "X-Request-ID": request_id},
        json=body,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _brand(suite: Suite, brand_id: str) -> dict[str, Any]:
    headers = suite.headers("brand_registry", "brands:read")
    listing = httpx.get(f"{suite.brand_registry.url}/api/v1/brands/{brand_id}", headers=headers)
    history = httpx.get(
        f"{suite.brand_registry.url}/api/v1/brands/{brand_id}/history", headers=headers
    )
    body: dict[str, Any] = listing.json()
    body["history"] = history.json()["items"]
    return body


def _actions(suite: Suite, brand_id: str) -> list[str]:
    return [entry["action"] for entry in _brand(suite, brand_id)["history"]]


def _backlog(suite: Suite) -> dict[str, Any]:
    ready = httpx.get(f"{suite.inspection.url}/health/ready")
    assert ready.status_code == 200, ready.text
    details: dict[str, Any] = ready.json()["checks"]["outbox"]
    return details


def _registry_calls(suite: Suite, request_id: str) -> list[tuple[str, str, int]]:
    """The brand registry's access lines naming `request_id`: method, route, status."""
    calls = []
    for text in suite.brand_registry.log_path.read_text(encoding="utf-8").splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if line.get("message") == "request" and line.get("request_id") == request_id:
            calls.append((line["method"], line["route"], line["status"]))
    return calls


def test_a_failure_due_tomorrow_flags_the_listing_once_its_day_has_come(suite: Suite) -> None:
    _calendar(suite, BEHIND)
    credit_code = _credit_code(1)
    brand_id = _listing(suite, credit_code)
    request_id = f"record-{secrets.token_hex(8)}"
    _record(
        suite,
        request_id,
        enterprise_credit_code=credit_code,
        sample_code="SJ11-0001",
        published_on=_tomorrow_behind().isoformat(),
    )
    time.sleep(1.5)  # several worker cycles: nothing leaves before the bulletin day
    brand = _brand(suite, brand_id)
    assert brand["review_required"] is False
    assert brand["review_reason"] is None
    assert [e["action"] for e in brand["history"]] == ["created"]
    assert _backlog(suite).get("scheduled") == 1

    _calendar(suite, AHEAD)
    _eventually(lambda: _brand(suite, brand_id)["review_required"])
    _eventually(lambda: _backlog(suite)["pending"] == 0)
    time.sleep(1.0)
    brand = _brand(suite, brand_id)
    assert [e["action"] for e in brand["history"]] == ["created", "review_flagged"]
    assert "菌落總數" in brand["review_reason"]
    post = ("POST", "/api/v1/brands/review-flags", 201)
    assert _registry_calls(suite, request_id) == [post]


def test_an_overturning_reinspection_clears_the_flag_on_its_own_bulletin_day(
    suite: Suite,
) -> None:
    _calendar(suite, BEHIND)
    credit_code = _credit_code(2)
    brand_id = _listing(suite, credit_code)
    original = _record(
        suite,
        f"record-{secrets.token_hex(8)}",
        enterprise_credit_code=credit_code,
        sample_code="SJ11-0002",
    )
    _eventually(lambda: _brand(suite, brand_id)["review_required"])

    request_id = f"retest-{secrets.token_hex(8)}"
    _record(
        suite,
        request_id,
        enterprise_credit_code=credit_code,
        sample_code="SJ11-0002",
        reinspection_of=original["id"],
        result="pass",
        nonconforming_items=[],
        sampled_on=(_today(BEHIND) - timedelta(days=2)).isoformat(),
        published_on=_tomorrow_behind().isoformat(),
    )
    time.sleep(1.5)
    assert _brand(suite, brand_id)["review_required"] is True
    assert _registry_calls(suite, request_id) == []

    _calendar(suite, AHEAD)
    _eventually(lambda: not _brand(suite, brand_id)["review_required"])
    _eventually(lambda: _backlog(suite)["pending"] == 0)
    time.sleep(1.0)
    brand = _brand(suite, brand_id)
    assert [e["action"] for e in brand["history"]] == [
        "created",
        "review_flagged",
        "review_flag_cleared",
    ]
    cleared = brand["history"][-1]
    assert original["id"] in cleared["reason"]
    assert "overturned" in cleared["reason"]
    assert brand["review_reason"] is None
    clear = ("POST", "/api/v1/brands/review-flags/{source}/{reference:path}/clear", 200)
    assert _registry_calls(suite, request_id) == [clear]
    backlog = _backlog(suite)
    assert (backlog["scheduled"], backlog["held"], backlog["failed"]) == (0, 0, 0)
