import asyncio
import inspect
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool
from sqlalchemy.util.queue import AsyncAdaptedQueue

import kit.db
from kit.db import (
    COPY_FROM,
    NAMING_CONVENTION,
    FirstComePool,
    _FirstComeQueue,
    as_utc,
    create_engine,
    create_sessionmaker,
    insert_rows,
    is_database_unavailable,
    is_sqlite,
    outage_log,
    plan_each_statement,
    present_keys,
    violates_unique,
)
from kit.testing import TEST_DATABASE_URL, Harness, ServiceTokens, provision_database
from kit.tests.sample_app import SampleSettings, build_app


def test_backend_detection() -> None:
    assert is_sqlite("sqlite+aiosqlite:///var/x.db")
    assert not is_sqlite("postgresql+asyncpg://postgres@127.0.0.1/x")


async def test_sqlite_engine_enforces_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/db.sqlite")
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


async def test_failed_commit_is_a_server_error_not_a_200(
    sample: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that returns normally but whose commit fails must not answer 2xx."""

    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    response = await sample.client().post("/api/v1/widgets", json={"name": "lost", "color": "r"})
    monkeypatch.undo()
    assert response.status_code == 500
    assert "connection lost" not in response.text
    assert (await sample.client().get("/api/v1/widgets")).json()["items"] == []


def test_the_private_pool_hooks_first_come_pool_relies_on_are_still_there(tmp_path: Path) -> None:
    """FirstComePool replaces the pool's queue class, reaches the queue as `_pool` and gives
    connections back through `_do_return_conn`: if SQLAlchemy moves any of them, this fails
    here and not as a silently unfair pool in production."""
    assert AsyncAdaptedQueuePool._queue_class is AsyncAdaptedQueue
    assert callable(AsyncAdaptedQueuePool._do_return_conn)
    for name in ("get", "get_nowait", "put_nowait"):
        assert callable(getattr(AsyncAdaptedQueue, name)), name
    assert list(inspect.signature(AsyncAdaptedQueue.get).parameters) == ["self", "block", "timeout"]
    pool = FirstComePool(lambda: None, pool_size=1)
    assert isinstance(pool._pool, _FirstComeQueue)
    assert pool._pool.give_back == pool._do_return_conn


def _one_connection_engine(tmp_path: Path, timeout: float = 5.0) -> AsyncEngine:
    return create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path}/pool.sqlite",
        poolclass=FirstComePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=timeout,
        # Giving a connection back then takes no I/O, so it happens before any task runs.
        pool_reset_on_return=None,
    )


async def test_a_connection_given_back_goes_to_the_request_that_waited_longest(
    tmp_path: Path,
) -> None:
    engine = _one_connection_engine(tmp_path)
    served: list[str] = []

    async def query(name: str) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            served.append(name)

    held = await engine.connect()
    waited = asyncio.create_task(query("waited"))
    await asyncio.sleep(0.05)
    # Starts before the waiting request wakes up, so it would find the connection first.
    late = asyncio.create_task(query("late"))
    await held.close()
    await asyncio.gather(waited, late)
    assert served == ["waited", "late"]
    await engine.dispose()


async def test_waiting_for_a_connection_times_out(tmp_path: Path) -> None:
    engine = _one_connection_engine(tmp_path, timeout=0.1)
    async with engine.connect():
        with pytest.raises(SQLAlchemyTimeoutError):
            await engine.connect()
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    await engine.dispose()


async def test_a_connection_handed_to_a_request_cancelled_meanwhile_is_not_lost(
    tmp_path: Path,
) -> None:
    engine = _one_connection_engine(tmp_path, timeout=0.5)

    async def query() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    held = await engine.connect()
    cancelled = asyncio.create_task(query())
    await asyncio.sleep(0.05)
    await held.close()  # The connection is handed to the waiting request ...
    cancelled.cancel()  # ... which gives up before it runs again.
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await query()
    await engine.dispose()


async def test_an_unreachable_database_is_a_503_with_retry_after_logged_once(
    service_tokens: ServiceTokens, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on the database's port: every call that needs it is a 503 problem
    with Retry-After (the claim of an Idempotency-Key too), readiness says so, /metrics
    counts it, and the log has one warning and no traceback."""
    settings = SampleSettings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/absent",
        var_dir=tmp_path,
        secret_key="test-secret-" + "x" * 32,
        token_issuers={"gateway": service_tokens.public_key_path},
    )
    app = build_app(settings)
    outage_log.recovered()
    headers = service_tokens.headers("sample", ("widgets:read", "widgets:write"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as client,
    ):
        capsys.readouterr()
        answers = [
            await client.get("/api/v1/widgets"),
            await client.post("/api/v1/widgets", json={"name": "x", "color": "red"}),
            await client.post(
                "/api/v1/widgets",
                json={"name": "y", "color": "red"},
                headers={"Idempotency-Key": "during-outage"},
            ),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith("/database-unavailable")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "fail"
        metrics = (await client.get("/metrics")).text
        assert "database_unavailable_total 3.0" in metrics
    log = capsys.readouterr().out
    assert log.count('"database_unavailable"') == 1
    assert "Traceback" not in log
    assert "unhandled_error" not in log


async def test_postgresql_connections_run_without_jit(tmp_path: Path) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only: SQLite has no JIT")
    async with provision_database("kit_jit", tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                jit = (await connection.execute(text("SHOW jit"))).scalar_one()
        finally:
            await engine.dispose()
    assert jit == "off"


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = create_async_engine(url, poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


async def test_an_idle_connection_lost_meanwhile_is_replaced_before_it_is_handed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(kit.db, "PING_AFTER_IDLE_SECONDS", 0.05)
    async with provision_database("kit_idle_ping", tmp_path) as url:
        engine = create_engine(url, pool_size=1)
        try:
            lost = await _backend_pid(engine)
            await _terminate(url, lost)
            await asyncio.sleep(0.2)
            assert await _backend_pid(engine) != lost
        finally:
            await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged_and_one_lost_is_replaced_after_failing(
    tmp_path: Path,
) -> None:
    """No ping for a connection given back a moment ago: if its server went away meanwhile,
    that one statement fails as a disconnect (a 503 to the caller) and the next one works."""
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only")
    async with provision_database("kit_steady", tmp_path) as url:
        engine = create_engine(url, pool_size=1)
        try:
            lost = await _backend_pid(engine)
            await _terminate(url, lost)
            with pytest.raises(DBAPIError) as failed:
                await _backend_pid(engine)
            assert failed.value.connection_invalidated
            assert is_database_unavailable(failed.value)
            assert await _backend_pid(engine) != lost
        finally:
            await engine.dispose()


async def test_a_transaction_may_plan_each_statement_for_its_values(tmp_path: Path) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only: SQLite plans every statement anew")
    async with provision_database("kit_custom_plans", tmp_path) as url:
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with sessionmaker() as session, session.begin():
                await plan_each_statement(session)
                inside = (await session.execute(text("SHOW plan_cache_mode"))).scalar_one()
            async with sessionmaker() as session:
                after = (await session.execute(text("SHOW plan_cache_mode"))).scalar_one()
        finally:
            await engine.dispose()
    assert inside == "force_custom_plan"
    assert after == "auto"


_ROWS_METADATA = MetaData(naming_convention=NAMING_CONVENTION)
_ROWS = Table(
    "copied_row",
    _ROWS_METADATA,
    Column("id", Integer, primary_key=True),
    Column("code", String(10), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("tags", JSON),
    Column("count", Integer, nullable=False, default=7),
    Column("labels", JSON, default=list),
)


@pytest.mark.parametrize("size", [3, COPY_FROM + 5])
async def test_inserted_rows_read_back_as_an_insert_stores_them(tmp_path: Path, size: int) -> None:
    """The same values, defaults and JSON whether the rows went in as an INSERT (SQLite, or
    a few) or with COPY (PostgreSQL, from `COPY_FROM`)."""
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    rows = [
        {"id": i, "code": f"C{i}", "at": at, "tags": {"n": i} if i % 2 else None}
        for i in range(size)
    ]
    async with provision_database("kit_insert_rows", tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_ROWS_METADATA.create_all)
            async with create_sessionmaker(engine)() as session, session.begin():
                await insert_rows(session, _ROWS, rows)
                await insert_rows(session, _ROWS, [])
            async with create_sessionmaker(engine)() as session:
                stored = (await session.execute(select(_ROWS).order_by(_ROWS.c.id))).all()
                nulls = (
                    await session.execute(select(func.count()).where(_ROWS.c.tags.is_(None)))
                ).scalar_one()
        finally:
            await engine.dispose()
    assert [row.code for row in stored] == [f"C{i}" for i in range(size)]
    assert [row.tags for row in stored] == [{"n": i} if i % 2 else None for i in range(size)]
    assert {as_utc(row.at) for row in stored} == {at}
    assert {row._mapping["count"] for row in stored} == {7}
    assert {tuple(row.labels) for row in stored} == {()}
    assert nulls == 0  # None in a JSON column is JSON null, as SQLAlchemy stores it


@pytest.mark.parametrize("size", [3, COPY_FROM + 5])
async def test_a_refused_row_is_the_integrity_error_of_an_insert(tmp_path: Path, size: int) -> None:
    rows = [{"id": i, "code": "SAME" if i in (1, size - 1) else f"C{i}"} for i in range(size)]
    rows = [{**row, "at": datetime(2026, 3, 1, tzinfo=UTC), "tags": None} for row in rows]
    async with provision_database("kit_insert_refused", tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_ROWS_METADATA.create_all)
            async with create_sessionmaker(engine)() as session:
                with pytest.raises(IntegrityError) as refused:
                    async with session.begin():
                        await insert_rows(session, _ROWS, rows)
            async with create_sessionmaker(engine)() as session:
                stored = (await session.execute(select(func.count()).select_from(_ROWS))).scalar()
        finally:
            await engine.dispose()
    assert violates_unique(refused.value, "uq_copied_row_code", ["copied_row.code"])
    assert stored == 0


async def test_present_keys_names_the_stored_keys_among_many(tmp_path: Path) -> None:
    """Of 2,000 (code, count) pairs, the ones stored, with a further condition applied; the
    same answer on SQLite (a tuple IN) and PostgreSQL (one array per column)."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    stored = [
        {"id": i, "code": f"C{i}", "at": at, "count": i % 3, "tags": None} for i in range(0, 60, 2)
    ]
    wanted = [(f"C{i}", i % 3) for i in range(2000)] + [("C4", 2), ("C'; --", 0)]
    async with provision_database("kit_present_keys", tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_ROWS_METADATA.create_all)
            async with create_sessionmaker(engine)() as session, session.begin():
                await insert_rows(session, _ROWS, stored)
                columns = [_ROWS.c.code, _ROWS.c.count]
                found = await present_keys(session, columns, wanted)
                kept = await present_keys(session, columns, wanted, _ROWS.c.count > 0)
                none = await present_keys(session, columns, [])
        finally:
            await engine.dispose()
    assert found == {(f"C{i}", i % 3) for i in range(0, 60, 2)}
    assert kept == {(f"C{i}", i % 3) for i in range(0, 60, 2) if i % 3}
    assert none == set()
