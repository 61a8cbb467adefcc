"""Every query of incidents; functions flush, the request commits."""

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import col

from inspection.incident_schemas import IncidentFilters, IncidentStatsRow
from inspection.models import INCIDENT_SOURCE_INDEX, Incident, IncidentHistory, OutboxMessage
from kit.db import violates_unique
from kit.errors import Conflict
from kit.pagination import Page, PageParams, paginate

SOURCE_COLUMNS = ["incident.source_system", "incident.source_reference"]
Sessionmaker = async_sessionmaker[AsyncSession]


async def get_incident(*, session: AsyncSession, incident_id: str) -> Incident | None:
    """The incident with this id, or None."""
    return await session.get(Incident, incident_id)


async def find_by_source(
    *, session: AsyncSession, source_system: str, source_reference: str
) -> Incident | None:
    """The incident a source system reported under this reference, or None."""
    query = select(Incident).where(
        col(Incident.source_system) == source_system,
        col(Incident.source_reference) == source_reference,
    )
    return (await session.execute(query)).scalars().first()


async def taken_sources(
    *, session: AsyncSession, keys: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (source_system, source_reference) pairs are already recorded."""
    if not keys:
        return set()
    query = select(col(Incident.source_system), col(Incident.source_reference)).where(
        tuple_(col(Incident.source_system), col(Incident.source_reference)).in_(keys)
    )
    return {(row[0], row[1]) for row in await session.execute(query)}


def source_conflict(source_system: str, source_reference: str, existing_id: str) -> Conflict:
    """The 409 of a source reference already recorded."""
    return Conflict(
        f"{source_system} already reported an incident under {source_reference!r}.",
        field="source_reference",
        existing_id=existing_id,
    )


async def add(*, session: AsyncSession, rows: Iterable[Any]) -> None:
    """Stage new rows and write them with the changes pending."""
    session.add_all(list(rows))
    await flush(session=session)


async def flush(*, session: AsyncSession) -> None:
    """Write the staged changes; 409 naming `source_reference` when a concurrent request
    recorded the same reference first."""
    pending = [
        (o.source_system, o.source_reference)
        for o in [*session.new, *session.dirty]
        if isinstance(o, Incident)
    ]
    try:
        await session.flush()
    except IntegrityError as error:
        if not violates_unique(error, INCIDENT_SOURCE_INDEX, SOURCE_COLUMNS):
            raise
        await session.rollback()
        for source_system, source_reference in pending:
            found = await find_by_source(
                session=session, source_system=source_system, source_reference=source_reference
            )
            if found is not None:
                raise source_conflict(source_system, source_reference, found.id) from None
        raise


def _filtered(query: Select[Any], filters: IncidentFilters) -> Select[Any]:
    conditions: list[Any] = []
    if filters.kind is not None:
        conditions.append(col(Incident.kind) == filters.kind.value)
    if filters.county_code is not None:
        conditions.append(col(Incident.county_code) == filters.county_code)
    if filters.county_codes is not None:
        conditions.append(col(Incident.county_code).in_(sorted(filters.county_codes)))
    if filters.status is not None:
        conditions.append(col(Incident.status) == filters.status.value)
    if filters.severity is not None:
        conditions.append(col(Incident.severity) == filters.severity.value)
    if filters.occurred_from is not None:
        conditions.append(col(Incident.occurred_on) >= filters.occurred_from)
    if filters.occurred_to is not None:
        conditions.append(col(Incident.occurred_on) <= filters.occurred_to)
    return query.where(*conditions) if conditions else query


async def list_incidents(
    *, session: AsyncSession, filters: IncidentFilters, page: PageParams
) -> Page[Incident]:
    """One page of incidents in id (creation) order."""
    query = _filtered(select(Incident), filters)
    return await paginate(session, query, params=page, keys=[col(Incident.id)])


async def export_batches(
    *, session: AsyncSession, filters: IncidentFilters, size: int
) -> AsyncGenerator[list[Incident], None]:
    """The filtered incidents in id order, `size` at a time, each batch let go of before
    the next is read."""
    query = _filtered(select(Incident), filters).order_by(col(Incident.id)).limit(size)
    after: str | None = None
    while True:
        batch_query = query if after is None else query.where(col(Incident.id) > after)
        batch = list((await session.execute(batch_query)).scalars())
        if batch:
            yield batch
        if len(batch) < size:
            return
        after = batch[-1].id
        session.expunge_all()


async def export_incidents(
    *, sessionmaker: Sessionmaker, filters: IncidentFilters, size: int = 1000
) -> AsyncIterator[Incident]:
    """The filtered incidents in id order on a session of their own (a streamed export
    outlives the request's session)."""
    async with (
        sessionmaker() as session,
        aclosing(export_batches(session=session, filters=filters, size=size)) as batches,
    ):
        async for batch in batches:
            for incident in batch:
                yield incident


async def history_of(*, session: AsyncSession, incident_id: str) -> list[IncidentHistory]:
    """An incident's changes, oldest first."""
    query = (
        select(IncidentHistory)
        .where(col(IncidentHistory.incident_id) == incident_id)
        .order_by(col(IncidentHistory.version), col(IncidentHistory.id))
    )
    return list((await session.execute(query)).scalars())


def status_on(day: date) -> ColumnElement[str]:
    """The status an incident had on `day`: the last status its history records as taking
    effect by then (NULL when it was reported later)."""
    entry = aliased(IncidentHistory)
    return (
        select(col(entry.to_status))
        .where(
            col(entry.incident_id) == col(Incident.id),
            col(entry.to_status).is_not(None),
            col(entry.effective_on) <= day,
        )
        .order_by(col(entry.effective_on).desc(), col(entry.version).desc())
        .limit(1)
        .correlate(Incident)
        .scalar_subquery()
    )


def _counted(
    *, start: date, end: date, county_code: str | None, county_codes: frozenset[str] | None
) -> list[Any]:
    conditions: list[Any] = [col(Incident.occurred_on) >= start, col(Incident.occurred_on) <= end]
    if county_code is not None:
        conditions.append(col(Incident.county_code) == county_code)
    if county_codes is not None:
        conditions.append(col(Incident.county_code).in_(sorted(county_codes)))
    return conditions


async def stats_rows(
    *,
    session: AsyncSession,
    start: date,
    end: date,
    as_of: date,
    county_code: str | None,
    county_codes: frozenset[str] | None,
) -> list[IncidentStatsRow]:
    """Incidents that occurred in [start, end], counted per county, kind, severity and
    their status on `as_of` (one GROUP BY); those reported after `as_of` have none."""
    status = status_on(as_of).label("status")
    counted = (
        select(
            col(Incident.county_code).label("county_code"),
            col(Incident.kind).label("kind"),
            col(Incident.severity).label("severity"),
            status,
        )
        .where(*_counted(start=start, end=end, county_code=county_code, county_codes=county_codes))
        .subquery()
    )
    query = (
        select(
            counted.c.county_code,
            counted.c.kind,
            counted.c.severity,
            counted.c.status,
            func.count().label("incidents"),
        )
        .where(counted.c.status.is_not(None))
        .group_by(counted.c.county_code, counted.c.kind, counted.c.severity, counted.c.status)
    )
    return [
        IncidentStatsRow(
            county_code=row.county_code,
            kind=row.kind,
            severity=row.severity,
            status=row.status,
            count=int(row.incidents),
        )
        for row in await session.execute(query)
    ]


async def incidents_with_status(
    *,
    session: AsyncSession,
    start: date,
    end: date,
    as_of: date,
    statuses: list[str],
    severity: str,
    county_code: str | None,
    county_codes: frozenset[str] | None,
) -> list[tuple[Incident, str]]:
    """The incidents of [start, end] of `severity` whose status on `as_of` is one of
    `statuses`, with that status, by county, day and id."""
    status = status_on(as_of)
    query = (
        select(Incident, status)
        .where(
            *_counted(start=start, end=end, county_code=county_code, county_codes=county_codes),
            col(Incident.severity) == severity,
            status.in_(statuses),
        )
        .order_by(col(Incident.county_code), col(Incident.occurred_on), col(Incident.id))
    )
    return [(incident, str(found)) for incident, found in (await session.execute(query)).all()]


async def notices_of(*, session: AsyncSession, incident_id: str) -> list[OutboxMessage]:
    """Every outbox notice written about one incident, oldest first."""
    query = (
        select(OutboxMessage)
        .where(col(OutboxMessage.spot_check_id) == incident_id)
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    )
    return list((await session.execute(query)).scalars())
