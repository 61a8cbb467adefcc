"""The gateway's database stops: every path that needs it (API-key lookup and bearer tokens
on forwarded requests, the token endpoint, the admin API) answers a 503 problem with
Retry-After, logged once as a warning without a traceback and counted in /metrics, and all
of them work again once the database is back, without a restart.

The database is a PostgreSQL cluster of the test's own (`scripts.stores`), stopped and
started again by the test.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from gateway.app import SPEC, build_app
from gateway.settings import Settings
from gateway.tests.conftest import client_of, gateway_settings
from gateway.tests.support import Backends
from kit.db import outage_log
from kit.migrations import upgrade_to_head
from scripts.stores import PrivatePostgres, postgres_bin, private_postgres

ECHO = "/api/v1/brands/stub/echo"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    with private_postgres() as server:
        yield server


@pytest.fixture
async def gateway(
    postgres: PrivatePostgres, keys: Path, backends: Backends, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    """A gateway on the private cluster that looks every credential up each time."""
    url = await anyio.to_thread.run_sync(postgres.create_database, "gateway_outage")
    await anyio.to_thread.run_sync(upgrade_to_head, SPEC.migrations, url, SPEC.version_table)
    settings = Settings(
        database_url=url,
        var_dir=tmp_path,
        secret_key="test-secret-" + "x" * 32,
        **{**gateway_settings(keys, backends), "auth_cache_seconds": 0},
    )
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def _token(client: httpx.AsyncClient, created: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["id"],
            "client_secret": created["api_key"],
        },
    )


async def test_a_database_outage_is_a_503_on_every_path_and_ends_by_itself(
    gateway: FastAPI, postgres: PrivatePostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    async with client_of(gateway) as admin, client_of(gateway, api_key=None) as anonymous:
        created = (
            await admin.post(
                "/api/v1/admin/clients", json={"name": "reader", "scopes": ["brands:read"]}
            )
        ).json()
        token = (await _token(anonymous, created)).json()["access_token"]
        async with (
            client_of(gateway, api_key=created["api_key"]) as by_key,
            client_of(gateway, api_key=None, Authorization=f"Bearer {token}") as by_bearer,
        ):

            async def every_path() -> dict[str, httpx.Response]:
                return {
                    "API key": await by_key.get(ECHO),
                    "bearer token": await by_bearer.get(ECHO),
                    "token request": await _token(anonymous, created),
                    "admin API": await admin.get("/api/v1/admin/clients"),
                }

            assert {k: a.status_code for k, a in (await every_path()).items()} == {
                "API key": 200,
                "bearer token": 200,
                "token request": 200,
                "admin API": 200,
            }
            outage_log.recovered()
            capsys.readouterr()
            await anyio.to_thread.run_sync(postgres.stop)
            try:
                during = await every_path()
                ready = await admin.get("/health/ready")
                metrics = (await admin.get("/metrics")).text
            finally:
                await anyio.to_thread.run_sync(postgres.start)
            after: dict[str, int] = {}
            with anyio.move_on_after(15):
                while set(after.values()) != {200}:
                    after = {k: a.status_code for k, a in (await every_path()).items()}
                    await anyio.sleep(0.1)
    for path, answer in during.items():
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "5", path
        assert answer.headers["content-type"] == "application/problem+json", path
        assert answer.json()["type"].endswith("/database-unavailable"), path
        assert answer.headers["x-request-id"], path
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "fail"
    assert "database_unavailable_total 4.0" in metrics
    assert after == dict.fromkeys(during, 200), "the gateway recovers without a restart"
    log = capsys.readouterr().out
    assert log.count('"message":"database_unavailable"') == 1, log
    assert '"message":"database_available_again"' in log
    assert "Traceback" not in log
    assert "unhandled_error" not in log
