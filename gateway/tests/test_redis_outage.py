"""Redis frozen (SIGSTOP: connections accepted, never answered) or stopped: a request waits
no longer than the Redis timeout, each replica goes on enforcing every client's limit in its
own memory (with the `RateLimit-*` headers), the shared windows come back with Redis, and
revocations broadcast while a replica could not hear them are made up for.

Redis here is a redis-server of the test's own on a free port (`scripts.stores`).
"""

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from gateway.tests.conftest import GatewayFactory, client_of
from scripts.stores import PrivateRedis, private_redis, redis_bin

ECHO = "/api/v1/brands/stub/echo"
TIMEOUT = 0.05


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    if redis_bin() is None:
        pytest.skip("redis-server is not installed")
    with private_redis() as server:
        yield server


@pytest.fixture
def redis(redis_server: PrivateRedis) -> Iterator[PrivateRedis]:
    """The test's Redis, running and answering at the start of each test and after it."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.thaw()
    yield redis_server
    if redis_server.process is None:
        redis_server.start()
    redis_server.thaw()


def _settings(redis: PrivateRedis, **extra: Any) -> dict[str, Any]:
    return {
        "redis_url": redis.url,
        "redis_timeout_seconds": TIMEOUT,
        "redis_retry_seconds": 0.2,
        **extra,
    }


@pytest.fixture
async def replicas(
    make_gateway: GatewayFactory, redis: PrivateRedis
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two gateways sharing the test's Redis."""
    async with make_gateway(**_settings(redis)) as one, make_gateway(**_settings(redis)) as two:
        yield one, two


async def _client(admin: FastAPI, limit: str) -> dict[str, Any]:
    async with client_of(admin) as client:
        response = await client.post(
            "/api/v1/admin/clients",
            json={"name": "limited", "scopes": ["brands:read"], "rate_limit": limit},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _calls(gateway: FastAPI, api_key: str, count: int) -> list[tuple[int, float, str]]:
    """`count` calls: status, seconds taken, and RateLimit-Remaining of each; a call may
    not take more than 3 s."""
    answers = []
    async with client_of(gateway, api_key=api_key) as client:
        for _ in range(count):
            started = time.perf_counter()
            with anyio.fail_after(3):
                response = await client.get(ECHO)
            answers.append(
                (
                    response.status_code,
                    time.perf_counter() - started,
                    response.headers.get("ratelimit-remaining", "absent"),
                )
            )
    return answers


async def _metric(gateway: FastAPI, name: str) -> float:
    async with client_of(gateway) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def _back_to_shared(gateway: FastAPI, *, within: float = 5.0) -> bool:
    with anyio.move_on_after(within):
        for _ in range(1000):
            if await _metric(gateway, "gateway_rate_limit_shared") == 1.0:
                return True
            await anyio.sleep(0.05)
    return False


async def test_a_frozen_redis_costs_no_more_than_its_timeout_and_limits_still_hold(
    replicas: tuple[FastAPI, FastAPI],
    redis: PrivateRedis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one, two = replicas
    limited = await _client(one, "3/minute")
    baseline = await _calls(one, limited["api_key"], 3)
    assert [a[0] for a in baseline] == [200, 200, 200]
    assert [a[0] for a in await _calls(two, limited["api_key"], 1)] == [429], "one budget"
    capsys.readouterr()

    redis.freeze()
    try:
        frozen = await _calls(one, limited["api_key"], 10)
        fresh = await _client(one, "3/minute")
        fresh_answers = await _calls(one, fresh["api_key"], 5)
        shared_gauge = await _metric(one, "gateway_rate_limit_shared")
        local_decisions = await _metric(one, "gateway_rate_limit_local_total")
    finally:
        redis.thaw()

    # The client at its limit stays there; a client new to this replica gets its limit here.
    assert [a[0] for a in frozen] == [429] * 10
    assert all(a[2] == "0" for a in frozen)
    assert [a[0] for a in fresh_answers] == [200, 200, 200, 429, 429]
    assert [a[2] for a in fresh_answers] == ["2", "1", "0", "0", "0"]
    slowest = max(a[1] for a in frozen + fresh_answers)
    added = statistics.median(a[1] for a in frozen) - statistics.median(a[1] for a in baseline)
    assert slowest < TIMEOUT + 0.5, f"a call took {slowest:.3f} s with Redis frozen"
    assert added < TIMEOUT, f"the median call took {added * 1000:.0f} ms longer"
    assert shared_gauge == 0.0
    assert local_decisions >= 15
    assert await _back_to_shared(one), "the shared windows come back once Redis answers"
    log = capsys.readouterr().out
    assert log.count('"message":"rate_limit_store_unavailable"') == 1
    assert '"message":"rate_limit_store_available_again"' in log

    again = await _client(one, "4/minute")
    assert await _back_to_shared(two)
    answers = [(await _calls(gateway, again["api_key"], 2)) for gateway in (one, two)]
    assert [a[0] for pair in answers for a in pair] == [200, 200, 200, 200]
    assert [a[0] for a in await _calls(one, again["api_key"], 1)] == [429], "one budget again"


async def test_a_stopped_redis_keeps_limits_per_replica_until_it_returns(
    replicas: tuple[FastAPI, FastAPI], redis: PrivateRedis
) -> None:
    one, two = replicas
    limited = await _client(one, "3/minute")
    assert [a[0] for a in await _calls(one, limited["api_key"], 4)] == [200, 200, 200, 429]

    redis.stop()
    at_limit = await _calls(one, limited["api_key"], 30)
    fresh = await _client(one, "3/minute")
    per_replica = [await _calls(gateway, fresh["api_key"], 4) for gateway in (one, two)]

    assert [a[0] for a in at_limit].count(200) == 0, "a client at its limit stays there"
    assert all(a[2] == "0" for a in at_limit)
    assert max(a[1] for a in at_limit) < TIMEOUT + 0.5
    for answers in per_replica:
        assert [a[0] for a in answers] == [200, 200, 200, 429], "its limit on each replica"

    redis.start()
    assert await _back_to_shared(one)
    assert await _back_to_shared(two)
    again = await _client(one, "2/minute")
    statuses = [
        a[0] for gateway in (one, two, one) for a in await _calls(gateway, again["api_key"], 1)
    ]
    assert statuses == [200, 200, 429], "one budget in Redis again"


async def _refused_within(client: httpx.AsyncClient, seconds: float) -> int:
    status = 200
    with anyio.move_on_after(seconds):
        while status == 200:
            status = (await client.get(ECHO)).status_code
            await anyio.sleep(0.05)
    return status


@pytest.mark.parametrize("outage", ["frozen", "stopped"])
async def test_a_revocation_missed_while_redis_was_out_of_reach_is_made_up_for(
    make_gateway: GatewayFactory, redis: PrivateRedis, outage: str
) -> None:
    # Credentials stay cached for a minute: only the channel can tell the second replica.
    settings = _settings(redis, auth_cache_seconds=60)
    async with make_gateway(**settings) as one, make_gateway(**settings) as two:
        created = await _client(one, "100/minute")
        async with (
            client_of(one) as one_admin,
            client_of(two, api_key=created["api_key"]) as caller,
        ):
            assert (await caller.get(ECHO)).status_code == 200
            if outage == "frozen":
                redis.freeze()
            else:
                redis.stop()
            started = time.perf_counter()
            with anyio.fail_after(3):
                revoked = await one_admin.post(f"/api/v1/admin/clients/{created['id']}/revoke")
            took = time.perf_counter() - started
            assert revoked.status_code == 200
            assert took < 1.0, f"the revocation waited {took:.2f} s on Redis"
            # Long enough for the replica to notice it has lost touch.
            await anyio.sleep(2.0)
            if outage == "frozen":
                redis.thaw()
            else:
                redis.start()
            assert await _refused_within(caller, 10) == 401
