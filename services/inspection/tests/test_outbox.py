"""Notices of failed spot-checks reach the brand registry through the outbox."""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from inspection.settings import Settings
from inspection.tests.support import PAST, TODAY, FakeBrandRegistry, credit_code, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"


async def _eventually(condition: Callable[[], Any], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def _backlog(service: Harness) -> dict[str, Any]:
    ready = await service.client(authenticated=False).get("/health/ready")
    assert ready.status_code == 200, ready.text
    details: dict[str, Any] = ready.json()["checks"]["outbox"]
    return details


async def test_a_failure_recorded_while_the_registry_is_down_is_delivered_once(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    created = await service.client().post(URL, json=spot_check())
    spot_check_id = created.json()["id"]

    async def retried() -> bool:
        backlog = await _backlog(service)
        return bool(backlog["pending"] == 1 and brand_registry.requests == [])

    await _eventually(retried)
    metrics = (await service.client(authenticated=False).get("/metrics")).text
    assert "inspection_outbox_pending 1.0" in metrics
    assert "inspection_outbox_attempt_errors_total" in metrics

    brand_registry.up = True

    async def delivered() -> bool:
        backlog = await _backlog(service)
        return bool(backlog["pending"] == 0)

    await _eventually(delivered)
    await asyncio.sleep(0.3)
    assert len(brand_registry.requests) == 1
    (notice,) = brand_registry.requests
    assert notice["reference"] == spot_check_id
    assert notice["source"] == "inspection"
    assert notice["enterprise_credit_code"] == credit_code(1)
    assert "鉛含量" in notice["reason"]
    metrics = (await service.client(authenticated=False).get("/metrics")).text
    assert "inspection_outbox_delivered_total 1.0" in metrics


async def test_only_failures_of_originals_are_noticed(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    brand_registry.up = True
    client = service.client()
    passed = await client.post(URL, json=spot_check(sample_code="P", result="pass"))
    failed = await client.post(URL, json=spot_check(sample_code="F"))
    retest = spot_check(sample_code="F", reinspection_of=failed.json()["id"])
    assert (await client.post(URL, json=retest)).status_code == 201
    corrected = await client.patch(
        f"{URL}/{passed.json()['id']}",
        json={
            "result": "fail",
            "nonconforming_items": [{"item": "標簽", "requirement": "GB 7718", "measured": "缺失"}],
            "reason": "the laboratory corrected its report",
        },
        headers={"If-Match": passed.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text

    async def settled() -> bool:
        backlog = await _backlog(service)
        return len(brand_registry.requests) == 2 and backlog["pending"] == 0

    await _eventually(settled)
    references = sorted(notice["reference"] for notice in brand_registry.requests)
    assert references == sorted([failed.json()["id"], f"{passed.json()['id']}/v2"])


async def test_imported_failures_are_noticed(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    brand_registry.up = True
    header = "plan_code,level,product_category,product_name,enterprise_credit_code,enterprise_name,county_code,sample_code,sampled_on,result,nonconforming_items,published_on\r\n"
    base = spot_check()
    items = '"[{""item"": ""鉛含量"", ""requirement"": ""≤0.5"", ""measured"": ""0.9""}]"'
    lines = [
        f"{base['plan_code']},national,food,速凍水餃,{credit_code(7)},某公司,320323,I-{n},"
        f"{base['sampled_on']},fail,{items},{base['published_on']}\r\n"
        for n in range(3)
    ]
    response = await service.client().post(
        f"{URL}/import",
        content=(header + "".join(lines)).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text

    async def delivered() -> bool:
        return len(brand_registry.requests) == 3

    await _eventually(delivered)


async def test_a_notice_the_registry_rejects_is_parked_and_shown(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    brand_registry.up = True
    brand_registry.reject = True
    await service.client().post(URL, json=spot_check())

    async def parked() -> bool:
        backlog = await _backlog(service)
        return bool(backlog["failed"] == 1 and backlog["pending"] == 0)

    await _eventually(parked)
    metrics = (await service.client(authenticated=False).get("/metrics")).text
    assert "inspection_outbox_failed 1.0" in metrics


TOMORROW = TODAY + timedelta(days=1)


async def _quiet(service: Harness, cycles: float = 0.4) -> dict[str, Any]:
    """Let the worker run several cycles (it polls every 0.05 s here); the backlog after."""
    await asyncio.sleep(cycles)
    return await _backlog(service)


async def _metric(service: Harness, name: str) -> float:
    metrics = (await service.client(authenticated=False).get("/metrics")).text
    line = next(line for line in metrics.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


def _tomorrow_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bureau's calendar turns to the next day, for the routes and the worker alike."""
    monkeypatch.setattr(Settings, "today", lambda _settings: TOMORROW)


async def _corrected(
    client: httpx.AsyncClient, spot_check_id: str, request_id: str = "", **changes: Any
) -> httpx.Response:
    current = await client.get(f"{URL}/{spot_check_id}")
    headers = {"If-Match": current.headers["ETag"]}
    if request_id:
        headers["X-Request-ID"] = request_id
    response = await client.patch(
        f"{URL}/{spot_check_id}", json={**changes, "reason": "correction"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def test_a_failure_is_flagged_on_its_bulletin_day_not_before(
    service: Harness, brand_registry: FakeBrandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand_registry.up = True
    created = await service.client().post(
        URL,
        json=spot_check(published_on=TOMORROW.isoformat()),
        headers={"X-Request-ID": "record-failure-0001"},
    )
    assert created.status_code == 201, created.text

    backlog = await _quiet(service)
    assert brand_registry.requests == []
    assert (backlog["pending"], backlog["scheduled"], backlog["held"]) == (0, 1, 0)
    assert backlog["oldest_pending_seconds"] == 0
    metrics = (await service.client(authenticated=False).get("/metrics")).text
    assert "inspection_outbox_scheduled 1.0" in metrics

    _tomorrow_comes(monkeypatch)

    async def delivered() -> bool:
        return len(brand_registry.requests) == 1

    await _eventually(delivered)
    (notice,) = brand_registry.requests
    assert notice["reference"] == created.json()["id"]
    assert "鉛含量" in notice["reason"]
    assert brand_registry.request_ids == ["record-failure-0001"]
    assert (await _quiet(service))["scheduled"] == 0


async def test_a_failure_without_a_bulletin_day_is_held_until_it_has_one(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    brand_registry.up = True
    client = service.client()
    created = await client.post(URL, json=spot_check(published_on=None))
    spot_check_id = created.json()["id"]

    backlog = await _quiet(service)
    assert brand_registry.requests == []
    assert (backlog["pending"], backlog["scheduled"], backlog["held"]) == (0, 0, 1)

    items = [{"item": "菌落總數", "requirement": "≤10000 CFU/g", "measured": "52000 CFU/g"}]
    await _corrected(client, spot_check_id, nonconforming_items=items)
    assert (await _quiet(service))["held"] == 1
    await _corrected(client, spot_check_id, published_on=PAST.isoformat())

    async def delivered() -> bool:
        return len(brand_registry.requests) == 1

    await _eventually(delivered)
    (notice,) = brand_registry.requests
    assert notice["reference"] == spot_check_id
    assert "菌落總數" in notice["reason"]  # the items as published, not as first recorded
    assert "鉛含量" not in notice["reason"]


async def test_an_overturning_reinspection_clears_the_flag_on_its_own_bulletin_day(
    service: Harness, brand_registry: FakeBrandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand_registry.up = True
    client = service.client()
    original = (await client.post(URL, json=spot_check())).json()

    async def flagged() -> bool:
        return len(brand_registry.requests) == 1

    await _eventually(flagged)
    retest = spot_check(
        reinspection_of=original["id"],
        result="pass",
        sampled_on=PAST.isoformat(),
        published_on=TOMORROW.isoformat(),
    )
    recorded = await client.post(URL, json=retest, headers={"X-Request-ID": "retest-0001"})
    assert recorded.status_code == 201, recorded.text

    backlog = await _quiet(service)
    assert brand_registry.clears == []
    assert backlog["scheduled"] == 1

    _tomorrow_comes(monkeypatch)

    async def cleared() -> bool:
        return len(brand_registry.clears) == 1

    await _eventually(cleared)
    (clear,) = brand_registry.clears
    assert (clear["source"], clear["reference"]) == ("inspection", original["id"])
    assert "overturned" in clear["reason"]
    assert TOMORROW.isoformat() in clear["reason"]
    assert clear["request_id"] == "retest-0001"
    backlog = await _quiet(service)
    assert (backlog["pending"], backlog["scheduled"], backlog["failed"]) == (0, 0, 0)
    assert len(brand_registry.requests) == 1


async def test_an_overturn_published_before_the_failure_sends_nothing(
    service: Harness, brand_registry: FakeBrandRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand_registry.up = True
    client = service.client()
    original = (await client.post(URL, json=spot_check(published_on=TOMORROW.isoformat()))).json()
    retest = spot_check(
        reinspection_of=original["id"],
        result="pass",
        sampled_on=PAST.isoformat(),
        published_on=PAST.isoformat(),
    )
    assert (await client.post(URL, json=retest)).status_code == 201
    assert (await _quiet(service))["scheduled"] == 2
    withdrawn = await _metric(service, "inspection_outbox_withdrawn_total")

    _tomorrow_comes(monkeypatch)
    backlog = await _quiet(service)
    assert (backlog["pending"], backlog["scheduled"], backlog["held"]) == (0, 0, 0)
    assert brand_registry.requests == []
    assert brand_registry.clears == []
    assert await _metric(service, "inspection_outbox_withdrawn_total") == withdrawn + 2


async def test_corrections_keep_the_flags_in_step(
    service: Harness, brand_registry: FakeBrandRegistry
) -> None:
    brand_registry.up = True
    client = service.client()
    overturned = (await client.post(URL, json=spot_check(sample_code="O"))).json()
    mistaken = (await client.post(URL, json=spot_check(sample_code="M"))).json()

    async def flagged() -> bool:
        return len(brand_registry.requests) == 2

    await _eventually(flagged)
    retest = spot_check(
        sample_code="O",
        reinspection_of=overturned["id"],
        result="pass",
        sampled_on=PAST.isoformat(),
    )
    retest_id = (await client.post(URL, json=retest)).json()["id"]

    async def cleared() -> bool:
        return len(brand_registry.clears) == 1

    await _eventually(cleared)
    assert brand_registry.clears[0]["reference"] == overturned["id"]

    # The laboratory's pass was wrong: the failure stands again and is flagged anew.
    items = [{"item": "鉛含量", "requirement": "≤0.5 mg/kg", "measured": "0.8 mg/kg"}]
    await _corrected(client, retest_id, result="fail", nonconforming_items=items)
    # The other check was never a failure.
    await _corrected(
        client,
        mistaken["id"],
        request_id="correct-0002",
        result="pass",
        nonconforming_items=[],
        mandatory_standard_violation=False,
    )

    async def settled() -> bool:
        return len(brand_registry.requests) == 3 and len(brand_registry.clears) == 2

    await _eventually(settled)
    assert brand_registry.requests[-1]["reference"] == f"{retest_id}/v2"
    second = brand_registry.clears[1]
    assert second["reference"] == mistaken["id"]
    assert "corrected into a pass" in second["reason"]
    assert second["request_id"] == "correct-0002"
    await asyncio.sleep(0.3)
    assert (len(brand_registry.requests), len(brand_registry.clears)) == (3, 2)
