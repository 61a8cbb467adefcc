"""The circuit breaker's half-open probe ends with a verdict whatever happens to its request:
a probe abandoned by its client or cancelled with its task does not leave the circuit
waiting for good."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from gateway.tests.conftest import ADMIN_KEY, GatewayFactory, client_of
from gateway.tests.support import Backends

STUB = "/api/v1/brands/stub"
RESET_SECONDS = 0.3


@pytest.fixture
async def half_open(
    make_gateway: GatewayFactory, backends: Backends
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A gateway whose breaker for the stub opened on one failure and is due for its probe,
    the stub healthy again."""
    async with httpx.AsyncClient(base_url=backends.url("stub")) as direct:
        await direct.post("/stub-control/switch?failing=true")
        try:
            async with (
                make_gateway(
                    breaker_failure_threshold=1,
                    breaker_reset_seconds=RESET_SECONDS,
                    retry_attempts=1,
                ) as gateway,
                client_of(gateway) as client,
            ):
                assert (await client.get(STUB + "/switchable")).status_code == 503
                refused = await client.get(STUB + "/switchable")
                assert refused.json()["circuit_open"] is True
                await direct.post("/stub-control/switch?failing=false")
                await asyncio.sleep(RESET_SECONDS + 0.05)
                yield gateway, client
        finally:
            await direct.post("/stub-control/switch?failing=false")


async def _comes_back(client: httpx.AsyncClient, *, within: float = 3.0) -> list[int]:
    """The statuses of calls to the stub, made until one is a 200 or `within` seconds pass."""
    statuses: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline and len(statuses) < 100:
        statuses.append((await client.get(STUB + "/switchable")).status_code)
        if statuses[-1] == 200:
            break
        await asyncio.sleep(0.05)
    return statuses


def _request(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-api-key", ADMIN_KEY.encode()), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }


async def test_a_probe_whose_client_disconnects_before_its_body_does_not_stall_the_breaker(
    half_open: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    gateway, client = half_open
    sent: list[Message] = []

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    # The probe: a PUT whose client goes away before sending the body it announced.
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    await gateway(_request("PUT", STUB + "/echo", headers), gone, send)
    assert not any(m["type"] == "http.response.start" and m["status"] == 200 for m in sent)

    statuses = await _comes_back(client)
    assert statuses[-1] == 200, f"the breaker stayed shut: {statuses}"
    assert gateway.state.proxy.backends["brand_registry"].breaker.state == CLOSED


async def test_a_probe_streaming_a_body_its_client_breaks_off_does_not_stall_the_breaker(
    half_open: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    gateway, client = half_open
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"part": ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0) if len(messages) > 1 else messages[0]

    async def send(message: Message) -> None:
        pass

    # A POST without Idempotency-Key is streamed on as it arrives, so the probe is already
    # talking to the backend when its client goes away.
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    await gateway(_request("POST", STUB + "/echo", headers), receive, send)

    statuses = await _comes_back(client)
    assert statuses[-1] == 200, f"the breaker stayed shut: {statuses}"


async def test_a_probe_cancelled_with_its_task_does_not_stall_the_breaker(
    half_open: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    gateway, client = half_open
    probe = asyncio.create_task(client.get(STUB + "/slow?seconds=5"))
    await asyncio.sleep(0.3)
    breaker = gateway.state.proxy.backends["brand_registry"].breaker
    assert breaker.state == HALF_OPEN, "the slow request is the probe"
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    statuses = await _comes_back(client)
    assert statuses[-1] == 200, f"the breaker stayed shut: {statuses}"
    assert breaker.state == CLOSED


def test_an_abandoned_probe_counts_as_a_failure_and_another_probe_follows() -> None:
    breaker = CircuitBreaker(name="b", failure_threshold=1, reset_seconds=0.0)
    breaker.failure()
    assert breaker.state == OPEN
    call = breaker.call()
    assert call is not None
    assert call.probe
    assert breaker.call() is None, "one probe at a time"
    with pytest.raises(asyncio.CancelledError), call:
        raise asyncio.CancelledError
    assert breaker.state == OPEN
    again = breaker.call()
    assert again is not None
    assert again.probe
    with again:
        again.succeeded()
    assert breaker.state == CLOSED


def test_a_call_abandoned_while_closed_counts_nothing() -> None:
    breaker = CircuitBreaker(name="b", failure_threshold=1, reset_seconds=10)
    for _ in range(3):
        call = breaker.call()
        assert call is not None
        assert not call.probe
        with pytest.raises(ConnectionResetError), call:
            raise ConnectionResetError
    assert (breaker.state, breaker.failures) == (CLOSED, 0)
    call = breaker.call()
    assert call is not None
    with call:
        call.failed()
        call.succeeded()  # only the first verdict counts
    assert breaker.state == OPEN
