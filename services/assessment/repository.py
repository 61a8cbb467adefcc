"""Every query of the assessment service. Functions flush, never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from assessment.models import (
    AssessmentHistory,
    AssessmentRun,
    EvidenceFile,
    ReferenceValue,
    ReportedValue,
    TargetSet,
)
from kit.pagination import Page, PageParams, paginate

Session = AsyncSession
"""The session the service passes through to these functions."""

PUBLISHED = "published"


async def add(*, session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def end_reads(*, session: AsyncSession) -> None:
    """End the session's transaction, which has only read, so that it holds no connection
    while the request waits on its client; rows read before are read again after."""
    await session.rollback()


async def flush(*, session: AsyncSession) -> None:
    """Write the changes made to loaded rows (their version columns are checked here)."""
    await session.flush()


async def current_target_set(*, session: AsyncSession, year: int) -> TargetSet | None:
    query = (
        select(TargetSet)
        .where(col(TargetSet.year) == year)
        .order_by(col(TargetSet.version).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def target_set_version(*, session: AsyncSession, year: int, version: int) -> TargetSet | None:
    query = select(TargetSet).where(col(TargetSet.year) == year, col(TargetSet.version) == version)
    return (await session.execute(query)).scalar_one_or_none()


async def list_target_sets(
    *, session: AsyncSession, year: int | None, page: PageParams
) -> Page[TargetSet]:
    query = select(TargetSet)
    if year is not None:
        query = query.where(col(TargetSet.year) == year)
    return await paginate(
        session, query, params=page, keys=[col(TargetSet.year), col(TargetSet.version)]
    )


async def latest_versions(*, session: AsyncSession, years: Sequence[int]) -> dict[int, int]:
    query = (
        select(col(TargetSet.year), func.max(col(TargetSet.version)))
        .where(col(TargetSet.year).in_(years))
        .group_by(col(TargetSet.year))
    )
    return {int(year): int(version) for year, version in (await session.execute(query)).all()}


async def frozen_target_set_ids(*, session: AsyncSession, ids: Sequence[str]) -> set[str]:
    """Those of `ids` that a published run used."""
    if not ids:
        return set()
    query = (
        select(col(AssessmentRun.target_set_id))
        .where(col(AssessmentRun.target_set_id).in_(ids), col(AssessmentRun.status) == PUBLISHED)
        .distinct()
    )
    return set((await session.execute(query)).scalars().all())


async def current_reported_value(
    *, session: AsyncSession, county_code: str, year: int, indicator: str
) -> ReportedValue | None:
    query = select(ReportedValue).where(
        col(ReportedValue.county_code) == county_code,
        col(ReportedValue.year) == year,
        col(ReportedValue.indicator) == indicator,
        col(ReportedValue.superseded_by).is_(None),
    )
    return (await session.execute(query)).scalars().first()


async def get_reported_value(*, session: AsyncSession, value_id: str) -> ReportedValue | None:
    return await session.get(ReportedValue, value_id)


async def list_reported_values(
    *,
    session: AsyncSession,
    county_code: str | None,
    year: int | None,
    indicator: str | None,
    current: bool | None,
    page: PageParams,
    county_codes: Collection[str] | None = None,
    state: str | None = None,
) -> Page[ReportedValue]:
    """`county_codes`: only those counties' values (None: every county's)."""
    query = select(ReportedValue)
    if county_code is not None:
        query = query.where(col(ReportedValue.county_code) == county_code)
    if county_codes is not None:
        query = query.where(col(ReportedValue.county_code).in_(sorted(county_codes)))
    if state is not None:
        query = query.where(col(ReportedValue.state) == state)
    if year is not None:
        query = query.where(col(ReportedValue.year) == year)
    if indicator is not None:
        query = query.where(col(ReportedValue.indicator) == indicator)
    if current is True:
        query = query.where(col(ReportedValue.superseded_by).is_(None))
    elif current is False:
        query = query.where(col(ReportedValue.superseded_by).is_not(None))
    return await paginate(session, query, params=page, keys=[col(ReportedValue.id)])


async def reported_value_chain(
    *, session: AsyncSession, county_code: str, year: int, indicator: str
) -> Sequence[ReportedValue]:
    """Every report of one county's indicator in a year, oldest first."""
    query = (
        select(ReportedValue)
        .where(
            col(ReportedValue.county_code) == county_code,
            col(ReportedValue.year) == year,
            col(ReportedValue.indicator) == indicator,
        )
        .order_by(col(ReportedValue.id))
    )
    return (await session.execute(query)).scalars().all()


async def current_reported_values_of_county(
    *, session: AsyncSession, county_code: str, year: int
) -> Sequence[ReportedValue]:
    """A county's current (not superseded) reports of a year."""
    query = (
        select(ReportedValue)
        .where(
            col(ReportedValue.county_code) == county_code,
            col(ReportedValue.year) == year,
            col(ReportedValue.superseded_by).is_(None),
        )
        .order_by(col(ReportedValue.id))
    )
    return (await session.execute(query)).scalars().all()


async def history_of(
    *, session: AsyncSession, entity: str, entity_id: str
) -> Sequence[AssessmentHistory]:
    query = (
        select(AssessmentHistory)
        .where(
            col(AssessmentHistory.entity) == entity, col(AssessmentHistory.entity_id) == entity_id
        )
        .order_by(col(AssessmentHistory.id))
    )
    return (await session.execute(query)).scalars().all()


async def list_evidence(
    *, session: AsyncSession, reported_value_id: str, page: PageParams
) -> Page[EvidenceFile]:
    query = select(EvidenceFile).where(col(EvidenceFile.reported_value_id) == reported_value_id)
    return await paginate(session, query, params=page, keys=[col(EvidenceFile.id)])


async def count_evidence(*, session: AsyncSession, reported_value_id: str) -> int:
    query = select(func.count()).where(col(EvidenceFile.reported_value_id) == reported_value_id)
    return int((await session.execute(query)).scalar_one())


async def get_evidence(
    *, session: AsyncSession, reported_value_id: str, evidence_id: str
) -> EvidenceFile | None:
    row = await session.get(EvidenceFile, evidence_id)
    return row if row is not None and row.reported_value_id == reported_value_id else None


async def reported_values_as_of(
    *, session: AsyncSession, year: int, as_of: date
) -> Sequence[ReportedValue]:
    """The year's reports describing a date on or before `as_of`, oldest record first."""
    query = (
        select(ReportedValue)
        .where(col(ReportedValue.year) == year, col(ReportedValue.measured_on) <= as_of)
        .order_by(col(ReportedValue.id))
    )
    return (await session.execute(query)).scalars().all()


async def get_reference_value(
    *, session: AsyncSession, year: int, key: str
) -> ReferenceValue | None:
    query = select(ReferenceValue).where(
        col(ReferenceValue.year) == year, col(ReferenceValue.key) == key
    )
    return (await session.execute(query)).scalar_one_or_none()


async def reference_values_of_year(*, session: AsyncSession, year: int) -> Sequence[ReferenceValue]:
    """Every reference value recorded for `year`."""
    query = (
        select(ReferenceValue)
        .where(col(ReferenceValue.year) == year)
        .order_by(col(ReferenceValue.id))
    )
    return (await session.execute(query)).scalars().all()


async def list_reference_values(
    *, session: AsyncSession, year: int | None, key: str | None, page: PageParams
) -> Page[ReferenceValue]:
    query = select(ReferenceValue)
    if year is not None:
        query = query.where(col(ReferenceValue.year) == year)
    if key is not None:
        query = query.where(col(ReferenceValue.key) == key)
    return await paginate(session, query, params=page, keys=[col(ReferenceValue.id)])


async def get_run(*, session: AsyncSession, year: int, run_id: str) -> AssessmentRun | None:
    run = await session.get(AssessmentRun, run_id)
    return run if run is not None and run.year == year else None


async def current_published_run(*, session: AsyncSession, year: int) -> AssessmentRun | None:
    """The year's published run that no later publication superseded."""
    query = select(AssessmentRun).where(
        col(AssessmentRun.year) == year,
        col(AssessmentRun.status) == PUBLISHED,
        col(AssessmentRun.superseded_by).is_(None),
    )
    return (await session.execute(query)).scalars().first()


async def list_runs(
    *, session: AsyncSession, year: int, status: str | None, page: PageParams
) -> Page[AssessmentRun]:
    query = select(AssessmentRun).where(col(AssessmentRun.year) == year)
    if status is not None:
        query = query.where(col(AssessmentRun.status) == status)
    return await paginate(session, query, params=page, keys=[col(AssessmentRun.id)])


async def list_history(
    *,
    session: AsyncSession,
    entity: str | None,
    entity_id: str | None,
    year: int | None,
    page: PageParams,
    county_codes: Collection[str] | None = None,
) -> Page[AssessmentHistory]:
    """`county_codes`: reported values' entries of those counties only (None: all)."""
    query = select(AssessmentHistory)
    if county_codes is not None:
        # A reported value's entries are named `<year>/<county>/<indicator>`; the other
        # entities (target sets, reference values, runs) are the city's.
        query = query.where(
            or_(
                col(AssessmentHistory.entity) != "reported_value",
                func.substr(col(AssessmentHistory.entity_id), 6, 6).in_(sorted(county_codes)),
            )
        )
    if entity is not None:
        query = query.where(col(AssessmentHistory.entity) == entity)
    if entity_id is not None:
        query = query.where(col(AssessmentHistory.entity_id) == entity_id)
    if year is not None:
        query = query.where(col(AssessmentHistory.year) == year)
    return await paginate(session, query, params=page, keys=[col(AssessmentHistory.id)])
