"""Every query of the inspection service; functions flush, the request commits."""

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable, Sequence
from datetime import date
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import col

from inspection.models import (
    EQUIPMENT_DAY_INDEX,
    REINSPECTION_CONSTRAINT,
    SAMPLE_INDEX,
    OutboxMessage,
    SpotCheck,
    SpotCheckHistory,
    metadata,
)
from inspection.schemas import (
    CountRow,
    FailureWindow,
    FindingRow,
    ItemRow,
    SpotCheckFilters,
    StatsRow,
)
from kit.db import (
    LIKE_ESCAPE,
    escape_like,
    fetch_rows,
    insert_rows,
    present_keys,
    violates_unique,
)
from kit.errors import Conflict
from kit.pagination import Page, PageParams, paginate


async def get_spot_check(*, session: AsyncSession, spot_check_id: str) -> SpotCheck | None:
    """The spot-check with this id, or None."""
    return await session.get(SpotCheck, spot_check_id)


SpotCheckRow = Row[Any]
"""A spot-check read for an answer: its columns as attributes."""
_spot_check_table = metadata.tables["spot_check"]
_ROW_BY_ID = select(*_spot_check_table.c).where(_spot_check_table.c.id == bindparam("id"))


async def spot_check_row(*, engine: AsyncEngine, spot_check_id: str) -> SpotCheckRow | None:
    """The spot-check with this id as a row of its columns (what its GET answers from: no
    ORM object), or None."""
    rows = await fetch_rows(engine, _ROW_BY_ID, {"id": spot_check_id})
    return rows[0] if rows else None


async def find_original(
    *, session: AsyncSession, plan_code: str, sample_code: str
) -> SpotCheck | None:
    """The original (not a re-inspection) check of a sample in a plan."""
    query = select(SpotCheck).where(
        col(SpotCheck.plan_code) == plan_code,
        col(SpotCheck.sample_code) == sample_code,
        col(SpotCheck.reinspection_of).is_(None),
    )
    return (await session.execute(query)).scalars().first()


async def find_inspection(
    *, session: AsyncSession, equipment_code: str, sampled_on: date
) -> SpotCheck | None:
    """The inspection of an item of special equipment on a day."""
    query = select(SpotCheck).where(
        col(SpotCheck.equipment_code) == equipment_code,
        col(SpotCheck.sampled_on) == sampled_on,
        col(SpotCheck.reinspection_of).is_(None),
    )
    return (await session.execute(query)).scalars().first()


def inspection_conflict(equipment_code: str, sampled_on: date, existing_id: str) -> Conflict:
    """The 409 of a second inspection of an item on one day."""
    return Conflict(
        f"Equipment {equipment_code!r} already has an inspection on {sampled_on}.",
        field="equipment_code",
        existing_id=existing_id,
    )


async def find_reinspection(*, session: AsyncSession, spot_check_id: str) -> SpotCheck | None:
    """The re-inspection of a check, if one was recorded."""
    query = select(SpotCheck).where(col(SpotCheck.reinspection_of) == spot_check_id)
    return (await session.execute(query)).scalars().first()


async def chain_of(*, session: AsyncSession, root_id: str) -> list[SpotCheck]:
    """Every check of one re-inspection chain, in chain order from the original."""
    query = select(SpotCheck).where(col(SpotCheck.root_id) == root_id)
    members = list((await session.execute(query)).scalars())
    by_parent = {member.reinspection_of: member for member in members}
    ordered = [member for member in members if member.id == root_id]
    while ordered and (child := by_parent.get(ordered[-1].id)) is not None:
        ordered.append(child)
    return ordered


Written = tuple[str, str | None, str | None, str | None, date]
"""What the unique rules look at in a written check: plan, sample, the check it re-inspects,
equipment code and day."""


def sample_conflict(plan_code: str, sample_code: str, existing_id: str) -> Conflict:
    """The 409 of a sample code already recorded in its plan."""
    return Conflict(
        f"Sample {sample_code!r} is already recorded in plan {plan_code!r}.",
        field="sample_code",
        existing_id=existing_id,
    )


def reinspected_conflict(reinspected_by: str) -> Conflict:
    """The 409 of a re-inspection of a check already re-inspected."""
    return Conflict(
        "This check was already re-inspected; re-inspect the latest check of the chain.",
        field="reinspection_of",
        reinspected_by=reinspected_by,
    )


async def _refusing_duplicates(
    session: AsyncSession, write: Callable[[], Awaitable[Any]], written: Sequence[Written]
) -> None:
    """Run `write`; when a unique rule refuses it (a concurrent request recorded the same
    sample of the plan, re-inspected the same check, or inspected the same item that day,
    first), roll the request back and answer the 409 a sequential duplicate gets, naming the
    check stored first."""
    try:
        await write()
    except IntegrityError as error:
        conflict = None
        if violates_unique(error, SAMPLE_INDEX, ["spot_check.plan_code", "spot_check.sample_code"]):
            await session.rollback()
            conflict = await _sample_conflict(session, written)
        elif violates_unique(error, REINSPECTION_CONSTRAINT, ["spot_check.reinspection_of"]):
            await session.rollback()
            conflict = await _reinspected_conflict(session, written)
        elif violates_unique(
            error, EQUIPMENT_DAY_INDEX, ["spot_check.equipment_code", "spot_check.sampled_on"]
        ):
            await session.rollback()
            conflict = await _inspection_conflict(session, written)
        if conflict is None:
            raise
        raise conflict from None


async def _sample_conflict(session: AsyncSession, written: Sequence[Written]) -> Conflict | None:
    for plan_code, sample_code, reinspection_of, _, _ in written:
        if reinspection_of is None and sample_code is not None:
            found = await find_original(
                session=session, plan_code=plan_code, sample_code=sample_code
            )
            if found is not None:
                return sample_conflict(plan_code, sample_code, found.id)
    return None


async def _reinspected_conflict(
    session: AsyncSession, written: Sequence[Written]
) -> Conflict | None:
    for _, _, reinspection_of, _, _ in written:
        if reinspection_of is not None:
            found = await find_reinspection(session=session, spot_check_id=reinspection_of)
            if found is not None:
                return reinspected_conflict(found.id)
    return None


async def _inspection_conflict(
    session: AsyncSession, written: Sequence[Written]
) -> Conflict | None:
    for _, _, _, equipment_code, sampled_on in written:
        if equipment_code is not None:
            found = await find_inspection(
                session=session, equipment_code=equipment_code, sampled_on=sampled_on
            )
            if found is not None:
                return inspection_conflict(equipment_code, sampled_on, found.id)
    return None


def _pending_checks(session: AsyncSession) -> list[Written]:
    return [
        (o.plan_code, o.sample_code, o.reinspection_of, o.equipment_code, o.sampled_on)
        for o in [*session.new, *session.dirty]
        if isinstance(o, SpotCheck)
    ]


async def add(*, session: AsyncSession, rows: Iterable[Any]) -> None:
    """Stage new rows and flush them; 409 when a concurrent request took the sample or the
    re-inspection first."""
    session.add_all(list(rows))
    await flush(session=session)


async def flush(*, session: AsyncSession) -> None:
    """Write the staged changes; 409 when a concurrent request took the sample or the
    re-inspection first."""
    await _refusing_duplicates(session, session.flush, _pending_checks(session))


async def set_chain_outcome(
    *, session: AsyncSession, root: SpotCheck, final_result: str, overturned_on: date | None
) -> None:
    """Write a chain's outcome on its original without a new version of the original."""
    await session.execute(
        update(SpotCheck)
        .where(col(SpotCheck.id) == root.id)
        .values(final_result=final_result, overturned_on=overturned_on)
        .execution_options(synchronize_session="evaluate")
    )


def _visible(today: date | BindParameter[date]) -> Any:
    """Published by `today` (a date, or a parameter bound to one)."""
    return and_(col(SpotCheck.published_on).is_not(None), col(SpotCheck.published_on) <= today)


def _counted_originals(
    check: Any,
    *,
    programme: str,
    start: date,
    end: date,
    levels: Sequence[str],
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> tuple[Any, list[Any]]:
    """Whether an original (`check`: the table or an alias) passed, as the stats' reader may
    know it, and the conditions that pick the originals the stats count."""
    passed = col(check.final_result) == "pass" if include_unpublished else public_pass(check, today)
    conditions = [
        col(check.programme) == programme,
        col(check.reinspection_of).is_(None),
        col(check.sampled_on) >= start,
        col(check.sampled_on) <= end,
        col(check.level).in_(list(levels)),
    ]
    if county_code is not None:
        conditions.append(col(check.county_code) == county_code)
    if not include_unpublished:
        conditions.append(col(check.published_on) <= today)
    return passed, conditions


def public_pass(check: Any, today: date) -> Any:
    """Whether an original passed as the public knows it on `today`: an overturning
    re-inspection counts from its own bulletin day on (`service.public_final_result`)."""
    return or_(col(check.result) == "pass", col(check.overturned_on) <= today)


_SEARCHED = (
    "plan_code",
    "product_name",
    "enterprise_name",
    "sample_code",
    "report_number",
    "testing_lab",
)


def _filter_values(filters: SpotCheckFilters, today: date) -> dict[str, Any]:
    """The values of the filters given, by name: what a kept statement (`_kept_filters`)
    binds."""
    values: dict[str, Any] = {
        "programmes": sorted(filters.programmes) if filters.programmes is not None else None,
        "equipment_code": filters.equipment_code,
        "plan_code": filters.plan_code,
        "level": filters.level.value if filters.level is not None else None,
        "county_code": filters.county_code,
        "county_codes": sorted(filters.county_codes) if filters.county_codes is not None else None,
        "product_category": filters.product_category,
        "result": filters.result.value if filters.result is not None else None,
        "sampled_from": filters.sampled_from,
        "sampled_to": filters.sampled_to,
        "enterprise_credit_code": filters.enterprise_credit_code,
        "prefix": escape_like(filters.enterprise_credit_code_prefix) + "%"
        if filters.enterprise_credit_code_prefix is not None
        else None,
        "q": f"%{escape_like(filters.q.lower())}%" if filters.q else None,
        "today": None if filters.include_unpublished else today,
    }
    return {name: value for name, value in values.items() if value is not None}


@functools.cache
def _kept_filters(given: frozenset[str]) -> tuple[ColumnElement[bool], ...]:
    """The conditions of the filters named in `given`, their values bound by name, built
    once for each combination of filters."""
    c = _spot_check_table.c
    conditions: list[ColumnElement[bool]] = []
    if "programmes" in given:
        conditions.append(c.programme.in_(bindparam("programmes", expanding=True)))
    for name in ("equipment_code", "plan_code", "level", "county_code", "product_category"):
        if name in given:
            conditions.append(c[name] == bindparam(name))
    if "county_codes" in given:
        conditions.append(c.county_code.in_(bindparam("county_codes", expanding=True)))
    if "result" in given:
        conditions.append(c.result == bindparam("result"))
    if "sampled_from" in given:
        conditions.append(c.sampled_on >= bindparam("sampled_from"))
    if "sampled_to" in given:
        conditions.append(c.sampled_on <= bindparam("sampled_to"))
    if "enterprise_credit_code" in given:
        conditions.append(c.enterprise_credit_code == bindparam("enterprise_credit_code"))
    if "prefix" in given:
        conditions.append(c.enterprise_credit_code.like(bindparam("prefix"), escape=LIKE_ESCAPE))
    if "q" in given:
        pattern: BindParameter[str] = bindparam("q")
        conditions.append(
            or_(*(func.lower(c[name]).like(pattern, escape=LIKE_ESCAPE) for name in _SEARCHED))
        )
    if "today" in given:
        conditions.append(_visible(bindparam("today")))
    return tuple(conditions)


def _filtered(query: Select[Any], filters: SpotCheckFilters, today: date) -> Select[Any]:
    """`query` with the filters' conditions, their values written in."""
    values = _filter_values(filters, today)
    conditions = _kept_filters(frozenset(values))
    return query.where(*conditions).params(values) if conditions else query


@functools.cache
def _kept_listing(given: frozenset[str]) -> Select[Any]:
    """The list's statement for one combination of filters, kept so that each page reuses
    its compiled form (`kit.pagination.paginate` on the engine)."""
    return select(*_spot_check_table.c).where(*_kept_filters(given))


async def bulletin_checks(
    *,
    session: AsyncSession,
    plan_code: str,
    level: str,
    today: date,
    county_codes: Collection[str] | None,
    programmes: Collection[str] | None = None,
) -> list[SpotCheck]:
    """The checks of one plan and level (and programmes) whose bulletin day has come, as a
    bulletin lists them: by county, then enterprise, then sample."""
    query = select(SpotCheck).where(
        col(SpotCheck.plan_code) == plan_code, col(SpotCheck.level) == level, _visible(today)
    )
    if programmes is not None:
        query = query.where(col(SpotCheck.programme).in_(sorted(programmes)))
    if county_codes is not None:
        query = query.where(col(SpotCheck.county_code).in_(sorted(county_codes)))
    query = query.order_by(
        col(SpotCheck.county_code), col(SpotCheck.enterprise_name), col(SpotCheck.sample_code)
    )
    return list((await session.execute(query)).scalars())


async def list_spot_checks(
    *, engine: AsyncEngine, filters: SpotCheckFilters, today: date, page: PageParams
) -> Page[Any]:
    """One page of spot-checks in id (creation) order, as rows: a list answers from them
    without building an ORM object per check."""
    values = _filter_values(filters, today)
    statement = _kept_listing(frozenset(values))
    return await paginate(
        engine, statement, params=page, keys=[_spot_check_table.c.id], values=values, rows=True
    )


async def history_of(*, session: AsyncSession, spot_check_id: str) -> list[SpotCheckHistory]:
    """A spot-check's changes, oldest first."""
    query = (
        select(SpotCheckHistory)
        .where(col(SpotCheckHistory.spot_check_id) == spot_check_id)
        .order_by(col(SpotCheckHistory.version), col(SpotCheckHistory.id))
    )
    return list((await session.execute(query)).scalars())


async def stats_rows(
    *,
    session: AsyncSession,
    programme: str,
    start: date,
    end: date,
    levels: Sequence[str],
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> list[StatsRow]:
    """Originals sampled in [start, end], counted with their final result per county, level
    and category (one GROUP BY). Public figures count a result from its bulletin day on, and
    an overturning re-inspection from its own bulletin day on."""
    passed, conditions = _counted_originals(
        SpotCheck,
        programme=programme,
        start=start,
        end=end,
        levels=levels,
        county_code=county_code,
        include_unpublished=include_unpublished,
        today=today,
    )
    query = (
        select(
            col(SpotCheck.county_code),
            col(SpotCheck.level),
            col(SpotCheck.product_category),
            func.count().label("checked"),
            func.sum(case((passed, 1), else_=0)).label("passed"),
        )
        .where(*conditions)
        .group_by(col(SpotCheck.county_code), col(SpotCheck.level), col(SpotCheck.product_category))
    )
    result = await session.execute(query)
    return [
        StatsRow(
            county_code=row.county_code,
            level=row.level,
            product_category=row.product_category or "",
            checked=int(row.checked),
            passed=int(row.passed or 0),
        )
        for row in result
    ]


async def finding_rows(
    *,
    session: AsyncSession,
    programme: str,
    start: date,
    end: date,
    levels: Sequence[str],
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> list[FindingRow]:
    """The checks carrying a finding (refusal, mandatory-standard violation, referral for
    unlicensed production) in the chains whose original the stats count, with the chain's
    final result as the same view sees it.

    Two parts, each read by a partial index of the few checks concerned: the originals
    carrying a finding, by date, and the re-inspections carrying one, by chain. One join of
    every finding in the table to the year's originals read all of them: 348 ms for a year of
    100,000 checks among a million (`bench/inspection_bench.py`, 2026-12-02)."""
    root = aliased(SpotCheck)
    chain_passed, conditions = _counted_originals(
        root,
        programme=programme,
        start=start,
        end=end,
        levels=levels,
        county_code=county_code,
        include_unpublished=include_unpublished,
        today=today,
    )
    result_seen = case((chain_passed, True), else_=False).label("chain_passed")
    originals: Select[*tuple[Any, ...]] = select(
        *(col(getattr(root, name)).label(name) for name in _FINDING_COLUMNS), result_seen
    ).where(*conditions, has_finding(root))
    reinspections: Select[*tuple[Any, ...]] = (
        select(
            *(col(getattr(SpotCheck, name)).label(name) for name in _FINDING_COLUMNS),
            result_seen,
        )
        .join(root, col(root.id) == col(SpotCheck.root_id))
        .where(*conditions, col(SpotCheck.reinspection_of).is_not(None), has_finding(SpotCheck))
    )
    if not include_unpublished:
        reinspections = reinspections.where(col(SpotCheck.published_on) <= today)
    both = union_all(originals, reinspections).subquery()
    query = select(both).order_by(both.c.root_id, both.c.sampled_on, both.c.id)
    return [FindingRow._make(row) for row in (await session.execute(query)).all()]


def has_finding(check: Any) -> Any:
    """Whether a check (the table or an alias) records a refusal, a mandatory-standard
    violation or a referral for unlicensed production (`models.ORIGINAL_FINDINGS` and
    `models.REINSPECTION_FINDINGS` index the checks that do)."""
    # The bare columns, not `IS TRUE`: only then can the planner match the partial indexes.
    return or_(
        col(check.refused), col(check.mandatory_standard_violation), col(check.unlicensed_referral)
    )


_FINDING_COLUMNS = FindingRow._fields[:-1]
"""The columns of a finding: `FindingRow`'s fields but the last, the chain's result."""


async def count_rows(
    *,
    session: AsyncSession,
    programme: str,
    kind: Literal["metrology_subject", "equipment_kind"],
    start: date,
    end: date,
    levels: Sequence[str],
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> list[CountRow]:
    """A programme's records sampled in [start, end] per county, level and `kind`: how many,
    how many failed as the reader may know it, and the instruments they checked and found
    nonconforming (one GROUP BY on the stats index)."""
    passed, conditions = _counted_originals(
        SpotCheck,
        programme=programme,
        start=start,
        end=end,
        levels=levels,
        county_code=county_code,
        include_unpublished=include_unpublished,
        today=today,
    )
    kind_column: Any = col(getattr(SpotCheck, kind))
    query = (
        select(
            col(SpotCheck.county_code),
            col(SpotCheck.level),
            kind_column.label("kind"),
            func.count().label("records"),
            func.sum(case((passed, 0), else_=1)).label("failed"),
            func.coalesce(func.sum(col(SpotCheck.instruments_checked)), 0).label("instruments"),
            func.coalesce(func.sum(col(SpotCheck.instruments_nonconforming)), 0).label("bad"),
        )
        .where(*conditions)
        .group_by(col(SpotCheck.county_code), col(SpotCheck.level), kind_column)
    )
    return [
        CountRow(
            county_code=row.county_code,
            level=row.level,
            kind=row.kind,
            records=int(row.records),
            failed=int(row.failed or 0),
            instruments_checked=int(row.instruments),
            instruments_nonconforming=int(row.bad),
        )
        for row in (await session.execute(query)).all()
    ]


def _latest_inspections(
    *, programme: str, as_of: date, include_unpublished: bool, today: date
) -> Any:
    """Each equipment code's latest inspection sampled by `as_of` (published by `today`
    unless `include_unpublished`), as a subquery."""
    conditions: list[Any] = [
        col(SpotCheck.equipment_code).is_not(None),
        col(SpotCheck.programme) == programme,
        col(SpotCheck.reinspection_of).is_(None),
        col(SpotCheck.sampled_on) <= as_of,
    ]
    if not include_unpublished:
        conditions.append(_visible(today))
    # The latest inspection is the one no later inspection follows; ordered as the
    # equipment index is, so the window reads the index without a sort.
    following = (
        func.lead(col(SpotCheck.id))
        .over(
            partition_by=col(SpotCheck.equipment_code),
            order_by=(col(SpotCheck.sampled_on), col(SpotCheck.id)),
        )
        .label("following")
    )
    return (
        select(
            col(SpotCheck.equipment_code),
            col(SpotCheck.county_code),
            col(SpotCheck.equipment_kind),
            col(SpotCheck.next_due_on),
            col(SpotCheck.major_hazard_source),
            col(SpotCheck.id),
            col(SpotCheck.sampled_on),
            col(SpotCheck.enterprise_credit_code),
            col(SpotCheck.enterprise_name),
            following,
        )
        .where(*conditions)
        .subquery("latest")
    )


async def item_rows(
    *,
    session: AsyncSession,
    programme: str,
    as_of: date,
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> list[ItemRow]:
    """Per county, kind, whether overdue on `as_of` and whether a major hazard source: the
    number of items (distinct equipment codes) as their latest inspection by `as_of` records
    them (one GROUP BY over a window on the equipment index)."""
    latest = _latest_inspections(
        programme=programme, as_of=as_of, include_unpublished=include_unpublished, today=today
    )
    overdue = case((latest.c.next_due_on < as_of, True), else_=False)
    hazard = case((latest.c.major_hazard_source.is_(True), True), else_=False)
    query = (
        select(
            latest.c.county_code,
            latest.c.equipment_kind,
            overdue.label("overdue"),
            hazard.label("hazard"),
            func.count().label("items"),
        )
        .where(latest.c.following.is_(None))
        .group_by(latest.c.county_code, latest.c.equipment_kind, overdue, hazard)
    )
    if county_code is not None:
        query = query.where(latest.c.county_code == county_code)
    return [
        ItemRow(
            county_code=row.county_code,
            equipment_kind=row.equipment_kind,
            overdue=bool(row.overdue),
            major_hazard_source=bool(row.hazard),
            items=int(row.items),
        )
        for row in await session.execute(query)
    ]


async def overdue_codes(
    *,
    session: AsyncSession,
    programme: str,
    as_of: date,
    county_code: str | None,
    include_unpublished: bool,
    today: date,
) -> list[tuple[str, str]]:
    """(county, equipment code) of each item overdue on `as_of`, by county and code."""
    latest = _latest_inspections(
        programme=programme, as_of=as_of, include_unpublished=include_unpublished, today=today
    )
    query = (
        select(latest.c.county_code, latest.c.equipment_code)
        .where(latest.c.following.is_(None), latest.c.next_due_on < as_of)
        .order_by(latest.c.county_code, latest.c.equipment_code)
    )
    if county_code is not None:
        query = query.where(latest.c.county_code == county_code)
    return [(row.county_code, row.equipment_code) for row in await session.execute(query)]


_SPOT_CHECK = cast(Table, SpotCheck.__table__).c  # type: ignore[attr-defined]


async def existing_originals(
    *, session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (plan_code, sample_code) pairs already have an original check."""
    found = await present_keys(
        session,
        [_SPOT_CHECK.plan_code, _SPOT_CHECK.sample_code],
        [key for key in keys if key[1] is not None],
        _SPOT_CHECK.reinspection_of.is_(None),
    )
    return {(str(plan), str(sample)) for plan, sample in found}


async def existing_inspections(
    *, session: AsyncSession, keys: Sequence[tuple[str, date]]
) -> set[tuple[str, date]]:
    """Which (equipment_code, sampled_on) pairs already have an inspection."""
    found = await present_keys(
        session,
        [_SPOT_CHECK.equipment_code, _SPOT_CHECK.sampled_on],
        list(keys),
        _SPOT_CHECK.reinspection_of.is_(None),
    )
    return {(str(equipment), day) for equipment, day in found}


async def existing_ids(*, session: AsyncSession, ids: Sequence[str]) -> set[str]:
    """Which of these spot-check ids are taken."""
    if not ids:
        return set()
    query = select(col(SpotCheck.id)).where(col(SpotCheck.id).in_(list(ids)))
    return set((await session.execute(query)).scalars())


async def insert_many(
    *,
    session: AsyncSession,
    spot_checks: list[dict[str, Any]],
    history: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
) -> None:
    """Bulk-insert imported rows with their history and outbox entries; 409 when a
    concurrent request recorded one of their samples first."""
    if spot_checks:

        async def write() -> None:
            await insert_rows(session, metadata.tables["spot_check"], spot_checks)

        written = [
            (
                r["plan_code"],
                r["sample_code"],
                r.get("reinspection_of"),
                r["equipment_code"],
                r["sampled_on"],
            )
            for r in spot_checks
        ]
        await _refusing_duplicates(session, write, written)
    # Core rows, not ORM objects: the ORM's bulk path costs more than the rows' validation.
    await insert_rows(session, metadata.tables["spot_check_history"], history)
    await insert_rows(session, metadata.tables["outbox_message"], outbox)


async def export_batches(
    *, session: AsyncSession, filters: SpotCheckFilters, today: date, size: int
) -> AsyncGenerator[list[SpotCheck], None]:
    """The filtered spot-checks in id order, `size` at a time; each batch is let go of
    before the next is read, so a long export holds one batch in memory."""
    query = _filtered(select(SpotCheck), filters, today).order_by(col(SpotCheck.id)).limit(size)
    after: str | None = None
    while True:
        batch_query = query if after is None else query.where(col(SpotCheck.id) > after)
        batch = list((await session.execute(batch_query)).scalars())
        if batch:
            yield batch
        if len(batch) < size:
            return
        after = batch[-1].id
        session.expunge_all()


async def notices_of(*, session: AsyncSession, spot_check_id: str) -> list[OutboxMessage]:
    """Every notice written about one original check, oldest first."""
    query = (
        select(OutboxMessage)
        .where(col(OutboxMessage.spot_check_id) == spot_check_id)
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    )
    return list((await session.execute(query)).scalars())


def _failure_conditions(window: FailureWindow, today: date) -> list[Any]:
    """Originals sampled in the window whose failure stands as the reader may know it: the
    final result after every re-inspection (`include_unpublished`), else the published
    result until an overturning re-inspection's own bulletin day (`public_pass`)."""
    conditions: list[Any] = [
        col(SpotCheck.reinspection_of).is_(None),
        col(SpotCheck.sampled_on) >= window.start,
        col(SpotCheck.sampled_on) <= window.end,
    ]
    if window.include_unpublished:
        conditions.append(col(SpotCheck.final_result) == "fail")
    else:
        conditions += [
            _visible(today),
            col(SpotCheck.result) == "fail",
            or_(col(SpotCheck.overturned_on).is_(None), col(SpotCheck.overturned_on) > today),
        ]
    if window.county_code is not None:
        conditions.append(col(SpotCheck.county_code) == window.county_code)
    if window.county_codes is not None:
        conditions.append(col(SpotCheck.county_code).in_(sorted(window.county_codes)))
    return conditions


def _repeated_failures(window: FailureWindow, today: date) -> Select[str, int]:
    credit_code = col(SpotCheck.enterprise_credit_code)
    return (
        select(credit_code, func.count().label("failures"))
        .where(*_failure_conditions(window, today))
        .group_by(credit_code)
        .having(func.count() >= window.min_failures)
    )


async def repeated_failures(
    *, session: AsyncSession, window: FailureWindow, today: date, page: PageParams
) -> Page[Any]:
    """One page of the enterprises with at least `window.min_failures` failures, by credit
    code, as mappings of `enterprise_credit_code` and `failures`."""
    return await paginate(
        session,
        _repeated_failures(window, today),
        params=page,
        keys=[col(SpotCheck.enterprise_credit_code)],
        mappings=True,
    )


async def all_repeated_failures(
    *, session: AsyncSession, window: FailureWindow, today: date
) -> list[str]:
    """The credit code of every enterprise with at least `window.min_failures` failures."""
    query = _repeated_failures(window, today).order_by(col(SpotCheck.enterprise_credit_code))
    return [row.enterprise_credit_code for row in await session.execute(query)]


async def failed_checks(
    *, session: AsyncSession, window: FailureWindow, today: date, credit_codes: Sequence[str]
) -> list[SpotCheck]:
    """The failures `window` counts of these enterprises, by enterprise and sampling day."""
    if not credit_codes:
        return []
    query = (
        select(SpotCheck)
        .where(
            *_failure_conditions(window, today),
            col(SpotCheck.enterprise_credit_code).in_(list(credit_codes)),
        )
        .order_by(
            col(SpotCheck.enterprise_credit_code), col(SpotCheck.sampled_on), col(SpotCheck.id)
        )
    )
    return list((await session.execute(query)).scalars())


def _overdue_equipment(
    *,
    as_of: date,
    county_code: str | None,
    counties: Collection[str] | None,
    include_unpublished: bool,
    today: date,
) -> Any:
    """The special-equipment items overdue on `as_of`: each item's latest inspection by then,
    whose next due day is before `as_of`."""
    latest = _latest_inspections(
        programme="special_equipment",
        as_of=as_of,
        include_unpublished=include_unpublished,
        today=today,
    )
    query = select(
        latest.c.equipment_code,
        latest.c.equipment_kind,
        latest.c.county_code,
        latest.c.id,
        latest.c.sampled_on,
        latest.c.next_due_on,
        latest.c.major_hazard_source,
        latest.c.enterprise_credit_code,
        latest.c.enterprise_name,
    ).where(latest.c.following.is_(None), latest.c.next_due_on < as_of)
    if county_code is not None:
        query = query.where(latest.c.county_code == county_code)
    if counties is not None:
        query = query.where(latest.c.county_code.in_(sorted(counties)))
    return query


async def overdue_equipment(
    *,
    session: AsyncSession,
    as_of: date,
    county_code: str | None,
    counties: Collection[str] | None,
    include_unpublished: bool,
    today: date,
    page: PageParams,
) -> Page[Any]:
    """One page, by equipment code, of the items overdue on `as_of`."""
    query = _overdue_equipment(
        as_of=as_of,
        county_code=county_code,
        counties=counties,
        include_unpublished=include_unpublished,
        today=today,
    )
    return await paginate(
        session, query, params=page, keys=[query.selected_columns.equipment_code], mappings=True
    )


async def all_overdue_equipment(*, session: AsyncSession, as_of: date, today: date) -> list[Any]:
    """Every item overdue on `as_of` as the public knows its inspections, by equipment code
    (the alert sweep's)."""
    query = _overdue_equipment(
        as_of=as_of, county_code=None, counties=None, include_unpublished=False, today=today
    )
    query = query.order_by(query.selected_columns.equipment_code)
    return list((await session.execute(query)).mappings())
