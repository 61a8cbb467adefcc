"""Test support shared by every service's suite: throwaway databases, migrations, tokens.

With `TEST_DATABASE_URL` pointing at PostgreSQL each suite creates its own database and drops
it at the end; without it, suites run on SQLite files in a temporary folder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import python_calamine
import xlsxwriter
from alembic import command
from fastapi import FastAPI
from sqlalchemy import MetaData, delete
from sqlalchemy import inspect as inspect_schema
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.app import ServiceSpec
from kit.auth import TokenMinter, generate_keypair
from kit.db import create_engine
from kit.migrations import alembic_config, schema_drift, upgrade_to_head

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _admin_dsn(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def provision_database(label: str, tmp_dir: Path) -> AsyncIterator[str]:
    """A fresh, empty database for one suite; dropped (or deleted) afterwards."""
    if not TEST_DATABASE_URL:
        path = tmp_dir / f"{label}-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    import asyncpg  # type: ignore[import-untyped]

    base = make_url(TEST_DATABASE_URL)
    name = f"qrp_test_{label}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_admin_dsn(TEST_DATABASE_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_admin_dsn(TEST_DATABASE_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def migrate(spec: ServiceSpec, url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the service's database at `url` to `revision`."""
    config = alembic_config(spec.migrations, url, spec.version_table)
    (command.downgrade if down else command.upgrade)(config, revision)


async def table_names(url: str) -> set[str]:
    """The tables the database at `url` holds."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: inspect_schema(c).get_table_names())
            return set(names)
    finally:
        await engine.dispose()


async def check_migration_adds_tables(
    *, spec: ServiceSpec, tmp_dir: Path, before: str, revision: str, tables: set[str]
) -> None:
    """Upgrading from `before` to `revision` creates `tables`; downgrading drops them again."""
    async with provision_database(f"{spec.name}_migration", tmp_dir) as url:
        await asyncio.to_thread(migrate, spec, url, before)
        assert not tables & await table_names(url)
        await asyncio.to_thread(migrate, spec, url, revision)
        assert tables <= await table_names(url)
        await asyncio.to_thread(migrate, spec, url, before, down=True)
        assert not tables & await table_names(url)


async def clear_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    """Empty every table of `metadata`, children first (DELETE: far cheaper than TRUNCATE
    on the handful of rows a test leaves)."""
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(delete(table))


@dataclass
class ServiceTokens:
    """Mints gateway-style tokens for tests, with a public key file services can trust."""

    public_key_path: Path
    minter: TokenMinter

    def token(
        self,
        audience: str,
        scopes: Iterable[str] = (),
        *,
        client_id: str = "test-client",
        client_name: str = "Test client",
        county_codes: Iterable[str] = (),
    ) -> str:
        return self.minter.mint(
            audience=audience,
            client_id=client_id,
            client_name=client_name,
            scopes=set(scopes),
            county_codes=set(county_codes),
        )

    def headers(self, audience: str, scopes: Iterable[str] = (), **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(audience, scopes, **kwargs)}"}


def make_service_tokens(directory: Path, *, issuer: str = "gateway") -> ServiceTokens:
    pair = generate_keypair()
    directory.mkdir(parents=True, exist_ok=True)
    public_key_path = directory / f"{issuer}.pub"
    public_key_path.write_bytes(pair.public_pem)
    return ServiceTokens(public_key_path, TokenMinter(pair.private_pem, issuer=issuer))


@dataclass
class Harness:
    """A migrated, running service app and the means to call it as a given client."""

    app: FastAPI
    spec: ServiceSpec
    tokens: ServiceTokens
    metadata: MetaData
    database_url: str
    default_scopes: tuple[str, ...] = ()
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.app.state.engine
        return engine

    def client(
        self,
        scopes: Iterable[str] | None = None,
        *,
        client_id: str = "test-client",
        county_codes: Iterable[str] = (),
        authenticated: bool = True,
    ) -> httpx.AsyncClient:
        """An HTTP client speaking to the app in-process, carrying a token with `scopes` (and
        bound to `county_codes`, when given)."""
        headers = {}
        if authenticated:
            chosen = self.default_scopes if scopes is None else tuple(scopes)
            headers = self.tokens.headers(
                self.spec.name, chosen, client_id=client_id, county_codes=county_codes
            )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers=headers,
        )
        self._clients.append(client)
        return client

    async def reset(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        await clear_tables(self.engine, self.metadata)


@asynccontextmanager
async def running_service(
    *,
    spec: ServiceSpec,
    metadata: MetaData,
    build_app: Callable[..., FastAPI],
    settings_factory: Callable[..., Any],
    tokens: ServiceTokens,
    tmp_dir: Path,
    default_scopes: Iterable[str] = (),
    **settings_overrides: Any,
) -> AsyncIterator[Harness]:
    """Provision a database, migrate it to head, and run the app's lifespan around the tests."""
    async with provision_database(spec.name, tmp_dir) as url:
        await asyncio.to_thread(upgrade_to_head, spec.migrations, url, spec.version_table)
        settings = settings_factory(
            database_url=url,
            var_dir=tmp_dir,
            secret_key="test-secret-" + "x" * 32,
            token_issuers={"gateway": tokens.public_key_path},
            log_json=True,
            **settings_overrides,
        )
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            harness = Harness(app, spec, tokens, metadata, url, tuple(default_scopes))
            try:
                yield harness
            finally:
                for client in harness._clients:
                    await client.aclose()


@pytest.fixture(scope="session")
def service_tokens(tmp_path_factory: pytest.TempPathFactory) -> ServiceTokens:
    """Gateway-style tokens signed by a key pair made for this test session."""
    return make_service_tokens(tmp_path_factory.mktemp("keys"))


def service_fixtures(
    *,
    spec: ServiceSpec,
    metadata: MetaData,
    build_app: Callable[..., FastAPI],
    settings_factory: Callable[..., Any],
    default_scopes: Iterable[str] = (),
    **settings_overrides: Any,
) -> tuple[Any, Any]:
    """The two fixtures of a service's suite, for its conftest to bind to module names.

    `<name>_service` (session scope) runs the app on a migrated database; `service` hands it
    to one test and empties its tables afterwards:

        brand_registry_service, service = service_fixtures(spec=SPEC, ...)
    """
    session_name = f"{spec.name}_service"

    async def running(
        service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[Harness]:
        async with running_service(
            spec=spec,
            metadata=metadata,
            build_app=build_app,
            settings_factory=settings_factory,
            tokens=service_tokens,
            tmp_dir=tmp_path_factory.mktemp(spec.name),
            default_scopes=default_scopes,
            **settings_overrides,
        ) as harness:
            yield harness

    async def emptied(**fixtures: Harness) -> AsyncIterator[Harness]:
        harness = fixtures[session_name]
        yield harness
        await harness.reset()

    # pytest finds a fixture's dependencies by parameter name; this one's is the service's.
    emptied.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(session_name, inspect.Parameter.KEYWORD_ONLY, annotation=Harness)]
    )
    emptied.__doc__ = "The running service, emptied after each test."
    return (
        pytest.fixture(scope="session", name=session_name)(running),
        pytest.fixture(name="service")(emptied),
    )


class HealthChecks:
    """The health, metrics and migration tests every deployable runs on its `service` fixture.

    A deployable's `tests/test_health.py` subclasses it as `TestHealth`.
    """

    async def test_live_and_ready(self, service: Harness) -> None:
        client = service.client(authenticated=False)
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"]["status"] == "ok"

    async def test_metrics_are_prometheus_text(self, service: Harness) -> None:
        response = await service.client(authenticated=False).get("/metrics")
        assert response.status_code == 200
        assert "http_requests_total" in response.text

    async def test_migrations_match_the_models(self, service: Harness) -> None:
        """Autogenerate against the migrated database finds nothing to add: no drift."""
        assert (
            await schema_drift(service.engine, service.metadata, service.spec.version_table) == []
        )


def xlsx_workbook(header: list[str], rows: list[list[Any]], *, sheet: str = "Sheet1") -> bytes:
    """A workbook of `rows` under `header`, as a spreadsheet program saves one: dates as real
    date cells, booleans as booleans, lists as their JSON text, everything else as text, empty
    cells left out."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    worksheet = book.add_worksheet(sheet)
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for c, name in enumerate(header):
        worksheet.write_string(0, c, name)
    for r, values in enumerate(rows, start=1):
        for c, value in enumerate(values):
            if isinstance(value, dt.date):
                worksheet.write_datetime(r, c, dt.datetime.combine(value, dt.time(0)), dates)
            elif isinstance(value, bool):
                worksheet.write_boolean(r, c, value)
            elif isinstance(value, list):
                worksheet.write_string(r, c, json.dumps(value, ensure_ascii=False))
            elif value not in (None, ""):
                worksheet.write_string(r, c, str(value))
    book.close()
    return buffer.getvalue()


def xlsx_values(body: bytes) -> list[list[Any]]:
    """The cells of a workbook's first sheet, row by row."""
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(body))
    values: list[list[Any]] = book.get_sheet_by_index(0).to_python()
    return values


LEFT_TO_FRAMEWORK = {"left-to-framework": "1"}
"""A query parameter no hot route reads (`kit.hotpaths`): a request carrying it is answered
by the FastAPI route, which ignores it, so a test can compare the two answers."""


def hot_answers(app: FastAPI, route: str) -> float:
    """How many requests the hot route of the path template `route` has answered."""
    counted: float = app.state.metrics.hot_answers.labels(route)._value.get()
    return counted


async def hot_and_framework(
    harness: Harness,
    client: httpx.AsyncClient,
    route: str,
    path: str,
    params: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response, float]:
    """The answer to `GET path?params`, then to the same with `LEFT_TO_FRAMEWORK` (so the
    FastAPI route answers it), and how many of the two the hot route of `route` gave."""
    before = hot_answers(harness.app, route)
    hot = await client.get(path, params=params or {})
    framework = await client.get(path, params={**(params or {}), **LEFT_TO_FRAMEWORK})
    return hot, framework, hot_answers(harness.app, route) - before


async def assert_answered_alike(
    harness: Harness,
    client: httpx.AsyncClient,
    route: str,
    path: str,
    *,
    status: int,
    answered_hot: int,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """`GET path?params` answers `status`, the same by the hot route of `route` as by the
    FastAPI route (`hot_and_framework`), the hot route answering `answered_hot` (1 or 0) of
    the two; the first answer."""
    hot, framework, counted = await hot_and_framework(harness, client, route, path, params)
    assert hot.status_code == status, hot.text
    assert_same_answer(hot, framework)
    assert counted == answered_hot, (path, params)
    return hot


def assert_same_answer(hot: httpx.Response, framework: httpx.Response) -> None:
    """The two answers are the same to a client: status, bytes and the headers that matter."""
    assert hot.status_code == framework.status_code, (hot.text, framework.text)
    assert hot.content == framework.content
    for header in ("content-type", "content-length", "etag"):
        assert hot.headers.get(header) == framework.headers.get(header), header
