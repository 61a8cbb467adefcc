"""The gateway's change feed and webhooks over the real services: the four services as uvicorn
processes (SQLite files), the gateway in this process on its own migrated database (SQLite, or
PostgreSQL with `TEST_DATABASE_URL`), changes made through the gateway.

- A reader that stores its cursor sees every change once, in order, also across a restart
  of the brand registry (compared by event id and subject with the records made).
- Two gateway replicas on one database, both running their webhook workers, deliver each
  event once to a real receiver that verifies every signature with `standardwebhooks`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import SPEC, build_app
from gateway.models import metadata
from gateway.settings import Settings
from gateway.tests.event_stubs import Receiver, serving
from kit.identifiers import credit_code_check_char
from kit.testing import Harness, ServiceTokens, running_service
from tests.integration.records import brand, certificate
from tests.system.assessment_processes import Stack, start_stack

ADMIN_KEY = "qrp_admin_events_" + "e" * 32
SCOPES = [
    "events:read",
    "webhooks:manage",
    "brands:read",
    "brands:write",
    "certificates:read",
    "certificates:write",
]


def _enterprise(number: int) -> str:
    first17 = f"91320323MA{number:07d}"
    return first17 + credit_code_check_char(first17)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("events-stack"), deadline_seconds=10, timeout_seconds=5
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    with serving(found.app()) as url:
        found.url = url
        yield found


def _settings(stack: Stack, keys: Path) -> dict[str, Any]:
    return {
        **{f"{name}_url": process.url for name, process in stack.processes.items()},
        "bootstrap_admin_key": ADMIN_KEY,
        "token_private_key_file": keys / "gateway.pem",
        "oauth_private_key_file": keys / "gateway-oauth.pem",
        "webhooks_enabled": False,
        "events_timeout_seconds": 5.0,
    }


@pytest.fixture(scope="module")
async def gateway(
    stack: Stack, service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    keys = Path(stack.processes["brand_registry"].env["BRAND_REGISTRY_VAR_DIR"]) / "keys"
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("events-gateway"),
        **_settings(stack, keys),
    ) as harness:
        yield harness


def _client(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"X-API-Key": key},
        timeout=30,
    )


async def _caller_key(app: FastAPI) -> str:
    async with _client(app, ADMIN_KEY) as admin:
        response = await admin.post(
            "/api/v1/admin/clients",
            json={"name": f"system {secrets.token_hex(3)}", "scopes": SCOPES},
        )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


async def _make_changes(caller: httpx.AsyncClient, count: int, base: int) -> list[str]:
    """Listings and certificates made through the gateway: the subjects of their events."""
    subjects = []
    for number in range(base, base + count):
        enterprise = _enterprise(number)
        made = await caller.post("/api/v1/brands", json=brand(enterprise))
        assert made.status_code == 201, made.text
        subjects.append(f"brands/{made.json()['id']}")
        issued = await caller.post("/api/v1/certificates", json=certificate(enterprise))
        assert issued.status_code == 201, issued.text
        subjects.append(f"certificates/{issued.json()['id']}")
    return subjects


async def _read_on(
    caller: httpx.AsyncClient, cursor: str | None, *, until: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Pages of the feed from `cursor` until `until` events came or a page is empty."""
    seen: list[dict[str, Any]] = []
    for _ in range(200):
        params: dict[str, Any] = {"limit": 3, "type": "brand.created,certificate.*"}
        if cursor is not None:
            params["after"] = cursor
        response = await caller.get("/api/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page["meta"]["completeness"].values()) == {"ok"}, page["meta"]
        cursor = page["next"]
        seen += page["items"]
        if len(seen) >= until or not page["items"]:
            break
    return seen, cursor


async def test_a_reader_storing_its_cursor_sees_every_change_once_across_a_restart(
    gateway: Harness, stack: Stack
) -> None:
    key = await _caller_key(gateway.app)
    async with _client(gateway.app, key) as caller:
        before = await _make_changes(caller, 4, base=1)
        seen, cursor = await _read_on(caller, None, until=len(before))
        registry = stack.processes["brand_registry"]
        registry.stop()
        down = (await caller.get("/api/v1/events", params={"after": cursor})).json()
        assert down["meta"]["completeness"]["brand_registry"] != "ok"
        assert down["next"] == cursor or all(
            e["source"] != "/brand_registry" for e in down["items"]
        )
        registry.start()
        after = await _make_changes(caller, 3, base=100)
        more, cursor = await _read_on(caller, cursor, until=len(after))
        rest, _ = await _read_on(caller, cursor, until=1)
    events = seen + more + rest
    assert [e["subject"] for e in events if e["source"] == "/brand_registry"] == [
        s for s in before + after if s.startswith("brands/")
    ]
    assert [e["subject"] for e in events if e["source"] == "/certification"] == [
        s for s in before + after if s.startswith("certificates/")
    ]
    assert len({e["id"] for e in events}) == len(events) == len(before) + len(after)
    for source in ("/brand_registry", "/certification"):
        numbers = [int(e["sequence"]) for e in events if e["source"] == source]
        assert numbers == sorted(numbers)


@asynccontextmanager
async def _replica(harness: Harness, stack: Stack, tmp: Path) -> AsyncIterator[FastAPI]:
    keys = Path(stack.processes["brand_registry"].env["BRAND_REGISTRY_VAR_DIR"]) / "keys"
    settings = Settings(
        database_url=harness.database_url,
        var_dir=tmp,
        secret_key="test-secret-" + "x" * 32,
        **{**_settings(stack, keys), "webhooks_enabled": True, "webhook_poll_seconds": 0.05},
    )
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_two_gateway_replicas_deliver_each_event_once(
    gateway: Harness, stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    key = await _caller_key(gateway.app)
    async with _client(gateway.app, key) as caller:
        for name in ("one", "two"):
            response = await caller.post(
                "/api/v1/webhooks",
                json={
                    "url": f"{receiver.url}/hooks/{name}",
                    "event_types": ["brand.created", "certificate.created"],
                },
            )
            assert response.status_code == 201, response.text
            receiver.secrets.append(response.json()["secret"])
        async with AsyncExitStack() as replicas:
            for _ in range(2):
                await replicas.enter_async_context(_replica(gateway, stack, tmp_path))
            subjects = await _make_changes(caller, 5, base=200)
            wanted = {
                (f"/hooks/{name}", subject) for name in ("one", "two") for subject in subjects
            }
            for _ in range(300):
                if wanted <= _delivered_subjects(receiver):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
    assert wanted <= _delivered_subjects(receiver)
    assert all(r.verified_by for r in receiver.received)
    assert all(r.answered == 204 for r in receiver.received)
    once = Counter((r.path, r.event_id) for r in receiver.received)
    assert set(once.values()) == {1}


def _delivered_subjects(receiver: Receiver) -> set[tuple[str, str]]:
    return {(r.path, json.loads(r.body)["subject"]) for r in list(receiver.received)}
