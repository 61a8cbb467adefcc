"""One request ID follows a standings request across the suite: the assessment service's
calls to the three data services' `/stats` endpoints carry the caller's `X-Request-ID`, and
every service's access line names it. The four services run for real, as uvicorn processes
logging their access lines."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.assessment_processes import Stack, start_stack

STANDINGS = "/api/v1/assessments/2007/standings"
STATS_ROUTES = {
    "brand_registry": "/api/v1/brands/stats",
    "certification": "/api/v1/certificates/stats",
    "inspection": "/api/v1/spot-checks/stats",
}


def _target_set() -> dict[str, Any]:
    """One indicator read from each data service."""

    def indicator(key: str, source: str, measure: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {"key": key, "name": key, "source": source, "measure": measure, **rest}

    return {
        "indicators": [
            indicator(
                "city_famous_brands_in_force",
                "brands",
                {"kind": "in_force", "tier": "city_famous"},
                comparator="at_least",
                target=0,
                weight=1,
            ),
            indicator(
                "new_certified_enterprises",
                "certificates",
                {"kind": "new_certified_enterprises"},
                comparator="at_least",
                target=0,
                weight=1,
            ),
            indicator(
                "spot_check_pass_rate",
                "spot_checks",
                {"kind": "pass_rate"},
                comparator="at_least",
                target=0.9,
                weight=1,
            ),
        ]
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("request-ids")
    running = start_stack(tmp, deadline_seconds=10.0, timeout_seconds=5.0, log_level="INFO")
    try:
        yield running
    finally:
        running.stop()


def _access_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    lines = []
    for text in stack.processes[name].log_path.read_text(encoding="utf-8").splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("message") == "request":
            lines.append(line)
    return lines


def _carrying(stack: Stack, name: str, request_id: str) -> list[dict[str, Any]]:
    """The service's access lines naming `request_id`, once their writes have landed."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in _access_lines(stack, name) if line["request_id"] == request_id]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_the_stats_calls_of_a_standings_request_carry_its_request_id(stack: Stack) -> None:
    request_id = f"standings-{secrets.token_hex(8)}"
    with stack.client("assessment") as client:
        stored = client.put("/api/v1/target-sets/2007", json=_target_set())
        assert stored.status_code == 201, stored.text
        response = client.get(STANDINGS, headers={"X-Request-ID": request_id})
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == request_id
    completeness = response.json()["meta"]["completeness"]
    assert {completeness[source] for source in ("brands", "certificates", "spot_checks")} == {"ok"}

    for name, route in STATS_ROUTES.items():
        lines = _carrying(stack, name, request_id)
        assert [(line["route"], line["status"]) for line in lines] == [(route, 200)], name
        assert lines[0]["client_id"] == "assessment"
    (own,) = _carrying(stack, "assessment", request_id)
    assert (own["path"], own["status"], own["client_id"]) == (STANDINGS, 200, "system-test")

    # Without a caller's ID, the one the assessment service makes for the request is carried on.
    with stack.client("assessment") as client:
        made = client.get(STANDINGS).headers["X-Request-ID"]
    assert made != request_id
    for name, route in STATS_ROUTES.items():
        assert [line["route"] for line in _carrying(stack, name, made)] == [route], name
