"""The outbox and its feed on a real database: emit in the caller's transaction, numbering in
commit order, scheduled events, emit_once, retention and the HTTP feed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit import events
from kit.app import ServiceSpec, create_app
from kit.db import COPY_FROM, create_engine, create_sessionmaker, is_database_unavailable
from kit.events import Gone, emit, emit_once, event_table, read_feed, sequence_due
from kit.testing import ServiceTokens, provision_database
from kit.tests.sample_app import SampleSettings

SOURCE = "sample"
ALL_TYPES = frozenset(events.EVENT_TYPES)


@dataclass
class Outbox:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with provision_database("events", Path(tmp_path_factory.mktemp("events"))) as url:
        engine = create_engine(url)
        schema = MetaData()
        events.event_tables(schema)
        async with engine.begin() as connection:
            await connection.run_sync(schema.create_all)
        await engine.dispose()
        yield url


@pytest.fixture
async def outbox(database: str) -> AsyncIterator[Outbox]:
    engine = create_engine(database)
    try:
        yield Outbox(engine, create_sessionmaker(engine))
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(events.event_table))
            await connection.execute(delete(events.event_once_table))
        await engine.dispose()


async def _emit(outbox: Outbox, subject: str, **kwargs: Any) -> None:
    async with outbox.sessionmaker() as session, session.begin():
        await emit(
            session,
            source=SOURCE,
            type=kwargs.pop("type", "brand.created"),
            subject=subject,
            data=kwargs.pop("data", {"id": subject}),
            county_code=kwargs.pop("county_code", "320303"),
            **kwargs,
        )


async def _read(outbox: Outbox, after: int = 0, limit: int = 1000) -> dict[str, Any]:
    async with outbox.sessionmaker() as session:
        return await read_feed(session, after=after, types=ALL_TYPES, counties=None, limit=limit)


async def _count(outbox: Outbox) -> int:
    async with outbox.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(event_table)) or 0)


async def test_an_event_of_a_rolled_back_transaction_is_never_written(outbox: Outbox) -> None:
    async with outbox.sessionmaker() as session:
        await emit(
            session,
            source=SOURCE,
            type="brand.created",
            subject="brands/1",
            data={"id": "1"},
            county_code=None,
        )
        await session.rollback()
    assert await sequence_due(outbox.sessionmaker) == 0
    assert await _count(outbox) == 0
    assert (await _read(outbox))["items"] == []


async def test_the_feed_answers_cloud_events_in_order(outbox: Outbox) -> None:
    await _emit(outbox, "brands/1", data={"id": "1", "item": {"a": 1}})
    await _emit(outbox, "brands/2", county_code=None)
    assert await sequence_due(outbox.sessionmaker) == 2
    page = await _read(outbox)
    first, second = page["items"]
    assert set(first) == {
        "specversion", "id", "source", "type", "time", "subject", "datacontenttype",
        "sequence", "countycode", "data",
    }  # fmt: skip
    assert first["specversion"] == "1.0"
    assert first["source"] == "/sample"
    assert first["subject"] == "brands/1"
    assert first["sequence"] == "00000000000000000001"
    assert first["countycode"] == "320303"
    assert first["data"] == {"id": "1", "item": {"a": 1}}
    assert first["time"].endswith("Z")
    assert "countycode" not in second
    assert second["sequence"] == "00000000000000000002"
    assert page["next_after"] == 2
    assert page["horizon"] == 0
    assert (await _read(outbox, after=2))["items"] == []
    assert (await _read(outbox, after=2))["next_after"] == 2


@pytest.mark.parametrize("size", [1, 3, COPY_FROM + 10])
async def test_a_batch_of_events_is_written_whole_in_the_transaction(
    outbox: Outbox, size: int
) -> None:
    """One event, a few, and a batch large enough for COPY on PostgreSQL (each written its
    own way there) read back exactly as emitted, and vanish with a rollback."""
    batch = [
        events.NewEvent(
            type="certificate.created",
            subject=f"certificates/{n}",
            data={"id": str(n), "item": {"name": "徐州", "sites": ["a", "b"], "none": None}},
            county_code="320303" if n % 2 else None,
        )
        for n in range(size)
    ]
    async with outbox.sessionmaker() as session:
        await events.emit_many(session, source=SOURCE, events=batch)
        await session.rollback()
    assert await _count(outbox) == 0
    async with outbox.sessionmaker() as session, session.begin():
        await events.emit_many(session, source=SOURCE, events=batch)
    await sequence_due(outbox.sessionmaker)
    items = (await _read(outbox))["items"]
    assert [e["subject"] for e in items] == [e.subject for e in batch]
    assert [e["data"] for e in items] == [e.data for e in batch]
    assert [e.get("countycode") for e in items] == [e.county_code for e in batch]
    assert all(e["source"] == "/sample" and e["time"].endswith("Z") for e in items)


async def test_a_connection_lost_under_an_emit_says_the_database_is_unavailable(
    outbox: Outbox,
) -> None:
    """The emit writes on the bare driver on PostgreSQL; a connection lost there is an
    outage (a 503 with Retry-After), not a failed statement."""
    if outbox.engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    async with outbox.sessionmaker() as session:
        pid = (await session.execute(select(func.pg_backend_pid()))).scalar_one()
        driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection
        async with outbox.engine.connect() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        for _ in range(100):
            if driver.is_closed():
                break
            await asyncio.sleep(0.05)
        with pytest.raises(asyncpg.InterfaceError) as raised:
            await emit(
                session,
                source=SOURCE,
                type="brand.created",
                subject="brands/1",
                data={"id": "1"},
                county_code=None,
            )
        assert is_database_unavailable(raised.value)
        with suppress(Exception):
            await session.rollback()
    assert await _count(outbox) == 0


async def test_concurrent_writers_are_read_once_each_in_order(outbox: Outbox) -> None:
    """Writers whose transactions commit out of insert order, a sequencer and a polling
    reader: the reader, resuming from its cursor, sees every event once, numbers rising."""
    emitted: list[str] = []
    stop = asyncio.Event()

    async def writer(name: str) -> None:
        for n in range(25):
            async with outbox.sessionmaker() as session, session.begin():
                subject = f"brands/{name}-{n}"
                await emit(
                    session,
                    source=SOURCE,
                    type="brand.created",
                    subject=subject,
                    data={"id": subject},
                    county_code=None,
                )
                await asyncio.sleep(random.uniform(0, 0.01))
            emitted.append(subject)

    async def sequencer() -> None:
        while not stop.is_set():
            await sequence_due(outbox.sessionmaker)
            await asyncio.sleep(0.003)

    seen: list[dict[str, Any]] = []

    async def reader() -> None:
        after = 0
        while True:
            done = stop.is_set()
            page = await _read(outbox, after=after, limit=7)
            seen.extend(page["items"])
            after = page["next_after"]
            if done and not page["items"]:
                return
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(sequencer()), asyncio.create_task(reader())]
    await asyncio.gather(writer("a"), writer("b"))
    await sequence_due(outbox.sessionmaker)
    stop.set()
    await asyncio.gather(*tasks)
    subjects = [event["subject"] for event in seen]
    assert sorted(subjects) == sorted(emitted)
    assert len(subjects) == len(set(subjects)) == 50
    numbers = [int(event["sequence"]) for event in seen]
    assert numbers == sorted(numbers) == list(range(1, 51))


async def test_a_scheduled_event_stays_hidden_until_it_is_due(outbox: Outbox) -> None:
    now = datetime.now(UTC)
    await _emit(
        outbox, "spot-checks/1", type="spot_check.published", not_before=now + timedelta(hours=1)
    )
    assert await sequence_due(outbox.sessionmaker) == 0
    assert (await _read(outbox))["items"] == []
    # Moments in another zone compare as the same instants (SQLite stores UTC digits).
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    assert await sequence_due(outbox.sessionmaker, now=local + timedelta(minutes=59)) == 0
    assert await sequence_due(outbox.sessionmaker, now=local + timedelta(hours=1)) == 1
    (event,) = (await _read(outbox))["items"]
    assert event["type"] == "spot_check.published"
    assert datetime.fromisoformat(event["time"]) == now + timedelta(hours=1)


async def test_reschedule_and_withdraw_touch_only_unpublished_events(outbox: Outbox) -> None:
    now = datetime.now(UTC)
    await _emit(outbox, "spot-checks/1", type="spot_check.corrected")
    await sequence_due(outbox.sessionmaker)
    later = now + timedelta(days=3)
    await _emit(outbox, "spot-checks/1", type="spot_check.published", not_before=later)
    await _emit(outbox, "spot-checks/2", type="spot_check.published", not_before=later)
    async with outbox.sessionmaker() as session, session.begin():
        moved = await events.reschedule(
            session, subject="spot-checks/1", not_before=now - timedelta(seconds=1)
        )
        dropped = await events.withdraw(
            session, subject="spot-checks/2", type="spot_check.published"
        )
    assert (moved, dropped) == (1, 1)
    assert await sequence_due(outbox.sessionmaker) == 1
    assert [e["type"] for e in (await _read(outbox))["items"]] == [
        "spot_check.corrected",
        "spot_check.published",
    ]
    assert await _count(outbox) == 2


async def test_emit_once_emits_a_key_once(outbox: Outbox) -> None:
    answers = []
    for _ in range(2):
        async with outbox.sessionmaker() as session, session.begin():
            answers.append(
                await emit_once(
                    session,
                    key="brand.expiring_soon:42:30",
                    source=SOURCE,
                    type="brand.expiring_soon",
                    subject="brands/42",
                    data={"id": "42", "threshold_days": 30},
                    county_code="320303",
                )
            )
    assert answers == [True, False]
    await sequence_due(outbox.sessionmaker)
    assert len((await _read(outbox))["items"]) == 1


async def test_emit_once_of_a_rolled_back_transaction_may_emit_again(outbox: Outbox) -> None:
    async with outbox.sessionmaker() as session:
        assert await emit_once(
            session, key="k", source=SOURCE, type="brand.expiring_soon", subject="brands/1",
            data={}, county_code=None,
        )  # fmt: skip
        await session.rollback()
    async with outbox.sessionmaker() as session, session.begin():
        assert await emit_once(
            session, key="k", source=SOURCE, type="brand.expiring_soon", subject="brands/1",
            data={}, county_code=None,
        )  # fmt: skip


async def test_purge_keeps_the_newest_and_an_older_cursor_is_gone(outbox: Outbox) -> None:
    for n in range(3):
        await _emit(outbox, f"brands/{n}")
    await sequence_due(outbox.sessionmaker)
    later = datetime.now(UTC) + timedelta(days=401)
    assert await events.purge(outbox.sessionmaker, older_than=timedelta(days=400), now=later) == 2
    page = await _read(outbox, after=2)
    assert [e["sequence"][-1] for e in page["items"]] == ["3"]
    assert page["horizon"] == 2
    with pytest.raises(Gone) as gone:
        await _read(outbox, after=1)
    assert gone.value.extra["field"] == "after"
    await _emit(outbox, "brands/after-purge")
    await sequence_due(outbox.sessionmaker)
    assert [e["sequence"][-1] for e in (await _read(outbox, after=3))["items"]] == ["4"]
    assert await events.purge(outbox.sessionmaker, now=datetime.now(UTC)) == 0


# The HTTP feed -------------------------------------------------------------------------


@pytest.fixture
async def feed_app(
    outbox: Outbox, database: str, service_tokens: ServiceTokens, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    spec = ServiceSpec(
        name=SOURCE,
        title="Sample",
        description="",
        version="1",
        routers=[events.events_router(SOURCE)],
        migrations=Path(__file__).parent / "sample_migrations",
        version_table="sample_alembic_version",
        lifespan_hooks=[events.events_lifespan(interval_seconds=0.05)],
    )
    settings = SampleSettings(
        database_url=database,
        var_dir=tmp_path,
        secret_key="test-secret-" + "x" * 32,
        token_issuers={"gateway": service_tokens.public_key_path},
    )
    app = create_app(spec, settings)
    async with app.router.lifespan_context(app):
        yield app


def _client(
    app: FastAPI, tokens: ServiceTokens, scopes: list[str], **kwargs: Any
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers=tokens.headers(SOURCE, scopes, **kwargs),
    )


async def test_the_route_filters_by_scope_county_and_type(
    outbox: Outbox, feed_app: FastAPI, service_tokens: ServiceTokens
) -> None:
    await _emit(outbox, "brands/1", county_code="320303")
    await _emit(outbox, "brands/2", county_code="320323")
    await _emit(outbox, "brands/3", county_code=None, type="brand.status_changed")
    await _emit(outbox, "certificates/1", county_code="320303", type="certificate.created")
    reader = ["events:read", "brands:read", "certificates:read"]
    async with _client(feed_app, service_tokens, reader) as client:
        answer = await client.get("/api/v1/events")
        assert answer.status_code == 200
        assert [e["subject"] for e in answer.json()["items"]] == [
            "brands/1", "brands/2", "brands/3", "certificates/1",
        ]  # fmt: skip
        prefixed = await client.get("/api/v1/events", params={"type": "brand.*", "limit": 2})
        assert [e["subject"] for e in prefixed.json()["items"]] == ["brands/1", "brands/2"]
        assert prefixed.json()["next_after"] == 2
        exact = await client.get(
            "/api/v1/events", params={"type": "brand.status_changed,certificate.created"}
        )
        assert [e["subject"] for e in exact.json()["items"]] == ["brands/3", "certificates/1"]
    async with _client(feed_app, service_tokens, ["events:read", "certificates:read"]) as client:
        items = (await client.get("/api/v1/events")).json()["items"]
        assert [e["subject"] for e in items] == ["certificates/1"]
    async with _client(
        feed_app, service_tokens, ["events:read", "brands:read"], county_codes=["320323"]
    ) as client:
        items = (await client.get("/api/v1/events")).json()["items"]
        assert [e["subject"] for e in items] == ["brands/2", "brands/3"]
    async with _client(
        feed_app,
        service_tokens,
        ["events:read", "brands:read", "city:read"],
        county_codes=["320323"],
    ) as client:
        assert len((await client.get("/api/v1/events")).json()["items"]) == 3


async def test_the_route_refuses_bad_queries_and_missing_scope(
    feed_app: FastAPI, service_tokens: ServiceTokens
) -> None:
    async with _client(feed_app, service_tokens, ["brands:read"]) as client:
        refused = await client.get("/api/v1/events")
        assert refused.status_code == 403
        assert refused.json()["required_scope"] == "events:read"
    async with _client(feed_app, service_tokens, ["events:read", "brands:read"]) as client:
        for params, field in [
            ({"after": "-1"}, "after"),
            ({"after": "x"}, "after"),
            ({"limit": "0"}, "limit"),
            ({"limit": "1001"}, "limit"),
            ({"type": "brand.deleted"}, "type"),
            ({"type": "widget.*"}, "type"),
        ]:
            answer = await client.get("/api/v1/events", params=params)
            assert answer.status_code == 422, params
            assert answer.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in answer.json()["errors"]] == [field], params


async def test_the_route_answers_410_below_the_horizon(
    outbox: Outbox, feed_app: FastAPI, service_tokens: ServiceTokens
) -> None:
    for n in range(3):
        await _emit(outbox, f"brands/{n}")
    await sequence_due(outbox.sessionmaker)
    await events.purge(outbox.sessionmaker, now=datetime.now(UTC) + timedelta(days=401))
    async with _client(feed_app, service_tokens, ["events:read", "brands:read"]) as client:
        gone = await client.get("/api/v1/events", params={"after": 0})
        assert gone.status_code == 410
        assert gone.json()["field"] == "after"
        assert gone.json()["horizon"] == 2
        kept = await client.get("/api/v1/events", params={"after": 2})
        assert kept.status_code == 200
        assert kept.json()["horizon"] == 2


async def test_the_background_loop_numbers_scheduled_events(
    outbox: Outbox, feed_app: FastAPI
) -> None:
    await _emit(
        outbox, "spot-checks/1", type="spot_check.published",
        not_before=datetime.now(UTC) + timedelta(milliseconds=200),
    )  # fmt: skip
    for _ in range(100):
        async with outbox.sessionmaker() as session:
            numbered = await session.scalar(
                select(func.count()).where(event_table.c.sequence.is_not(None))
            )
        if numbered:
            break
        await asyncio.sleep(0.05)
    assert numbered == 1


def test_the_feed_is_documented(feed_app: FastAPI) -> None:
    operation = feed_app.openapi()["paths"]["/api/v1/events"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventPage"
    }
    assert {p["name"] for p in operation["parameters"]} == {"after", "type", "limit"}


async def test_events_prepared_off_the_session_write_as_emitted(outbox: Outbox) -> None:
    """Events made ready in a worker thread (as an import's batches are) and written later
    read back as `emit_many` writes them; prepared for the other kind of database they are
    refused, not written wrong."""
    batch = [
        events.NewEvent(
            type="certificate.created",
            subject=f"certificates/{n}",
            data={"id": str(n), "item": {"on": date(2026, 3, 1), "name": "徐州"}},
            county_code="320303",
        )
        for n in range(COPY_FROM + 1)
    ]
    dialect = outbox.engine.dialect.name
    prepared = await asyncio.to_thread(events.prepare_events, SOURCE, batch, dialect=dialect)
    other = events.prepare_events(
        SOURCE, batch, dialect="sqlite" if dialect == "postgresql" else "postgresql"
    )
    async with outbox.sessionmaker() as session, session.begin():
        with pytest.raises(ValueError, match="another kind of database"):
            await events.emit_prepared(session, other)
        await events.emit_prepared(session, prepared)
    await sequence_due(outbox.sessionmaker)
    items = (await _read(outbox))["items"]
    assert [e["subject"] for e in items] == [e.subject for e in batch]
    assert items[0]["data"] == {"id": "0", "item": {"on": "2026-03-01", "name": "徐州"}}
