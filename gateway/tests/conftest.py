"""The gateway on a real, migrated database, in front of real service processes.

`service` is the gateway app in-process (its brands prefix routed to a stub backend for the
proxy mechanics, the other prefixes to the real services); `make_gateway` builds further
instances with other settings on the same database; `backends` are the processes.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import SPEC, bootstrap_admin, build_app
from gateway.models import metadata
from gateway.settings import Settings
from gateway.tests.event_stubs import FakeClock, FeedStub, Receiver, serving
from gateway.tests.support import ROOT, SERVICES, Backends, start_backends
from kit.auth import write_keypair
from kit.testing import Harness, ServiceTokens, running_service
from scripts.processes import free_port

ADMIN_KEY = "qrp_admin_test_" + "k" * 32
GatewayFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("gateway-keys")
    for name in ("gateway", "gateway-oauth", "assessment", "inspection"):
        write_keypair(directory, name)
    return directory


@pytest.fixture(scope="session")
async def backends(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backends]:
    running = await start_backends(tmp_path_factory.mktemp("backends"), keys)
    try:
        yield running
    finally:
        running.stop()


def gateway_settings(keys: Path, backends: Backends) -> dict[str, Any]:
    """Settings of a test gateway: stub behind the brands prefix, real services elsewhere."""
    return {
        "brand_registry_url": backends.url("stub"),
        "certification_url": backends.url("certification"),
        "inspection_url": backends.url("inspection"),
        "assessment_url": backends.url("assessment"),
        "bootstrap_admin_key": ADMIN_KEY,
        "token_private_key_file": keys / "gateway.pem",
        "oauth_private_key_file": keys / "gateway-oauth.pem",
        "retry_backoff_seconds": 0.01,
        "openapi_cache_seconds": 0,
        # The webhook tests run their own workers (test_webhooks.py).
        "webhooks_enabled": False,
    }


@pytest.fixture(scope="session")
async def gateway_service(
    service_tokens: ServiceTokens,
    tmp_path_factory: pytest.TempPathFactory,
    keys: Path,
    backends: Backends,
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("gateway"),
        default_scopes=("admin",),
        **gateway_settings(keys, backends),
    ) as harness:
        yield harness


@pytest.fixture
async def service(gateway_service: Harness) -> AsyncIterator[Harness]:
    """The running gateway, emptied after each test but for its bootstrap administrator."""
    yield gateway_service
    await gateway_service.reset()
    await bootstrap_admin(
        gateway_service.app.state.sessionmaker,
        api_key=ADMIN_KEY,
        rate_limit="6000/minute",
    )
    gateway_service.app.state.proxy.authenticator.forget()
    await gateway_service.app.state.proxy.limiter.reset()


@pytest.fixture
def make_gateway(
    gateway_service: Harness, keys: Path, backends: Backends, tmp_path: Path
) -> GatewayFactory:
    """Another gateway instance on the same database, with `overrides` to its settings."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[FastAPI]:
        settings = Settings(
            database_url=gateway_service.database_url,
            var_dir=tmp_path,
            secret_key="test-secret-" + "x" * 32,
            **{**gateway_settings(keys, backends), **overrides},
        )
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            yield app

    return factory


Served = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def served(gateway_service: Harness, keys: Path, backends: Backends, tmp_path: Path) -> Served:
    """A gateway process on the test database, served by kit.serve with the given
    --trusted-proxies and `overrides` to its settings; yields its URL."""

    @asynccontextmanager
    async def serve(trusted_proxies: str = "", **overrides: Any) -> AsyncIterator[str]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        for name, value in {**gateway_settings(keys, backends), **overrides}.items():
            env["GATEWAY_" + name.upper()] = str(value)
        env.update(
            GATEWAY_DATABASE_URL=gateway_service.database_url,
            GATEWAY_VAR_DIR=str(tmp_path),
            GATEWAY_SECRET_KEY="test-secret-" + "x" * 32,
            GATEWAY_LOG_LEVEL="WARNING",
        )
        command = [sys.executable, "-m", "kit.serve", "gateway.app:build_app", "--port", str(port)]
        command += ["--trusted-proxies", trusted_proxies, "--no-access-log"]
        log = tmp_path / f"gateway-{port}.log"
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                *command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=2) as probe:
                for _ in range(300):
                    try:
                        if (await probe.get(url + "/health/live")).status_code < 500:
                            break
                    except httpx.HTTPError:
                        pass
                    if process.returncode is not None:
                        raise RuntimeError(log.read_text())
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError("the gateway did not start:\n" + log.read_text())
            yield url
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=10)

    return serve


def client_of(app: FastAPI, api_key: str | None = ADMIN_KEY, **headers: str) -> httpx.AsyncClient:
    """An HTTP client on `app` in-process, sending `api_key` in X-API-Key."""
    if api_key is not None:
        headers["X-API-Key"] = api_key
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
async def admin(service: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The test gateway as its bootstrap administrator."""
    async with client_of(service.app) as client:
        yield client


@pytest.fixture(scope="session")
def feed_stubs(keys: Path) -> Iterator[dict[str, FeedStub]]:
    """The four data services' feeds, served by stubs keeping the services' contract."""
    stubs = {name: FeedStub(name, keys / "gateway.pub") for name in SERVICES}
    with ExitStack() as stack:
        for stub in stubs.values():
            stub.url = stack.enter_context(serving(stub.app()))
        yield stubs


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with serving(receiver.app()) as url:
        receiver.url = url
        yield receiver


def events_gateway_settings(keys: Path, stubs: dict[str, FeedStub]) -> dict[str, Any]:
    """A gateway in front of the feed stubs, its webhook worker driven by the tests."""
    return {
        **{f"{name}_url": stub.url for name, stub in stubs.items()},
        "bootstrap_admin_key": ADMIN_KEY,
        "token_private_key_file": keys / "gateway.pem",
        "oauth_private_key_file": keys / "gateway-oauth.pem",
        "events_timeout_seconds": 5.0,
        "webhooks_enabled": False,
        "webhook_timeout_seconds": 1.0,
        "webhook_retry_first_seconds": 10.0,
        "webhook_retry_cap_seconds": 600.0,
    }


@pytest.fixture(scope="session")
async def events_gateway_service(
    service_tokens: ServiceTokens,
    tmp_path_factory: pytest.TempPathFactory,
    keys: Path,
    feed_stubs: dict[str, FeedStub],
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("events-gateway"),
        default_scopes=("admin",),
        **events_gateway_settings(keys, feed_stubs),
    ) as harness:
        yield harness


@pytest.fixture
async def events_gateway(
    events_gateway_service: Harness,
    feed_stubs: dict[str, FeedStub],
    webhook_receiver: Receiver,
) -> AsyncIterator[Harness]:
    """The gateway in front of the feed stubs, with a fake clock in its webhook worker;
    emptied after each test, stubs and receiver too."""
    harness = events_gateway_service
    harness.app.state.webhooks.clock = FakeClock()
    yield harness
    await harness.reset()
    await bootstrap_admin(
        harness.app.state.sessionmaker, api_key=ADMIN_KEY, rate_limit="6000/minute"
    )
    harness.app.state.proxy.authenticator.forget()
    await harness.app.state.proxy.limiter.reset()
    for stub in feed_stubs.values():
        stub.reset()
    webhook_receiver.reset()


@pytest.fixture
def make_events_gateway(
    events_gateway: Harness, keys: Path, feed_stubs: dict[str, FeedStub], tmp_path: Path
) -> GatewayFactory:
    """Another gateway in front of the feed stubs, on the same database, with `overrides`."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[FastAPI]:
        settings = Settings(
            database_url=events_gateway.database_url,
            var_dir=tmp_path,
            secret_key="test-secret-" + "x" * 32,
            **{**events_gateway_settings(keys, feed_stubs), **overrides},
        )
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            yield app

    return factory
