"""Notices of failed spot-checks reach the brand registry through the outbox."""

import asyncio
from collections.abc import Callable
from typing import Any

from inspection.tests.support import FakeBrandRegistry, credit_code, spot_check
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
        f"{base['sampled_on']},fail,{items},\r\n"
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
