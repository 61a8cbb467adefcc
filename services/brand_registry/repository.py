"""Every query of the brand registry. Functions flush, never commit: the request owns the
transaction.

The status of a listing on a date D is computed from dated facts, the same way for lists,
exports and statistics:
revoked if `revoked_on <= D`; otherwise expired if `valid_until < D` (a listing without
`valid_until` never expires) or a renewal replaced it
on or before D (`superseded_on <= D`); otherwise suspended if a suspension period covers D;
otherwise active.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    Row,
    RowMapping,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from brand_registry.models import (
    AWARD_INDEX,
    LISTING_AWARD_INDEX,
    Award,
    AwardHistory,
    Brand,
    BrandHistory,
    BrandSuspension,
    CounterfeitNotice,
    ReviewFlag,
    metadata,
)
from brand_registry.schemas import AwardFilters, ListingFilters
from kit.db import LIKE_ESCAPE, escape_like, fetch_rows, insert_rows, violates_unique
from kit.errors import Conflict, FieldError
from kit.pagination import Page, PageParams, paginate

brand_table = metadata.tables[Brand.__tablename__]
history_table = metadata.tables[BrandHistory.__tablename__]
suspension_table = metadata.tables[BrandSuspension.__tablename__]
b = brand_table.c
s = suspension_table.c

Day = date | BindParameter[date]

LISTING_COLUMNS = (
    b.id,
    b.product_name,
    b.brand_name,
    b.enterprise_credit_code,
    b.enterprise_name,
    b.county_code,
    b.tier,
    b.sector,
    b.award_kind,
    b.awarded_on,
    b.valid_until,
    b.international_standard,
    b.standard_code,
    b.batch_code,
    b.status,
    b.revoked_on,
    b.renewal_of,
    b.superseded_on,
    b.review_required,
    b.review_reason,
    b.protected_name,
    b.protected_area,
    b.approval_authority,
    b.notice_number,
    b.counterfeit_cases,
    b.status_changed_on,
    b.created_at,
    b.updated_at,
)


@dataclass(frozen=True)
class KeyListing:
    """What the award rules need to know of an existing listing."""

    id: str
    enterprise_credit_code: str
    product_name: str
    tier: str
    award_kind: str
    awarded_on: date
    valid_until: date | None
    revoked_on: date | None
    superseded_on: date | None
    renewal_of: str | None


KEY_COLUMNS = tuple(b[name] for name in KeyListing.__dataclass_fields__)


def _revoked_on(day: Day) -> ColumnElement[bool]:
    return and_(b.revoked_on.is_not(None), b.revoked_on <= day)


def _expired_on(day: Day) -> ColumnElement[bool]:
    return or_(
        and_(b.valid_until.is_not(None), b.valid_until < day),
        and_(b.superseded_on.is_not(None), b.superseded_on <= day),
    )


def _suspension_covers(day: Day) -> ColumnElement[bool]:
    return and_(s.started_on <= day, or_(s.ended_on.is_(None), s.ended_on > day))


def _suspended_on(day: Day) -> ColumnElement[bool]:
    return exists().where(s.brand_id == b.id, _suspension_covers(day))


def status_on(status: str, day: Day) -> ColumnElement[bool]:
    """Listings awarded by `day` whose status on `day` is `status`."""
    awarded = b.awarded_on <= day
    if status == "revoked":
        return and_(awarded, _revoked_on(day))
    live = and_(awarded, not_(_revoked_on(day)))
    if status == "expired":
        return and_(live, _expired_on(day))
    live = and_(live, not_(_expired_on(day)))
    if status == "suspended":
        return and_(live, _suspended_on(day))
    return and_(live, not_(_suspended_on(day)))


def validity_text(valid_until: date | None) -> str:
    """A validity's end as a message names it."""
    return "no end" if valid_until is None else str(valid_until)


def search_text(*names: str) -> str:
    """The lower-cased text that name search runs over."""
    return "\n".join(names).lower()


_EQUALITY_FILTERS = (
    "county_code",
    "tier",
    "sector",
    "award_kind",
    "enterprise_credit_code",
    "batch_code",
    "international_standard",
    "review_required",
)


@lru_cache(maxsize=512)
def _listing_query(present: frozenset[str], status: str | None) -> Select[Any]:
    """The list query for one combination of filters, newest first, with bound parameters.

    Built once per combination: constructing the status expressions costs more than
    running the query on a warm database.
    """
    conditions: list[ColumnElement[bool]] = [
        b[name] == bindparam(name) for name in _EQUALITY_FILTERS if name in present
    ]
    if "county_codes" in present:
        conditions.append(b.county_code.in_(bindparam("county_codes", expanding=True)))
    if "awarded_from" in present:
        conditions.append(b.awarded_on >= bindparam("awarded_from", type_=Date))
    if "awarded_to" in present:
        conditions.append(b.awarded_on <= bindparam("awarded_to", type_=Date))
    if status is not None:
        conditions.append(status_on(status, bindparam("day", type_=Date)))
    if "q" in present:
        conditions.append(b.search_text.like(bindparam("pattern"), escape=LIKE_ESCAPE))
    if "expiry_to" in present:
        conditions.append(status_on("active", bindparam("day", type_=Date)))
        conditions.append(b.valid_until <= bindparam("expiry_to", type_=Date))
    if "suspended_before" in present:
        conditions.append(b.status == "suspended")
        conditions.append(b.status_changed_on < bindparam("suspended_before", type_=Date))
        conditions.append(not_(_expired_on(bindparam("today", type_=Date))))
    if "credit_code_start" in present:
        conditions.append(b.enterprise_credit_code.like(bindparam("credit_code_start")))
    return select(*LISTING_COLUMNS).where(*conditions).order_by(b.id.desc())


def listing_query(
    *,
    filters: ListingFilters,
    today: date,
    limit: int | None = None,
    county_codes: Collection[str] | None = None,
    suspended_before: date | None = None,
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement and parameters listing `filters`, newest first; with `limit`, the
    statement of a first page (which the benchmark's bare endpoint runs). An overdue
    suspension is one begun before `suspended_before`."""
    values = {
        name: value
        for name, value in filters.model_dump().items()
        if value is not None
        and name
        not in {
            "status",
            "as_of",
            "q",
            "enterprise_credit_code_prefix",
            "expiring_within_days",
            "overdue_suspension",
        }
    }
    if filters.enterprise_credit_code_prefix:
        values["credit_code_start"] = filters.enterprise_credit_code_prefix.upper() + "%"
    if county_codes is not None:
        values["county_codes"] = sorted(county_codes)
    if filters.q:
        values["pattern"] = f"%{escape_like(filters.q.lower())}%"
    if filters.status is not None:
        values["day"] = filters.as_of or today
    if filters.expiring_within_days is not None:
        values["day"] = filters.as_of or today
        values["expiry_to"] = days_after(values["day"], filters.expiring_within_days)
    if filters.overdue_suspension and suspended_before is not None:
        values["suspended_before"], values["today"] = suspended_before, today
    present = frozenset(values) - {"pattern", "day", "today"} | ({"q"} if filters.q else set())
    statement = _listing_query(present, filters.status)
    return (statement if limit is None else statement.limit(limit)), values


async def list_listings(
    *,
    engine: AsyncEngine,
    filters: ListingFilters,
    today: date,
    page: PageParams,
    county_codes: Collection[str] | None = None,
    suspended_before: date | None = None,
) -> Page[dict[str, Any]]:
    """One page of the listings matching `filters`, newest first, as rows of `LISTING_COLUMNS`."""
    statement, values = listing_query(
        filters=filters,
        today=today,
        county_codes=county_codes,
        suspended_before=suspended_before,
    )
    listings: Page[dict[str, Any]] = await paginate(
        engine,
        statement,
        params=page,
        keys=[b.id],
        values=values,
        descending=True,
        mappings=True,
    )
    return listings


async def stream_listings(
    *,
    session: AsyncSession,
    filters: ListingFilters,
    today: date,
    batch_size: int = 1000,
    county_codes: Collection[str] | None = None,
    suspended_before: date | None = None,
) -> AsyncIterator[RowMapping]:
    """Every listing matching `filters`, read in batches from a server-side cursor."""
    statement, values = listing_query(
        filters=filters,
        today=today,
        county_codes=county_codes,
        suspended_before=suspended_before,
    )
    result = await session.stream(statement.execution_options(yield_per=batch_size), values)
    async for partition in result.mappings().partitions():
        for row in partition:
            yield row


async def get_brand(*, session: AsyncSession, brand_id: str) -> Brand | None:
    return await session.get(Brand, brand_id)


_LISTING_BY_ID = select(*LISTING_COLUMNS, b.version).where(b.id == bindparam("id"))


async def listing_row(*, engine: AsyncEngine, brand_id: str) -> dict[str, Any] | None:
    """The listing with this id as the values of `LISTING_COLUMNS` and its `version` (what
    its GET answers from: no ORM object), or None."""
    rows = await fetch_rows(engine, _LISTING_BY_ID, {"id": brand_id})
    return rows[0]._asdict() if rows else None


async def _key_listings(
    session: AsyncSession, *conditions: ColumnElement[bool]
) -> list[KeyListing]:
    query = select(*KEY_COLUMNS).where(*conditions)
    return [KeyListing(**row._mapping) for row in (await session.execute(query)).all()]


async def listings_with_keys(
    *, session: AsyncSession, credit_codes: Iterable[str]
) -> list[KeyListing]:
    """Every listing of the given enterprises, for the duplicate and renewal rules."""
    codes = sorted(set(credit_codes))
    if not codes:
        return []
    return await _key_listings(session, b.enterprise_credit_code.in_(codes))


async def same_key_listings(
    *, session: AsyncSession, credit_code: str, product_name: str, tier: str
) -> list[KeyListing]:
    """The listings of one product of one enterprise in one tier."""
    return await _key_listings(
        session,
        b.enterprise_credit_code == credit_code,
        b.product_name == product_name,
        b.tier == tier,
    )


async def key_listing(*, session: AsyncSession, brand_id: str) -> KeyListing:
    """The rule-relevant fields of a listing known to exist."""
    (listing,) = await _key_listings(session, b.id == brand_id)
    return listing


async def successor_of(*, session: AsyncSession, brand_id: str) -> KeyListing | None:
    """The renewal that replaced `brand_id`, if any."""
    rows = await _key_listings(session, b.renewal_of == brand_id)
    return rows[0] if rows else None


_AWARD_KEY = (b.enterprise_credit_code, b.product_name, b.tier, b.awarded_on)
_AWARD_KEY_COLUMNS = [f"brand.{column.name}" for column in _AWARD_KEY]


async def insert_listings(*, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store accepted awards; 409 when a concurrent request stored the same award first.

    The award rules read the listings before these rows are written, so two requests may
    both find no overlap; the unique index on the award (`LISTING_AWARD_INDEX`) stores one,
    and the other gets the 409 its rules would have raised had it come second. The refused
    request's work is rolled back (the database has aborted it) before the stored listing
    is read for the answer.
    """
    if not rows:
        return
    try:
        await insert_rows(session, brand_table, rows)
    except IntegrityError as error:
        if not violates_unique(error, LISTING_AWARD_INDEX, _AWARD_KEY_COLUMNS):
            raise
        await session.rollback()
        awards = [(tuple(row[c.name] for c in _AWARD_KEY), row["id"]) for row in rows]
        raise await _award_conflict(session, awards, dated=True) from None


async def _award_conflict(
    session: AsyncSession, awards: list[tuple[tuple[Any, ...], str]], *, dated: bool
) -> Conflict:
    """The 409 of an overlapping listing, naming the stored listing the first of `awards`
    (award key, id of the refused listing) collided with, worded as the award rules word it
    (a new award also names the other's dates)."""
    keys = [key for key, _ in awards]
    stored = await _key_listings(session, tuple_(*_AWARD_KEY).in_(keys), b.revoked_on.is_(None))
    by_key = {(o.enterprise_credit_code, o.product_name, o.tier, o.awarded_on): o for o in stored}
    other = next(
        (by_key[key] for key, own in awards if key in by_key and by_key[key].id != own), None
    )
    if other is None:  # revoked since: the index no longer holds it
        return Conflict("The listing conflicts with one stored meanwhile; send it again.")
    which = (
        f"{other.id}, {other.awarded_on} to {validity_text(other.valid_until)}"
        if dated
        else other.id
    )
    message = (
        f"the enterprise already has a listing of this product in tier {other.tier} "
        f"({which}) overlapping this one"
    )
    return Conflict(
        f"product_name: {message}",
        existing_id=other.id,
        errors=[FieldError("product_name", message).as_dict()],
    )


async def insert_history(*, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_rows(session, history_table, rows)


async def mark_superseded(
    *, session: AsyncSession, updates: list[dict[str, Any]], at: datetime
) -> None:
    """Record the date each listing was replaced by its renewal (`{"b_id", "on"}` items)."""
    if not updates:
        return
    statement = (
        update(brand_table)
        .where(b.id == bindparam("b_id"))
        .values(superseded_on=bindparam("on"), version=b.version + 1, updated_at=at)
    )
    await session.execute(statement, updates)


async def open_suspension(
    *, session: AsyncSession, suspension_id: str, brand_id: str, started_on: date
) -> None:
    session.add(BrandSuspension(id=suspension_id, brand_id=brand_id, started_on=started_on))
    await session.flush()


async def close_suspension(*, session: AsyncSession, brand_id: str, ended_on: date) -> None:
    await session.execute(
        update(suspension_table)
        .where(s.brand_id == brand_id, s.ended_on.is_(None))
        .values(ended_on=ended_on)
    )


async def add(*, session: AsyncSession, items: Iterable[Any]) -> None:
    """Stage `items` and flush them with the listings' edits; 409 when an edit moved a
    listing onto an award a concurrent request stored first (see `insert_listings`)."""
    session.add_all(list(items))
    edited = [
        ((o.enterprise_credit_code, o.product_name, o.tier, o.awarded_on), o.id)
        for o in session.dirty
        if isinstance(o, Brand)
    ]
    try:
        await session.flush()
    except IntegrityError as error:
        if not edited or not violates_unique(error, LISTING_AWARD_INDEX, _AWARD_KEY_COLUMNS):
            raise
        await session.rollback()
        raise await _award_conflict(session, edited, dated=False) from None


async def history_page(
    *, session: AsyncSession, brand_id: str, page: PageParams
) -> Page[BrandHistory]:
    """One page of the changes to a listing, oldest first."""
    query = select(BrandHistory).where(col(BrandHistory.brand_id) == brand_id)
    entries: Page[BrandHistory] = await paginate(
        session, query, params=page, keys=[col(BrandHistory.id)]
    )
    return entries


async def get_review_flag(
    *, session: AsyncSession, source: str, reference: str, for_update: bool = False
) -> ReviewFlag | None:
    """The flag, locked until the transaction ends when `for_update` (on PostgreSQL)."""
    return await session.get(ReviewFlag, (source, reference), with_for_update=for_update)


async def flaggable_ids(*, session: AsyncSession, credit_code: str, today: date) -> list[str]:
    """The ids of an enterprise's listings that are active or suspended today."""
    query = (
        select(b.id)
        .where(
            b.enterprise_credit_code == credit_code,
            b.status.in_(("active", "suspended")),
            not_(_expired_on(today)),
        )
        .order_by(b.id)
    )
    return list((await session.execute(query)).scalars())


async def set_review_required(
    *, session: AsyncSession, brand_ids: list[str], reason: str, at: datetime
) -> None:
    await set_review(session=session, brand_ids=brand_ids, required=True, reason=reason, at=at)


async def set_review(
    *,
    session: AsyncSession,
    brand_ids: Sequence[str],
    required: bool,
    reason: str | None,
    at: datetime,
) -> None:
    """Put listings under review with `reason`, or take them out of it; a new version each."""
    if brand_ids:
        await session.execute(
            update(brand_table)
            .where(b.id.in_(list(brand_ids)))
            .values(
                review_required=required,
                review_reason=reason,
                version=b.version + 1,
                updated_at=at,
            )
        )


async def review_states(
    *, session: AsyncSession, brand_ids: Sequence[str]
) -> dict[str, tuple[bool, str | None]]:
    """Whether each listing is under review, and why."""
    if not brand_ids:
        return {}
    query = select(b.id, b.review_required, b.review_reason).where(b.id.in_(list(brand_ids)))
    return {
        row.id: (row.review_required, row.review_reason) for row in await session.execute(query)
    }


async def standing_review_flags(
    *, session: AsyncSession, credit_code: str, excluding: tuple[str, str]
) -> list[ReviewFlag]:
    """The enterprise's flags not withdrawn, oldest first, but the one named by `excluding`
    (source, reference)."""
    flag = ReviewFlag
    query = (
        select(flag)
        .where(
            col(flag.enterprise_credit_code) == credit_code,
            col(flag.cleared_at).is_(None),
            not_(and_(col(flag.source) == excluding[0], col(flag.reference) == excluding[1])),
        )
        .order_by(col(flag.created_at), col(flag.source), col(flag.reference))
    )
    return list((await session.execute(query)).scalars())


async def review_changes(
    *, session: AsyncSession, brand_ids: Sequence[str], actions: Sequence[str]
) -> list[BrandHistory]:
    """The listings' history entries of these actions, oldest first."""
    if not brand_ids:
        return []
    query = (
        select(BrandHistory)
        .where(
            col(BrandHistory.brand_id).in_(list(brand_ids)),
            col(BrandHistory.action).in_(list(actions)),
        )
        .order_by(col(BrandHistory.at))
    )
    return list((await session.execute(query)).scalars())


@lru_cache(maxsize=4)
def _stats_query(by_county: bool) -> Select[Any]:
    as_of = bindparam("as_of", type_=Date)
    suspended = select(s.brand_id).where(_suspension_covers(as_of)).distinct().subquery("suspended")
    in_force = and_(
        b.awarded_on <= as_of,
        not_(_revoked_on(as_of)),
        not_(_expired_on(as_of)),
        suspended.c.brand_id.is_(None),
    )
    is_new = and_(
        b.award_kind == "new",
        b.awarded_on >= bindparam("year_start", type_=Date),
        b.awarded_on <= bindparam("new_until", type_=Date),
        not_(_revoked_on(as_of)),
    )
    query = (
        select(
            b.county_code,
            b.tier,
            func.sum(case((is_new, 1), else_=0)).label("new_awards"),
            func.sum(case((in_force, 1), else_=0)).label("in_force"),
            func.sum(case((and_(in_force, b.international_standard), 1), else_=0)).label(
                "in_force_international"
            ),
        )
        .select_from(brand_table.outerjoin(suspended, suspended.c.brand_id == b.id))
        .where(b.awarded_on <= bindparam("counted_until", type_=Date))
        .group_by(b.county_code, b.tier)
    )
    if by_county:
        query = query.where(b.county_code == bindparam("county_code"))
    return query


def stats_query(
    *, year_start: date, year_end: date, as_of: date, county_code: str | None
) -> tuple[Select[Any], dict[str, Any]]:
    """Per county and tier: new awards in the year (up to `as_of`, not revoked by then),
    listings in force on `as_of` and those of them made to international standards, in one
    GROUP BY."""
    values: dict[str, Any] = {
        "as_of": as_of,
        "year_start": year_start,
        "new_until": min(year_end, as_of),
        "counted_until": max(year_end, as_of),
    }
    if county_code is not None:
        values["county_code"] = county_code
    return _stats_query(county_code is not None), values


async def stats_groups(
    *,
    session: AsyncSession,
    year_start: date,
    year_end: date,
    as_of: date,
    county_code: str | None,
) -> Sequence[Row[Any]]:
    """The stats counts of every county and tier that has listings."""
    statement, values = stats_query(
        year_start=year_start, year_end=year_end, as_of=as_of, county_code=county_code
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement, values)).all()
    return rows


async def discard(*, session: AsyncSession) -> None:
    """Undo everything this request wrote (a dry run, or an import with bad rows)."""
    await session.rollback()


def days_after(day: date, days: int) -> date:
    """The last day of a window of `days` days from `day` (the calendar's end at most)."""
    return date.fromordinal(min(date.max.toordinal(), day.toordinal() + days))


async def listings_matching(
    *,
    session: AsyncSession,
    filters: ListingFilters,
    today: date,
    suspended_before: date | None = None,
) -> list[RowMapping]:
    """Every listing matching `filters` as rows of `LISTING_COLUMNS`, newest first (the alert
    sweep's few due listings)."""
    statement, values = listing_query(
        filters=filters, today=today, suspended_before=suspended_before
    )
    return list((await session.execute(statement, values)).mappings())


async def listings_by_ids(*, session: AsyncSession, brand_ids: Sequence[str]) -> list[Brand]:
    """The listings with these ids as stored now (after any bulk update), by id."""
    if not brand_ids:
        return []
    query = (
        select(Brand)
        .where(col(Brand.id).in_(list(brand_ids)))
        .order_by(col(Brand.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars().all())


# Counterfeit notices -------------------------------------------------------------------


async def get_counterfeit_notice(
    *, session: AsyncSession, source: str, reference: str
) -> CounterfeitNotice | None:
    """The notice as stored now (a concurrent request may have stored it meanwhile)."""
    return await session.get(CounterfeitNotice, (source, reference), populate_existing=True)


async def insert_counterfeit_notice(*, session: AsyncSession, notice: CounterfeitNotice) -> bool:
    """Store a notice; False, with this request's work rolled back, when a concurrent request
    stored a notice of the same source and reference first."""
    session.add(notice)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        stored = await get_counterfeit_notice(
            session=session, source=notice.source, reference=notice.reference
        )
        if stored is None:
            raise
        return False
    return True


async def count_counterfeit_case(*, session: AsyncSession, brand_id: str, at: datetime) -> int:
    """Add one to the listing's counterfeiting cases (a new version); the new count."""
    statement = (
        update(brand_table)
        .where(b.id == brand_id)
        .values(counterfeit_cases=b.counterfeit_cases + 1, version=b.version + 1, updated_at=at)
        .returning(b.counterfeit_cases)
    )
    cases: int = (await session.execute(statement)).scalar_one()
    return cases


async def counterfeit_notices_page(
    *, session: AsyncSession, brand_id: str, page: PageParams
) -> Page[CounterfeitNotice]:
    """One page of the notices about a listing, by source and reference."""
    notice = CounterfeitNotice
    query = select(notice).where(col(notice.brand_id) == brand_id)
    notices: Page[CounterfeitNotice] = await paginate(
        session, query, params=page, keys=[col(notice.source), col(notice.reference)]
    )
    return notices


# Quality awards ------------------------------------------------------------------------

award_table = metadata.tables[Award.__tablename__]
a = award_table.c
_AWARD_UNIQUE_COLUMNS = [
    f"award.{name}" for name in ("enterprise_credit_code", "kind", "level", "year")
]


async def get_award(*, session: AsyncSession, award_id: str) -> Award | None:
    return await session.get(Award, award_id)


async def same_award(
    *, session: AsyncSession, credit_code: str, kind: str, level: str, year: int
) -> Award | None:
    """The enterprise's award of this kind, level and year, if stored."""
    query = select(Award).where(
        col(Award.enterprise_credit_code) == credit_code,
        col(Award.kind) == kind,
        col(Award.level) == level,
        col(Award.year) == year,
    )
    return (await session.execute(query)).scalars().first()


async def insert_award(*, session: AsyncSession, award: Award, items: Iterable[Any]) -> bool:
    """Store a new award and its history; False, with this request's work rolled back, when
    a concurrent request stored the same award (enterprise, kind, level, year) first."""
    session.add(award)
    session.add_all(list(items))
    try:
        await session.flush()
    except IntegrityError as error:
        if not violates_unique(error, AWARD_INDEX, _AWARD_UNIQUE_COLUMNS):
            raise
        await session.rollback()
        return False
    return True


def _award_query(filters: AwardFilters, county_codes: Collection[str] | None) -> Select[Any]:
    conditions = [
        col(getattr(Award, name)) == value
        for name, value in filters.model_dump().items()
        if value is not None
    ]
    if county_codes is not None:
        conditions.append(col(Award.county_code).in_(sorted(county_codes)))
    return select(Award).where(*conditions)


async def list_awards(
    *,
    session: AsyncSession,
    filters: AwardFilters,
    page: PageParams,
    county_codes: Collection[str] | None = None,
) -> Page[Award]:
    """One page of the awards matching `filters`, newest first."""
    awards: Page[Award] = await paginate(
        session,
        _award_query(filters, county_codes),
        params=page,
        keys=[col(Award.id)],
        descending=True,
    )
    return awards


async def stream_awards(
    *,
    session: AsyncSession,
    filters: AwardFilters,
    county_codes: Collection[str] | None = None,
    batch_size: int = 1000,
) -> AsyncIterator[Award]:
    """Every award matching `filters`, newest first, read in batches from a server-side cursor."""
    statement = _award_query(filters, county_codes).order_by(col(Award.id).desc())
    result = await session.stream(statement.execution_options(yield_per=batch_size))
    async for partition in result.scalars().partitions():
        for award in partition:
            yield award


async def awards_with_keys(*, session: AsyncSession, credit_codes: Iterable[str]) -> list[Award]:
    """Every award of the given enterprises, for the one-award-per-year rule of an import."""
    codes = sorted(set(credit_codes))
    if not codes:
        return []
    query = select(Award).where(col(Award.enterprise_credit_code).in_(codes))
    return list((await session.execute(query)).scalars())


async def insert_awards(*, session: AsyncSession, items: Sequence[Any]) -> None:
    """Store imported awards and their history; 409 when a concurrent request stored one of
    them first (the unique award index)."""
    session.add_all(list(items))
    try:
        await session.flush()
    except IntegrityError as error:
        if not violates_unique(error, AWARD_INDEX, _AWARD_UNIQUE_COLUMNS):
            raise
        await session.rollback()
        raise Conflict(
            "An award of the file was stored meanwhile by another request; nothing was "
            "stored, send the file again for its report."
        ) from None


async def award_history_page(
    *, session: AsyncSession, award_id: str, page: PageParams
) -> Page[AwardHistory]:
    """One page of the changes to an award, oldest first."""
    query = select(AwardHistory).where(col(AwardHistory.award_id) == award_id)
    entries: Page[AwardHistory] = await paginate(
        session, query, params=page, keys=[col(AwardHistory.id)]
    )
    return entries


async def award_stats_groups(
    *, session: AsyncSession, year: int, as_of: date, county_code: str | None
) -> Sequence[Row[Any]]:
    """Per county, kind and level: the awards of `year` conferred by `as_of` and not revoked
    on it, in one GROUP BY."""
    query = (
        select(a.county_code, a.kind, a.level, func.count().label("awards"))
        .where(
            a.year == year,
            a.awarded_on <= as_of,
            or_(a.revoked_on.is_(None), a.revoked_on > as_of),
        )
        .group_by(a.county_code, a.kind, a.level)
    )
    if county_code is not None:
        query = query.where(a.county_code == county_code)
    rows: Sequence[Row[Any]] = (await session.execute(query)).all()
    return rows
