"""A failed spot-check flags the enterprise's brand listing for review, exactly once, even
when the brand registry is down when the failure is recorded and the inspection service
restarts before it comes back. Both services run for real, as uvicorn processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from kit.identifiers import credit_code_check_char
from tests.system.inspection_processes import Suite, make_suite

PAST = date.today() - timedelta(days=20)


def _credit_code(serial: int) -> str:
    first17 = f"91320303MA1XQ{serial:04d}"
    return first17 + credit_code_check_char(first17)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Both services, shared by this module's tests, each test using its own enterprise."""
    running = make_suite(tmp_path_factory.mktemp("inspection-system"))
    try:
        yield running
    finally:
        running.stop()


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
            "product_name": "速凍水餃",
            "brand_name": "彭城",
            "enterprise_credit_code": credit_code,
            "enterprise_name": "徐州彭城食品有限公司",
            "county_code": "320323",
            "tier": "provincial_famous",
            "sector": "industry",
            "awarded_on": (date.today() - timedelta(days=200)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _record_failure(suite: Suite, credit_code: str) -> str:
    response = httpx.post(
        f"{suite.inspection.url}/api/v1/spot-checks",
        headers=suite.headers("inspection", "spot-checks:write"),
        json={
            "plan_code": "2024-GJ-07",
            "level": "national",
            "product_category": "food",
            "product_name": "速凍水餃",
            "enterprise_credit_code": credit_code,
            "enterprise_name": "徐州彭城食品有限公司",
            "county_code": "320323",
            "sample_code": f"GJ07-{credit_code[-6:]}",
            "sampled_on": (PAST - timedelta(days=7)).isoformat(),
            "result": "fail",
            "nonconforming_items": [
                {"item": "過氧化值", "requirement": "≤0.25 g/100g", "measured": "0.41 g/100g"}
            ],
            "published_on": PAST.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _backlog(suite: Suite) -> dict[str, Any]:
    ready = httpx.get(f"{suite.inspection.url}/health/ready")
    assert ready.status_code == 200, ready.text
    details: dict[str, Any] = ready.json()["checks"]["outbox"]
    return details


def _review_flags(suite: Suite, brand_id: str) -> list[dict[str, Any]]:
    headers = suite.headers("brand_registry", "brands:read")
    history = httpx.get(
        f"{suite.brand_registry.url}/api/v1/brands/{brand_id}/history", headers=headers
    )
    assert history.status_code == 200, history.text
    body = history.json()
    entries = body["items"] if isinstance(body, dict) else body
    return [entry for entry in entries if entry["action"] == "review_flagged"]


def _assert_flagged_once(suite: Suite, brand_id: str, spot_check_id: str) -> None:
    headers = suite.headers("brand_registry", "brands:read")

    def flagged() -> bool:
        brand = httpx.get(f"{suite.brand_registry.url}/api/v1/brands/{brand_id}", headers=headers)
        return bool(brand.json()["review_required"])

    _eventually(flagged)
    _eventually(lambda: _backlog(suite)["pending"] == 0)
    time.sleep(1.5)  # several more worker cycles: nothing is sent again
    flags = _review_flags(suite, brand_id)
    assert len(flags) == 1
    assert spot_check_id in flags[0]["reason"]
    assert "過氧化值" in flags[0]["reason"]
    assert _backlog(suite) == {**_backlog(suite), "pending": 0, "failed": 0}


def _registry_down_with_a_listing(suite: Suite, credit_code: str) -> str:
    if not suite.brand_registry.running:
        suite.brand_registry.start()
    brand_id = _listing(suite, credit_code)
    suite.brand_registry.stop()
    if not suite.inspection.running:
        suite.inspection.start()
    return brand_id


def test_a_failure_recorded_while_the_registry_is_down_flags_the_listing_once(
    suite: Suite,
) -> None:
    brand_id = _registry_down_with_a_listing(suite, _credit_code(1))

    spot_check_id = _record_failure(suite, _credit_code(1))
    _eventually(lambda: _backlog(suite)["pending"] == 1)
    time.sleep(1.0)
    assert _backlog(suite)["pending"] == 1
    metrics = httpx.get(f"{suite.inspection.url}/metrics").text
    assert "inspection_outbox_pending 1.0" in metrics

    suite.brand_registry.start()
    _assert_flagged_once(suite, brand_id, spot_check_id)


def test_the_notice_survives_a_restart_of_the_inspection_service(suite: Suite) -> None:
    brand_id = _registry_down_with_a_listing(suite, _credit_code(2))

    spot_check_id = _record_failure(suite, _credit_code(2))
    _eventually(lambda: _backlog(suite)["pending"] == 1)
    suite.inspection.stop()
    assert suite.inspection.shut_down_cleanly()

    suite.inspection.start()
    assert _backlog(suite)["pending"] == 1
    suite.brand_registry.start()
    _assert_flagged_once(suite, brand_id, spot_check_id)
