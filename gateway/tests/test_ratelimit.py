"""Rate limits per client: in memory, and in Redis shared by two gateway instances."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import LocalWindows, RateLimiter
from gateway.tests.conftest import GatewayFactory, client_of
from kit.testing import Harness

ECHO = "/api/v1/brands/stub/echo"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def _limited_client(admin: httpx.AsyncClient, limit: str) -> dict[str, Any]:
    response = await admin.post(
        "/api/v1/admin/clients",
        json={"name": "limited", "scopes": ["brands:read"], "rate_limit": limit},
    )
    assert response.status_code == 201
    created: dict[str, Any] = response.json()
    return created


async def test_memory_limit_answers_429_with_headers(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _limited_client(admin, "3/minute")
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        answers = [await caller.get(ECHO) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        refused = await caller.get(ECHO)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 0 <= int(refused.headers["ratelimit-reset"]) <= 60


async def test_budgets_are_per_client(admin: httpx.AsyncClient, service: Harness) -> None:
    first = await _limited_client(admin, "1/minute")
    second = await _limited_client(admin, "1/minute")
    async with client_of(service.app, api_key=first["api_key"]) as one:
        assert (await one.get(ECHO)).status_code == 200
        assert (await one.get(ECHO)).status_code == 429
    async with client_of(service.app, api_key=second["api_key"]) as two:
        assert (await two.get(ECHO)).status_code == 200


@pytest.fixture
async def redis_prefix() -> str:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    finally:
        await client.aclose()
    return f"qrp-gateway-test-{uuid.uuid4().hex}"


async def test_two_gateways_share_one_budget_in_redis(
    admin: httpx.AsyncClient, make_gateway: GatewayFactory, redis_prefix: str
) -> None:
    created = await _limited_client(admin, "4/minute")
    settings = {"redis_url": REDIS_URL, "rate_limit_prefix": redis_prefix}
    async with make_gateway(**settings) as one, make_gateway(**settings) as two:
        async with (
            client_of(one, api_key=created["api_key"]) as a,
            client_of(two, api_key=created["api_key"]) as b,
        ):
            statuses = [(await (a if i % 2 else b).get(ECHO)).status_code for i in range(4)]
            assert statuses == [200, 200, 200, 200]
            assert (await a.get(ECHO)).status_code == 429
            refused = await b.get(ECHO)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
        await one.state.proxy.limiter.reset()


async def test_a_revocation_on_one_gateway_stops_the_key_on_another_at_once(
    admin: httpx.AsyncClient, make_gateway: GatewayFactory, redis_prefix: str
) -> None:
    created = await _limited_client(admin, "100/minute")
    # Credentials stay cached for a minute: only the broadcast can make the second replica
    # notice the revocation within the test.
    settings = {
        "redis_url": REDIS_URL,
        "rate_limit_prefix": redis_prefix,
        "auth_cache_seconds": 60,
    }
    async with make_gateway(**settings) as one, make_gateway(**settings) as two:
        async with (
            client_of(one) as one_admin,
            client_of(two, api_key=created["api_key"]) as caller,
        ):
            assert (await caller.get(ECHO)).status_code == 200
            revoked = await one_admin.post(f"/api/v1/admin/clients/{created['id']}/revoke")
            assert revoked.status_code == 200
            deadline = asyncio.get_running_loop().time() + 2
            status = 200
            while status == 200 and asyncio.get_running_loop().time() < deadline:
                status = (await caller.get(ECHO)).status_code
                await asyncio.sleep(0.02)
            assert status == 401
        await one.state.proxy.limiter.reset()


async def test_a_window_counts_down_and_starts_afresh() -> None:
    limiter = RateLimiter(redis_url=None, prefix="test")
    decisions = [await limiter.hit("client:a", "3/second") for _ in range(4)]
    assert [(d.allowed, d.remaining) for d in decisions if d] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    assert all(d is not None and d.reset_seconds <= 1 for d in decisions)
    await asyncio.sleep(1.1)
    again = await limiter.hit("client:a", "3/second")
    assert again is not None
    assert (again.allowed, again.remaining) == (True, 2)
    await limiter.close()


async def test_a_replica_that_did_not_open_the_window_reports_when_it_ends(
    redis_prefix: str,
) -> None:
    one = RateLimiter(redis_url=REDIS_URL, prefix=redis_prefix)
    two = RateLimiter(redis_url=REDIS_URL, prefix=redis_prefix)
    try:
        first = await one.hit("client:b", "5/10 seconds")
        assert first is not None
        assert first.reset_seconds == 10
        await asyncio.sleep(2.2)
        # The window opened on the other replica about two seconds ago.
        later = await two.hit("client:b", "5/10 seconds")
        assert later is not None
        assert (later.remaining, later.reset_seconds) == (3, 8)
        again = await one.hit("client:b", "5/10 seconds")
        assert again is not None
        assert (again.remaining, again.reset_seconds) == (2, 8)
    finally:
        await one.reset()
        await one.close()
        await two.close()


async def test_windows_of_clients_gone_quiet_are_dropped_from_memory() -> None:
    windows = LocalWindows()
    for i in range(100):
        windows.count(f"client:{i}", 1)
    assert len(windows._windows) == 100
    await asyncio.sleep(1.1)
    hits, end = windows.count("client:new", 1)
    assert hits == 1
    assert end == pytest.approx(time.time() + 1, abs=0.1)
    assert list(windows._windows) == ["client:new"]
