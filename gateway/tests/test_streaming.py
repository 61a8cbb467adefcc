"""A 100,000-row CSV export streams through a gateway process without being buffered."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.tests.conftest import ADMIN_KEY
from gateway.tests.support import Backends, Process, service_environment, uvicorn, wait_ready

EXPORT = "/api/v1/brands/stub/export?rows=100000"


@pytest.fixture(scope="module")
async def gateway_process(
    backends: Backends, keys: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Process]:
    workdir = tmp_path_factory.mktemp("gateway-process")
    env = service_environment(workdir, keys)
    env.update(
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'gateway.db'}",
        GATEWAY_BRAND_REGISTRY_URL=backends.url("stub"),
        GATEWAY_CERTIFICATION_URL=backends.url("certification"),
        GATEWAY_INSPECTION_URL=backends.url("inspection"),
        GATEWAY_ASSESSMENT_URL=backends.url("assessment"),
        GATEWAY_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        GATEWAY_TOKEN_PRIVATE_KEY_FILE=str(keys / "gateway.pem"),
        GATEWAY_OAUTH_PRIVATE_KEY_FILE=str(keys / "gateway-oauth.pem"),
        GATEWAY_SECRET_KEY="gateway-tests-" + "s" * 32,
    )
    process = uvicorn("gateway", "gateway.app:build_app", env, workdir)
    try:
        await wait_ready(process, path="/health/live")
        yield process
    finally:
        process.stop()


async def test_a_large_export_streams_with_bounded_gateway_memory(gateway_process: Process) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    async with httpx.AsyncClient(
        base_url=gateway_process.url, headers=headers, timeout=120
    ) as client:
        # A first small export warms up every code path before the baseline is taken.
        assert (await client.get("/api/v1/brands/stub/export?rows=1000")).status_code == 200
        baseline = gateway_process.peak_rss_kib()
        lines = size = 0
        async with client.stream("GET", EXPORT) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            assert "content-length" not in response.headers
            async for chunk in response.aiter_raw():
                size += len(chunk)
                lines += chunk.count(b"\n")
        growth_kib = gateway_process.peak_rss_kib() - baseline
    assert lines == 100_001
    assert size > 24_000_000
    assert growth_kib < 10 * 1024, f"the gateway grew by {growth_kib} KiB for a {size}-byte body"


async def test_a_backend_breaking_off_an_export_closes_the_callers_connection(
    gateway_process: Process,
) -> None:
    received: list[bytes] = []

    async def read_all(response: httpx.Response) -> None:
        async for chunk in response.aiter_bytes():
            received.append(chunk)

    async with httpx.AsyncClient(base_url=gateway_process.url, timeout=30) as client:
        headers = {"X-API-Key": ADMIN_KEY, "X-Request-ID": "gw-broken-export"}
        async with client.stream("GET", "/api/v1/brands/stub/broken-export", headers=headers) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await read_all(r)
        # The connection is gone, not the gateway.
        assert (await client.get("/health/live")).status_code == 200
    assert b"".join(received) == b"id,name\n1,first\n"
    lines = await _log_lines(gateway_process, "gw-broken-export")
    events = {line["message"]: line for line in lines}
    assert events["backend_broke_off_response"]["backend"] == "brand_registry"
    assert events["request"]["status"] == 502


async def _log_lines(process: Process, request_id: str) -> list[dict[str, Any]]:
    """The process's log lines of `request_id`, once its access line is among them (or 5 s
    on): access lines are written off the answer's path, within a short delay."""
    deadline = time.monotonic() + 5
    while True:
        text = process.log_text()
        lines = [json.loads(line) for line in text.splitlines() if request_id in line]
        if any(line["message"] == "request" for line in lines) or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.02)


async def test_the_gateway_process_logs_one_access_line_per_request(
    gateway_process: Process,
) -> None:
    async with httpx.AsyncClient(base_url=gateway_process.url, timeout=30) as client:
        response = await client.get(
            "/api/v1/brands/stub/echo",
            headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "gw-log-line-1"},
        )
    assert response.status_code == 200
    # No further request is needed to push the line out.
    lines = await _log_lines(gateway_process, "gw-log-line-1")
    assert len(lines) == 1
    access = lines[0]
    assert access["message"] == "request"
    assert access["client_id"] == "bootstrap-admin"
    assert access["status"] == 200
    assert access["duration_ms"] > 0
    assert access["route"] == "/api/v1/brands/stub/echo"
    assert access["backend"] == "brand_registry"
    assert access["request_id"] == "gw-log-line-1"
