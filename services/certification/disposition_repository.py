"""Every query of the food-processing dispositions. Flushes, never commits: the request owns
the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, Table, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from certification.models import (
    DISPOSITION_ENTERPRISE_CONSTRAINT,
    FoodDisposition,
    FoodDispositionDecision,
    FoodDispositionHistory,
)
from kit.db import violates_unique
from kit.errors import Conflict
from kit.pagination import Page, PageParams, paginate

_disposition_table: Table = FoodDisposition.__table__  # type: ignore[attr-defined]
_decision_table: Table = FoodDispositionDecision.__table__  # type: ignore[attr-defined]
_disposition = _disposition_table.c
_decision = _decision_table.c


@dataclass(frozen=True)
class DispositionQuery:
    """Resolved list filters."""

    county_code: str | None = None
    county_codes: Collection[str] | None = None
    disposition: str | None = None
    enterprise_credit_code: str | None = None
    text: str | None = None


def enterprise_conflict(credit_code: str) -> Conflict:
    """The 409 of a second current disposition for one enterprise."""
    return Conflict(
        f"The enterprise {credit_code} already has a disposition; decide anew with a PATCH.",
        field="enterprise_credit_code",
    )


async def disposition_of_enterprise(*, session: AsyncSession, credit_code: str) -> str | None:
    """The id of the enterprise's disposition, if it has one."""
    statement = select(_disposition.id).where(_disposition.enterprise_credit_code == credit_code)
    return (await session.execute(statement)).scalar_one_or_none()


async def enterprises_with_dispositions(
    *, session: AsyncSession, credit_codes: Collection[str]
) -> set[str]:
    """Which of `credit_codes` already have a disposition."""
    if not credit_codes:
        return set()
    statement = select(_disposition.enterprise_credit_code).where(
        _disposition.enterprise_credit_code.in_(sorted(credit_codes))
    )
    return set((await session.execute(statement)).scalars().all())


async def add_many(
    *,
    session: AsyncSession,
    dispositions: list[FoodDisposition],
    decisions: list[FoodDispositionDecision],
    entries: list[FoodDispositionHistory],
) -> None:
    """Store imported dispositions with their first decisions and history entries; 409 when
    a concurrent request stored one for the same enterprise first."""
    session.add_all(dispositions)
    try:
        await session.flush()
    except IntegrityError as error:
        columns = ["food_disposition.enterprise_credit_code"]
        if not violates_unique(error, DISPOSITION_ENTERPRISE_CONSTRAINT, columns):
            raise
        await session.rollback()
        raise Conflict(
            "An enterprise of the file got a disposition meanwhile; nothing was stored.",
            field="enterprise_credit_code",
        ) from None
    session.add_all([*decisions, *entries])
    await session.flush()


async def add_disposition(
    *,
    session: AsyncSession,
    disposition: FoodDisposition,
    decision: FoodDispositionDecision,
    entry: FoodDispositionHistory,
) -> None:
    """Store a new disposition with its first decision and history entry; 409 when a
    concurrent request stored one for the same enterprise first."""
    session.add(disposition)
    try:
        await session.flush()
    except IntegrityError as error:
        columns = ["food_disposition.enterprise_credit_code"]
        if not violates_unique(error, DISPOSITION_ENTERPRISE_CONSTRAINT, columns):
            raise
        await session.rollback()
        raise enterprise_conflict(disposition.enterprise_credit_code) from None
    session.add_all([decision, entry])
    await session.flush()


async def get_disposition(*, session: AsyncSession, disposition_id: str) -> FoodDisposition | None:
    return await session.get(FoodDisposition, disposition_id)


async def decisions(*, session: AsyncSession, disposition_id: str) -> list[FoodDispositionDecision]:
    """A disposition's decisions, oldest first."""
    statement = (
        select(FoodDispositionDecision)
        .where(col(FoodDispositionDecision.disposition_id) == disposition_id)
        .order_by(col(FoodDispositionDecision.decided_on), col(FoodDispositionDecision.id))
    )
    return list((await session.execute(statement)).scalars().all())


async def save_change(
    *,
    session: AsyncSession,
    entry: FoodDispositionHistory,
    decision: FoodDispositionDecision | None = None,
) -> None:
    """Store a change of a disposition (already applied to it) with its history entry and,
    for a new or corrected decision, that decision."""
    session.add(entry)
    if decision is not None:
        session.add(decision)
    await session.flush()


def _conditions(query: DispositionQuery) -> list[ColumnElement[bool]]:
    c = _disposition
    where: list[ColumnElement[bool]] = []
    if query.county_code:
        where.append(c.county_code == query.county_code)
    if query.county_codes is not None:
        where.append(c.county_code.in_(sorted(query.county_codes)))
    if query.disposition:
        where.append(c.disposition == query.disposition)
    if query.enterprise_credit_code:
        where.append(c.enterprise_credit_code == query.enterprise_credit_code)
    if query.text:
        where.append(
            or_(
                c.enterprise_name.icontains(query.text, autoescape=True),
                c.licence_number.icontains(query.text, autoescape=True),
            )
        )
    return where


def _listing(query: DispositionQuery) -> Select[FoodDisposition]:
    return select(FoodDisposition).where(*_conditions(query))


async def list_dispositions(
    *, session: AsyncSession, query: DispositionQuery, page: PageParams
) -> Page[FoodDisposition]:
    """One page of dispositions, by id."""
    return await paginate(session, _listing(query), params=page, keys=[col(FoodDisposition.id)])


async def stream_dispositions(
    *,
    sessionmaker: Callable[[], AsyncSession],
    query: DispositionQuery,
    batch_size: int = 1000,
) -> AsyncIterator[FoodDisposition]:
    """Every matching disposition, by id, in keyset batches on a session of its own."""
    async with sessionmaker() as session:
        after: str | None = None
        while True:
            statement = _listing(query).order_by(col(FoodDisposition.id)).limit(batch_size)
            if after is not None:
                statement = statement.where(col(FoodDisposition.id) > after)
            rows = list((await session.execute(statement)).scalars().all())
            for row in rows:
                yield row
            if len(rows) < batch_size:
                return
            after = rows[-1].id
            session.expunge_all()


async def history(
    *, session: AsyncSession, disposition_id: str, page: PageParams
) -> Page[FoodDispositionHistory]:
    """One page of a disposition's history, oldest first."""
    statement = select(FoodDispositionHistory).where(
        col(FoodDispositionHistory.disposition_id) == disposition_id
    )
    return await paginate(session, statement, params=page, keys=[col(FoodDispositionHistory.id)])


async def counts_on(
    *,
    session: AsyncSession,
    on: date,
    county_code: str | None,
    county_codes: Collection[str] | None = None,
) -> list[tuple[str, str, int]]:
    """(county, disposition, enterprises) on `on`: each enterprise's latest decision taken by
    then, in its disposition's county; enterprises with no decision by then are not counted."""
    later = _decision_table.alias("later")
    superseded = (
        select(later.c.id)
        .where(
            later.c.disposition_id == _decision.disposition_id,
            later.c.decided_on <= on,
            or_(
                later.c.decided_on > _decision.decided_on,
                (later.c.decided_on == _decision.decided_on) & (later.c.id > _decision.id),
            ),
        )
        .exists()
    )
    statement = (
        select(_disposition.county_code, _decision.disposition, func.count())
        .select_from(
            _decision_table.join(_disposition_table, _disposition.id == _decision.disposition_id)
        )
        .where(_decision.decided_on <= on, ~superseded)
        .group_by(_disposition.county_code, _decision.disposition)
    )
    if county_code:
        statement = statement.where(_disposition.county_code == county_code)
    if county_codes is not None:
        statement = statement.where(_disposition.county_code.in_(sorted(county_codes)))
    return [(row[0], row[1], int(row[2])) for row in (await session.execute(statement)).all()]
