"""Change events: a transactional outbox in each service's own database, and its feed.

    change + emit()        one transaction: the change and its `event` row (sequence NULL)
          │
          ▼
    sequence_due()         own short transaction, under a lock: every committed row that is
          │                due gets max(sequence) + row_number() over (order by pk)
          ▼
    GET /api/v1/events     rows with sequence > after, in sequence order (CloudEvents 1.0)

Why numbers are given late: an event's number must never become visible after a higher one,
or a reader that stores the last number it saw would skip it. Numbers taken at insert time
(an identity column) break that: a transaction can take 7, commit after another took 8, and
a reader who saw 8 never looks back. So `emit` writes the row unnumbered in the caller's
transaction, and `sequence_due` numbers every committed, due, unnumbered row in one UPDATE
while it holds a lock (`pg_advisory_xact_lock` on PostgreSQL; SQLite's single writer
serialises it anyway), so each run's numbers all lie above every number given before and
become visible together when it commits. The feed calls it before reading, so a read sees
every event committed before it; a background loop (`events_lifespan`) calls it every second
as well, so scheduled events (`not_before`) are numbered when they fall due even without
readers.

Retention: `purge` deletes numbered events older than the retention period, oldest numbers
first, always keeping the newest event so the numbering never starts again. The feed's
`horizon` is the lowest number kept minus one: a reader whose `after` is at or above it has
missed nothing; one below it is answered 410 naming `after`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.auth import Principal, require_scope
from kit.db import (
    COPY_FROM,
    NAMING_CONVENTION,
    as_utc,
    dialect_of,
    driver_connection,
    is_database_unavailable,
    outage_log,
)
from kit.errors import FieldError, ProblemError, ValidationFailed

logger = structlog.get_logger("kit.events")

FEED_SCOPE = "events:read"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
DEFAULT_RETENTION = timedelta(days=400)
SEQUENCE_DIGITS = 20
ADVISORY_LOCK = 0x6B69745F65766E74
"""The PostgreSQL advisory lock (per database) held while events are numbered."""

EVENT_TYPES: Mapping[str, str] = {
    "brand.created": "brands:read",
    "brand.status_changed": "brands:read",
    "brand.review_flagged": "brands:read",
    "brand.expiring_soon": "brands:read",
    "brand.suspension_overdue": "brands:read",
    "award.created": "brands:read",
    "award.status_changed": "brands:read",
    "certificate.created": "certificates:read",
    "certificate.status_changed": "certificates:read",
    "certificate.expiring_soon": "certificates:read",
    "certificate.suspension_overdue": "certificates:read",
    "disposition.changed": "certificates:read",
    "spot_check.published": "spot-checks:read",
    "spot_check.corrected": "spot-checks:read",
    "spot_check.repeated_failures": "spot-checks:read",
    "spot_check.equipment_overdue": "spot-checks:read",
    "incident.reported": "incidents:read",
    "incident.status_changed": "incidents:read",
    "reported_value.submitted": "assessments:read",
    "reported_value.accepted": "assessments:read",
    "reported_value.returned": "assessments:read",
    "assessment_run.published": "assessments:read",
}
"""The platform's published event types and the scope that reads each (the contract between
the services and the systems reading their feeds)."""

UNSEQUENCED = text("sequence IS NULL")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

event_table = Table(
    "event",
    metadata,
    Column("pk", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
    Column("id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("county_code", String(6), nullable=True),
    Column("data", JSON(), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("sequence", BigInteger(), nullable=True),
    PrimaryKeyConstraint("pk", name="pk_event"),
    Index("uq_event_id", "id", unique=True),
    Index("uq_event_sequence", "sequence", unique=True),
    Index(
        "ix_event_unsequenced_due", "due_at", sqlite_where=UNSEQUENCED, postgresql_where=UNSEQUENCED
    ),
    Index("ix_event_subject", "subject"),
)
"""The outbox: one row per event; `sequence` stays NULL until `sequence_due` numbers it."""

event_once_table = Table(
    "event_once",
    metadata,
    Column("key", String(300), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("key", name="pk_event_once"),
)
"""The keys `emit_once` has emitted, so an event owed once is never emitted twice."""


def event_tables(target: MetaData) -> tuple[Table, Table]:
    """The two tables on a service's own metadata, so its migrations and drift test see them
    (the kit writes through its own copies, which have the same shape)."""
    return (
        target.tables.get("event") or event_table.to_metadata(target),
        target.tables.get("event_once") or event_once_table.to_metadata(target),
    )


class Gone(ProblemError):
    status, slug = 410, "gone"


def utcnow() -> datetime:
    return datetime.now(UTC)


# Writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    """One event to emit with `emit_many`."""

    type: str
    subject: str
    data: Mapping[str, Any]
    county_code: str | None
    not_before: datetime | None = None


def _row(source: str, event: NewEvent, now: datetime) -> dict[str, Any]:
    if event.type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.type!r}")
    due = event.not_before or now
    if due.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    return {
        "id": str(uuid.uuid4()),
        "type": event.type,
        "source": source,
        "subject": event.subject,
        "time": due.astimezone(UTC),
        "county_code": event.county_code,
        "data": event.data,
        "due_at": due.astimezone(UTC),
        "sequence": None,
    }


async def emit(
    session: AsyncSession,
    *,
    source: str,
    type: str,
    subject: str,
    data: Mapping[str, Any],
    county_code: str | None,
    not_before: datetime | None = None,
) -> None:
    """Write one event in the caller's transaction; it is published once the transaction
    commits and `not_before` (default now) has come."""
    await emit_many(
        session,
        source=source,
        events=[NewEvent(type, subject, data, county_code, not_before)],
    )


_COPIED = ("id", "type", "source", "subject", "time", "county_code", "data", "due_at")
"""The columns of the records `prepare_events` makes, in their order."""
_INSERT = (
    "INSERT INTO event (id, type, source, subject, time, county_code, data, due_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


@dataclass(frozen=True)
class PreparedEvents:
    """Events made ready to write (`prepare_events`): their rows, and for PostgreSQL the
    records the driver writes, their data already encoded as JSON."""

    rows: list[dict[str, Any]]
    records: list[tuple[Any, ...]] | None


def prepare_events(source: str, events: Iterable[NewEvent], *, dialect: str) -> PreparedEvents:
    """The rows `emit_prepared` writes for `events` on a database of `dialect` (a SQLAlchemy
    dialect name). Touches no session: an import makes its batches' events in the worker
    thread that parses them, off the event loop and off the path to the database."""
    now = utcnow()
    rows = [_row(source, event, now) for event in events]
    if dialect != "postgresql":
        for row in rows:
            row["data"] = to_jsonable_python(row["data"])
        return PreparedEvents(rows, None)
    records = [
        (
            row["id"],
            row["type"],
            row["source"],
            row["subject"],
            row["time"],
            row["county_code"],
            to_json(row["data"]).decode(),
            row["due_at"],
        )
        for row in rows
    ]
    return PreparedEvents(rows, records)


async def emit_many(session: AsyncSession, *, source: str, events: Iterable[NewEvent]) -> None:
    """Write many events at once (an import's batch), in the caller's transaction."""
    dialect = dialect_of(session)
    await emit_prepared(session, prepare_events(source, events, dialect=dialect))


async def emit_prepared(session: AsyncSession, prepared: PreparedEvents) -> None:
    """Write events `prepare_events` made for this session's dialect, in the caller's
    transaction.

    On PostgreSQL on the session's own asyncpg connection: with COPY from `COPY_FROM` rows,
    a fifth of an INSERT's cost per row, which an import of 50,000 rows feels; else one
    prepared INSERT. Either skips SQLAlchemy's statement machinery, which costs more than
    the round trip itself for the one event of an ordinary write: `bench/events_bench.py`
    measured the event's added p50 on `POST /api/v1/brands` at +12.6 % through a compiled
    `insert()` and +4.4 % on the driver (7 rounds of 300 at c=1, 2 cores, PostgreSQL,
    2026-12-02)."""
    if not prepared.rows:
        return
    if (dialect_of(session) == "postgresql") != (prepared.records is not None):
        raise ValueError("these events were prepared for another kind of database")
    if prepared.records is None:
        await session.execute(insert(event_table), prepared.rows)
        return
    driver = await driver_connection(session)
    records = prepared.records
    if len(records) >= COPY_FROM:
        await driver.copy_records_to_table("event", records=records, columns=list(_COPIED))
    elif len(records) == 1:
        await driver.execute(_INSERT, *records[0])
    else:
        await driver.executemany(_INSERT, records)


def _insert_key(dialect: str, key: str, at: datetime) -> Any:
    values = {"key": key, "at": at}
    if dialect == "postgresql":
        return postgresql.insert(event_once_table).values(values).on_conflict_do_nothing()
    return sqlite.insert(event_once_table).values(values).on_conflict_do_nothing()


async def emit_once(
    session: AsyncSession,
    *,
    key: str,
    source: str,
    type: str,
    subject: str,
    data: Mapping[str, Any],
    county_code: str | None,
) -> bool:
    """Emit the event unless one was emitted under `key` before (in any transaction that
    committed); whether it emitted. A concurrent emitter of the same key waits for this
    transaction and then emits nothing."""
    statement = _insert_key(dialect_of(session), key, utcnow())
    result = await session.execute(statement)
    if getattr(result, "rowcount", 0) != 1:
        return False
    await emit(
        session, source=source, type=type, subject=subject, data=data, county_code=county_code
    )
    return True


async def _lock_numbering(session: AsyncSession) -> None:
    if dialect_of(session) == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))


async def reschedule(
    session: AsyncSession, *, subject: str, not_before: datetime, types: Sequence[str] = ()
) -> int:
    """Move the subject's events not yet published (of `types`, default all) to
    `not_before`, in the caller's transaction; how many moved."""
    await _lock_numbering(session)
    due = not_before.astimezone(UTC)
    conditions = [event_table.c.subject == subject, event_table.c.sequence.is_(None)]
    if types:
        conditions.append(event_table.c.type.in_(list(types)))
    result = await session.execute(
        update(event_table).where(*conditions).values(due_at=due, time=due)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def withdraw(session: AsyncSession, *, subject: str, type: str | None = None) -> int:
    """Drop the subject's events not yet published (of `type`, default all), in the
    caller's transaction; how many."""
    await _lock_numbering(session)
    conditions = [event_table.c.subject == subject, event_table.c.sequence.is_(None)]
    if type is not None:
        conditions.append(event_table.c.type == type)
    result = await session.execute(delete(event_table).where(*conditions))
    return int(getattr(result, "rowcount", 0) or 0)


async def pending_events(session: AsyncSession, *, subject: str) -> list[dict[str, Any]]:
    """The subject's events not yet published, oldest first (type, due_at, data)."""
    rows = await session.execute(
        select(event_table.c.type, event_table.c.due_at, event_table.c.data)
        .where(event_table.c.subject == subject, event_table.c.sequence.is_(None))
        .order_by(event_table.c.pk)
    )
    return [
        {"type": row.type, "due_at": as_utc(row.due_at), "data": row.data} for row in rows.all()
    ]


# Numbering and retention ----------------------------------------------------------------


def _due(now: datetime) -> Any:
    return and_(event_table.c.sequence.is_(None), event_table.c.due_at <= now)


async def sequence_due(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> int:
    """Number every committed event that is due, in one short transaction of its own;
    how many it numbered."""
    # SQLite keeps the UTC digits only: every moment compared is given in UTC.
    moment = (now or utcnow()).astimezone(UTC)
    async with sessionmaker() as session:
        waiting = await session.scalar(select(event_table.c.pk).where(_due(moment)).limit(1))
        if waiting is None:
            return 0
    async with sessionmaker() as session, session.begin():
        await _lock_numbering(session)
        before = event_table.alias("numbered_before")
        top = select(func.coalesce(func.max(before.c.sequence), 0)).scalar_subquery()
        numbered = (
            select(
                event_table.c.pk.label("pk"),
                (top + func.row_number().over(order_by=event_table.c.pk)).label("number"),
            )
            .where(_due(moment))
            .subquery("numbered")
        )
        result = await session.execute(
            update(event_table)
            .where(event_table.c.pk == numbered.c.pk)
            .values(sequence=numbered.c.number)
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def purge(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    older_than: timedelta = DEFAULT_RETENTION,
    now: datetime | None = None,
) -> int:
    """Delete the numbered events published longer ago than `older_than`, lowest numbers
    first, keeping the newest event; how many."""
    cutoff = (now or utcnow()).astimezone(UTC) - older_than
    async with sessionmaker() as session, session.begin():
        await _lock_numbering(session)
        newest = await session.scalar(select(func.max(event_table.c.sequence)))
        last_old = await session.scalar(
            select(func.max(event_table.c.sequence)).where(
                event_table.c.sequence.is_not(None), event_table.c.due_at < cutoff
            )
        )
        if newest is None or last_old is None:
            return 0
        limit = min(int(last_old), int(newest) - 1)
        result = await session.execute(
            delete(event_table).where(
                event_table.c.sequence.is_not(None), event_table.c.sequence <= limit
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def horizon(session: AsyncSession) -> int:
    """The lowest number kept minus one (0 while nothing was purged): an `after` at or
    above it has missed nothing."""
    lowest = await session.scalar(select(func.min(event_table.c.sequence)))
    return 0 if lowest is None else int(lowest) - 1


def events_lifespan(
    *, interval_seconds: float | None = None, retention: timedelta | None = None
) -> Any:
    """The lifespan hook numbering due events every `interval_seconds` and purging those
    past `retention` at most hourly. Unset values come from the app's settings
    (`events_sequence_seconds`, `events_retention_days`), else 1 s and 400 days."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings = app.state.settings
        interval = interval_seconds or float(getattr(settings, "events_sequence_seconds", 1.0))
        kept = retention or timedelta(days=int(getattr(settings, "events_retention_days", 400)))
        stopping = asyncio.Event()
        task = asyncio.create_task(
            _run(app.state.sessionmaker, interval=interval, retention=kept, stopping=stopping)
        )
        try:
            yield
        finally:
            stopping.set()
            with suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 10)

    return hook


async def _run(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    interval: float,
    retention: timedelta,
    stopping: asyncio.Event,
) -> None:
    purged_at: datetime | None = None
    while not stopping.is_set():
        try:
            await sequence_due(sessionmaker)
            if purged_at is None or utcnow() - purged_at >= timedelta(hours=1):
                purged = await purge(sessionmaker, older_than=retention)
                purged_at = utcnow()
                if purged:
                    logger.info("events_purged", count=purged)
        except Exception as error:
            if is_database_unavailable(error):
                outage_log.report(error, "events")
            else:
                logger.exception("events_cycle_failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


# The feed -------------------------------------------------------------------------------


class CloudEvent(BaseModel):
    """An event in the CloudEvents 1.0 JSON format, with the `sequence` extension (a
    zero-padded decimal, so it sorts as text) and `countycode` (absent without a county)."""

    specversion: str = Field(default="1.0", examples=["1.0"])
    id: str = Field(description="A UUID, unique per event.")
    source: str = Field(examples=["/brand_registry"])
    type: str = Field(examples=["brand.status_changed"])
    time: datetime = Field(description="When it happened (RFC 3339, UTC).")
    subject: str = Field(examples=["brands/42"])
    datacontenttype: str = "application/json"
    sequence: str = Field(
        description=f"The service's event number, {SEQUENCE_DIGITS} digits, zero-padded.",
        examples=["00000000000000000042"],
    )
    countycode: str | None = Field(
        default=None, description="The record's county (GB/T 2260); absent when it has none."
    )
    data: dict[str, Any] = Field(
        description="`id`, `item` (the record as its GET answers) and the change's fields."
    )


class EventPage(BaseModel):
    """A part of a service's feed: events numbered above `after`, in order."""

    items: list[CloudEvent]
    next_after: int = Field(description="The last number returned; `after` when none was.")
    horizon: int = Field(
        description="Events numbered up to this one were purged: an `after` below it is a 410."
    )


def _cloud_event(row: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": row.id,
        "source": f"/{row.source}",
        "type": row.type,
        "time": as_utc(row.time).isoformat().replace("+00:00", "Z"),
        "subject": row.subject,
        "datacontenttype": "application/json",
        "sequence": str(row.sequence).zfill(SEQUENCE_DIGITS),
    }
    if row.county_code is not None:
        event["countycode"] = row.county_code
    event["data"] = row.data
    return event


def parse_types(raw: str | None, known: Iterable[str] = EVENT_TYPES) -> frozenset[str] | None:
    """The types a `type=` filter names (None: no filter); 422 naming `type` for an entry
    that is neither a known type nor a prefix of one (`brand.*`)."""
    if raw is None:
        return None
    catalogue = frozenset(known)
    chosen: set[str] = set()
    errors: list[FieldError] = []
    for entry in (part.strip() for part in raw.split(",")):
        if entry.endswith(".*"):
            matched = {name for name in catalogue if name.startswith(entry[:-1])}
        else:
            matched = {entry} & catalogue
        if not matched:
            errors.append(
                FieldError("type", f"{entry!r} is neither a known event type nor a prefix of one")
            )
        chosen |= matched
    if errors:
        raise ValidationFailed(errors)
    return frozenset(chosen)


def readable_types(principal: Principal, types: Mapping[str, str] = EVENT_TYPES) -> frozenset[str]:
    """The event types whose read scope the principal holds."""
    return frozenset(name for name, scope in types.items() if principal.has(scope))


async def read_feed(
    session: AsyncSession,
    *,
    after: int,
    types: frozenset[str],
    counties: frozenset[str] | None,
    limit: int,
) -> dict[str, Any]:
    """The feed's answer: the first `limit` events numbered above `after` of `types` (and
    of `counties` or none, when given); 410 naming `after` below the horizon."""
    kept_from = await horizon(session)
    if after < kept_from:
        raise Gone(
            f"Events up to number {kept_from} were purged; read again from after={kept_from}.",
            field="after",
            horizon=kept_from,
            errors=[FieldError("after", f"must be at least {kept_from}").as_dict()],
        )
    items: list[dict[str, Any]] = []
    if types:
        query = (
            select(event_table)
            .where(
                event_table.c.sequence > after,
                event_table.c.type.in_(sorted(types)),
            )
            .order_by(event_table.c.sequence)
            .limit(limit)
        )
        if counties is not None:
            query = query.where(
                or_(
                    event_table.c.county_code.is_(None),
                    event_table.c.county_code.in_(sorted(counties)),
                )
            )
        items = [_cloud_event(row) for row in (await session.execute(query)).all()]
    next_after = int(items[-1]["sequence"]) if items else after
    return {"items": items, "next_after": next_after, "horizon": kept_from}


FeedReader = Annotated[Principal, Depends(require_scope(FEED_SCOPE))]


def events_router(source: str, *, types: Mapping[str, str] = EVENT_TYPES) -> APIRouter:
    """The service's part of the change feed, `GET /api/v1/events`."""
    router = APIRouter(prefix="/api/v1", tags=["events"])

    @router.get(
        "/events",
        summary=f"Read the change events of {source}",
        response_model=EventPage,
        description=(
            "Events numbered above `after`, in order, of the types whose read scope the caller "
            "holds and, for a client bound to counties, of its counties (and events without a "
            "county). Store `next_after` and read again from it: numbers become visible in "
            "order, so nothing is missed or seen twice. `type` takes a comma-separated list of "
            "types or prefixes (`brand.*`). An `after` below `horizon` (events purged) is a 410."
        ),
        responses={410: {"description": "Events after `after` were purged."}},
    )
    async def read_events(
        request: Request,
        principal: FeedReader,
        after: Annotated[int, Query(ge=0, description="The last number already read.")] = 0,
        type: Annotated[
            str | None, Query(description="Comma-separated types or prefixes (`brand.*`).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> JSONResponse:
        wanted = parse_types(type, types)
        allowed = readable_types(principal, types)
        chosen = allowed if wanted is None else allowed & wanted
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        await sequence_due(sessionmaker)
        async with sessionmaker() as session:
            page = await read_feed(
                session,
                after=after,
                types=chosen,
                counties=principal.readable_counties(),
                limit=limit,
            )
        return JSONResponse(page)

    return router
