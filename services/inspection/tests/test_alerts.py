"""Enterprises failing spot-checks repeatedly: the list and the sweep emitting each once."""

import asyncio
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from inspection import alerts
from inspection.app import build_app
from inspection.settings import Settings
from inspection.tests.support import TODAY, credit_code, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"
FAILURES = f"{URL}/repeated-failures"
FEED_SCOPES = ("events:read", "spot-checks:read")


def _ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


class Recorder:
    """Records checks through the API, each with its own sample code."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.samples = 0

    async def record(
        self, enterprise: int, sampled_days_ago: int, **overrides: Any
    ) -> dict[str, Any]:
        self.samples += 1
        fields: dict[str, Any] = {
            "enterprise_credit_code": credit_code(enterprise),
            "enterprise_name": f"徐州第{enterprise}食品有限公司",
            "sample_code": f"S-{self.samples:04d}",
            "sampled_on": _ago(sampled_days_ago),
            "published_on": _ago(max(sampled_days_ago - 7, 1)),
        }
        body = spot_check(**{**fields, **overrides})
        response = await self.client.post(URL, json=body)
        assert response.status_code == 201, response.text
        item: dict[str, Any] = response.json()
        return item

    async def reinspect(self, original: dict[str, Any], **overrides: Any) -> None:
        body = spot_check(
            plan_code=original["plan_code"],
            sample_code=original["sample_code"],
            enterprise_credit_code=original["enterprise_credit_code"],
            enterprise_name=original["enterprise_name"],
            reinspection_of=original["id"],
            result="pass",
            sampled_on=_ago(10),
            **overrides,
        )
        response = await self.client.post(URL, json=body)
        assert response.status_code == 201, response.text


@pytest.fixture
async def checks(service: Harness) -> dict[str, list[dict[str, Any]]]:
    """Hand-counted failures per enterprise, within the 12 months ending today:
    1: 11 months and 1 month ago                                   -> 2
    2: 13 months and 1 month ago                                   -> 1 (2 within 14 months)
    3: 2 and 3 months ago, the first overturned by a published re-inspection -> 1
    4: 2 months ago, and 1 month ago with its bulletin next week   -> 1 (2 unpublished)
    5: 2 and 4 months ago, in Pizhou, and a pass                   -> 2
    6: 2 and 3 months ago, the first overturned by a re-inspection whose bulletin is next
       week                                                        -> 2 (1 unpublished)
    7: two passes                                                  -> 0
    8: 50 days ago in Tongshan, 70 days ago in Pizhou              -> 2 (1 in each county)
    """
    recorder = Recorder(service.client())
    record = recorder.record
    made: dict[str, list[dict[str, Any]]] = {
        "1": [await record(1, 330), await record(1, 30)],
        "2": [await record(2, 400), await record(2, 30)],
        "3": [await record(3, 60), await record(3, 90)],
        "4": [
            await record(4, 60),
            await record(4, 30, published_on=(TODAY + timedelta(days=7)).isoformat()),
        ],
        "5": [
            await record(5, 60, county_code="320382"),
            await record(5, 120, county_code="320382"),
            await record(5, 100, county_code="320382", result="pass"),
        ],
        "6": [await record(6, 60), await record(6, 90)],
        "7": [await record(7, 60, result="pass"), await record(7, 90, result="pass")],
        "8": [await record(8, 50), await record(8, 70, county_code="320382")],
    }
    await recorder.reinspect(made["3"][0], published_on=_ago(2))
    await recorder.reinspect(made["6"][0], published_on=(TODAY + timedelta(days=7)).isoformat())
    return made


async def _listed(client: httpx.AsyncClient, **params: Any) -> dict[str, int]:
    response = await client.get(FAILURES, params=params)
    assert response.status_code == 200, response.text
    return {item["enterprise_credit_code"]: item["failures"] for item in response.json()["items"]}


def _codes(**counts: int) -> dict[str, int]:
    return {credit_code(int(name[1:])): count for name, count in counts.items()}


async def test_enterprises_with_two_failures_in_twelve_months_are_listed(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    client = service.client(["spot-checks:read"])
    assert await _listed(client) == _codes(e1=2, e5=2, e6=2, e8=2)
    assert await _listed(client, months=14) == _codes(e1=2, e2=2, e5=2, e6=2, e8=2)
    assert await _listed(client, min_failures=3) == {}
    assert await _listed(client, min_failures=1) == _codes(e1=2, e2=1, e3=1, e4=1, e5=2, e6=2, e8=2)
    assert await _listed(client, county_code="320382") == _codes(e5=2)
    assert await _listed(client, county_code="320382", min_failures=1) == _codes(e5=2, e8=1)
    # Up to a month ago, 1 had failed once (11 months ago), 5, 6 and 8 twice.
    assert await _listed(client, as_of=_ago(31)) == _codes(e5=2, e6=2, e8=2)


async def test_each_entry_lists_its_failed_checks(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    response = await service.client(["spot-checks:read"]).get(FAILURES)
    entry = next(
        item
        for item in response.json()["items"]
        if item["enterprise_credit_code"] == credit_code(5)
    )
    assert entry["enterprise_name"] == "徐州第5食品有限公司"
    assert entry["county_code"] == "320382"
    assert [(c["id"], c["sampled_on"]) for c in entry["checks"]] == [
        (checks["5"][1]["id"], _ago(120)),
        (checks["5"][0]["id"], _ago(60)),
    ]
    assert entry["window_to"] == TODAY.isoformat()
    assert entry["window_from"] == alerts.window_start(TODAY, 12).isoformat()


async def test_writers_may_count_unpublished_results(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    writer = service.client(["spot-checks:read", "spot-checks:write"])
    assert await _listed(writer, include_unpublished="true") == _codes(e1=2, e4=2, e5=2, e8=2)
    reader = service.client(["spot-checks:read"])
    refused = await reader.get(FAILURES, params={"include_unpublished": "true"})
    assert refused.status_code == 403
    assert refused.json()["field"] == "include_unpublished"


async def test_a_bound_reader_sees_its_counties_only(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    tongshan = service.client(["spot-checks:read"], county_codes=["320323"])
    assert await _listed(tongshan) == _codes(e1=2, e6=2)
    assert await _listed(tongshan, county_code="320382") == {}


async def test_pages_follow_the_cursor(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    client = service.client(["spot-checks:read"])
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        body = (await client.get(FAILURES, params=params)).json()
        seen += [item["enterprise_credit_code"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == sorted(_codes(e1=2, e5=2, e6=2, e8=2))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("months", "0"),
        ("months", "121"),
        ("min_failures", "0"),
        ("as_of", "yesterday"),
        ("county_code", "999999"),
    ],
)
async def test_bad_parameters_are_422s_naming_them(service: Harness, name: str, value: str) -> None:
    response = await service.client().get(FAILURES, params={name: value})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [name]


def test_the_window_is_calendar_months_ending_on_as_of() -> None:
    assert alerts.window_start(date(2026, 12, 2), 12) == date(2025, 12, 3)
    assert alerts.window_start(date(2026, 3, 31), 1) == date(2026, 3, 1)
    assert alerts.window_start(date(1, 6, 1), 12) == date.min


async def _feed(service: Harness) -> list[dict[str, Any]]:
    client = service.client(list(FEED_SCOPES))
    response = await client.get("/api/v1/events", params={"type": alerts.REPEATED_FAILURES})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_the_sweep_emits_once_per_enterprise_and_latest_failure(
    service: Harness, checks: dict[str, list[dict[str, Any]]]
) -> None:
    settings: Settings = service.app.state.settings

    async def run() -> int:
        return await alerts.sweep(
            sessionmaker=service.app.state.sessionmaker,
            today=TODAY,
            months=settings.alert_repeated_failure_months,
            min_failures=settings.alert_repeated_failure_min,
        )

    # 8 failed twice, but once in each county: no county's readers see two failures.
    assert await run() == 3
    assert await run() == 0
    first = await _feed(service)
    assert sorted((e["subject"], e["data"]["latest_failure_id"]) for e in first) == sorted(
        [
            (f"enterprises/{credit_code(1)}", checks["1"][1]["id"]),
            (f"enterprises/{credit_code(5)}", checks["5"][0]["id"]),
            (f"enterprises/{credit_code(6)}", checks["6"][0]["id"]),
        ]
    )
    pizhou = next(e for e in first if e["subject"] == f"enterprises/{credit_code(5)}")
    assert pizhou["countycode"] == "320382"
    assert pizhou["source"] == "/inspection"
    assert pizhou["data"]["item"]["failures"] == 2
    bound = service.client(list(FEED_SCOPES), county_codes=["320323"])
    seen = (await bound.get("/api/v1/events", params={"type": alerts.REPEATED_FAILURES})).json()
    assert {e["subject"] for e in seen["items"]} == {
        f"enterprises/{credit_code(1)}",
        f"enterprises/{credit_code(6)}",
    }

    third = await Recorder(service.client()).record(1, 5, sample_code="S-0100")
    restarted = build_app(
        settings.model_copy(
            update={
                "alert_sweep_enabled": True,
                "alert_sweep_delay_seconds": 0,
                "outbox_enabled": False,
            }
        )
    )
    async with restarted.router.lifespan_context(restarted):
        sweeper = restarted.state.alert_sweeper
        await _until(lambda: sweeper.last_run_at is not None)
        assert sweeper.last_emitted == 1
    after = await _feed(service)
    assert len(after) == 4
    assert after[3]["data"]["latest_failure_id"] == third["id"]
    assert after[3]["data"]["item"]["failures"] == 3
