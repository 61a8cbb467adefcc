"""The rules of the brand registry: awards, renewals, status, review flags and statistics.

Award rules are applied the same way to one listing and to a CSV import: candidates are
checked in order against the listings already stored (and those accepted before them), so an
import behaves exactly like the same rows posted one after another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from brand_registry import repository
from brand_registry.models import Brand, BrandHistory, ReviewFlag
from brand_registry.policy import TierPolicy
from brand_registry.repository import KeyListing, ListingFilters
from brand_registry.schemas import (
    IMPORT_FIELDS,
    IMPORT_REQUIRED,
    BrandCreate,
    BrandRead,
    BrandStats,
    BrandStatus,
    BrandUpdate,
    Counts,
    CountyCounts,
    HistoryEntry,
    ReviewFlagCreate,
    ReviewFlagRead,
    StatsGroup,
    StatusChange,
    Tier,
    TierCounts,
)
from kit.auth import Principal
from kit.csvio import RowError, batched, check_utf8, import_report, read_rows
from kit.errors import Conflict, FieldError, NotFound, ValidationFailed, field_name
from kit.identifiers import county_code_error, new_id
from kit.pagination import CursorCodec, Page, page_of, query_fingerprint

LEGAL_TRANSITIONS = {
    BrandStatus.active: {BrandStatus.suspended, BrandStatus.revoked},
    BrandStatus.suspended: {BrandStatus.active, BrandStatus.revoked},
    BrandStatus.revoked: set(),
    BrandStatus.expired: set(),
}


@dataclass(frozen=True)
class Rules:
    """What the rules are judged against: the tier policy table, the regions and today."""

    policies: dict[str, TierPolicy]
    regions: frozenset[str]
    today: date


@dataclass
class Violation:
    """A broken rule; `conflict` marks a clash with a stored listing (a 409 for one listing)."""

    field: str
    message: str
    conflict: bool = False
    existing_id: str | None = None


@dataclass
class Accepted:
    """A candidate that passed the rules: its row, and the listing it renews if any."""

    row: dict[str, Any]
    predecessor: KeyListing | None


def _now() -> datetime:
    return datetime.now(UTC)


def status_on(listing: Any, day: date) -> BrandStatus:
    """The status of a listing on `day`, a date not before its last recorded status change:
    a revocation, else expiry, else the recorded status."""
    return BrandStatus(
        _status_text(listing.status, listing.valid_until, listing.superseded_on, day)
    )


def _status_text(recorded: str, valid_until: date, superseded_on: date | None, day: date) -> str:
    if recorded == "revoked":
        return recorded
    if valid_until < day or (superseded_on is not None and superseded_on <= day):
        return "expired"
    return recorded


_READ_LIST = TypeAdapter(list[BrandRead])
READ_COLUMNS = tuple(
    name for name in BrandRead.model_fields if name not in {"tier_label", "status"}
)


def _read_values(listing: Any, rules: Rules) -> dict[str, Any]:
    if isinstance(listing, Row):
        values = dict(listing._mapping)
    else:
        values = {name: getattr(listing, name) for name in READ_COLUMNS}
        values["status"] = listing.status
    values["tier_label"] = rules.policies[values["tier"]].label
    values["status"] = _status_text(
        values["status"], values["valid_until"], values["superseded_on"], rules.today
    )
    return values


def to_read(listing: Any, rules: Rules) -> BrandRead:
    """The API view of a stored listing (an ORM object or a row)."""
    return BrandRead.model_validate(_read_values(listing, rules))


def to_reads(listings: Iterable[Any], rules: Rules) -> list[BrandRead]:
    """The API view of many listings, validated in one pass."""
    return _READ_LIST.validate_python([_read_values(listing, rules) for listing in listings])


def _history(
    *,
    brand_id: str,
    principal: Principal,
    action: str,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    effective_on: date | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "brand_id": brand_id,
        "changed_at": at,
        "actor_id": principal.client_id,
        "actor_name": principal.client_name,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "effective_on": effective_on,
        "changes": changes,
        "reason": reason,
    }


# Award rules ---------------------------------------------------------------------------


def _field_violations(
    *,
    rules: Rules,
    tier: str,
    county_code: str,
    awarded_on: date,
    valid_until: date,
    international_standard: bool,
    standard_code: str | None,
) -> list[Violation]:
    found = []
    policy = rules.policies[tier]
    if policy.closed_on(awarded_on):
        found.append(
            Violation(
                "tier",
                f"{tier} ({policy.label}) accepts no awards after "
                f"{policy.awards_closed_after}; this award is dated {awarded_on}",
            )
        )
    error = county_code_error(county_code, rules.regions)
    if error:
        found.append(Violation("county_code", error))
    if valid_until < awarded_on:
        found.append(Violation("valid_until", f"{valid_until} is before awarded_on {awarded_on}"))
    if international_standard and not standard_code:
        found.append(
            Violation(
                "standard_code",
                "required when international_standard is true: name the standard followed",
            )
        )
    return found


def _effective_end(listing: KeyListing) -> date:
    """The last day a listing counts: its validity, or the day before its renewal."""
    if listing.superseded_on is not None:
        return min(listing.valid_until, date.fromordinal(listing.superseded_on.toordinal() - 1))
    return listing.valid_until


def _duplicate(
    others: Iterable[KeyListing], awarded_on: date, valid_until: date, skip: set[str]
) -> KeyListing | None:
    for other in others:
        if other.id in skip or other.revoked_on is not None:
            continue
        if other.awarded_on <= valid_until and awarded_on <= _effective_end(other):
            return other
    return None


def _predecessor(others: Iterable[KeyListing], awarded_on: date) -> KeyListing | None:
    earlier = [
        other
        for other in others
        if other.awarded_on < awarded_on
        and other.revoked_on is None
        and other.superseded_on is None
    ]
    return max(earlier, key=lambda other: other.awarded_on, default=None)


def _check_award(
    data: BrandCreate, *, rules: Rules, same_key: list[KeyListing]
) -> tuple[list[Violation], Accepted | None]:
    policy = rules.policies[data.tier]
    valid_until = data.valid_until or policy.default_valid_until(data.awarded_on)
    found = _field_violations(
        rules=rules,
        tier=data.tier,
        county_code=data.county_code,
        awarded_on=data.awarded_on,
        valid_until=valid_until,
        international_standard=data.international_standard,
        standard_code=data.standard_code,
    )
    predecessor = None
    if data.award_kind == "renewal":
        predecessor = _predecessor(same_key, data.awarded_on)
        if predecessor is None:
            found.append(
                Violation(
                    "award_kind",
                    "a renewal needs an earlier, unrevoked listing of the same enterprise, "
                    "product and tier, and none was found",
                )
            )
    skip = {predecessor.id} if predecessor else set()
    duplicate = _duplicate(same_key, data.awarded_on, valid_until, skip)
    if duplicate is not None:
        found.append(
            Violation(
                "product_name",
                f"the enterprise already has a listing of this product in tier {data.tier} "
                f"({duplicate.id}, {duplicate.awarded_on} to {duplicate.valid_until}) "
                "overlapping this one",
                conflict=True,
                existing_id=duplicate.id,
            )
        )
    if found:
        return found, None
    now = _now()
    row = {
        **data.model_dump(),
        "id": new_id(),
        "tier": str(data.tier),
        "sector": str(data.sector),
        "award_kind": str(data.award_kind),
        "valid_until": valid_until,
        "status": "active",
        "status_changed_on": None,
        "revoked_on": None,
        "superseded_on": None,
        "renewal_of": predecessor.id if predecessor else None,
        "review_required": False,
        "review_reason": None,
        "search_text": repository.search_text(
            data.product_name, data.brand_name, data.enterprise_name
        ),
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    return [], Accepted(row=row, predecessor=predecessor)


def _key(credit_code: str, product_name: str, tier: str) -> tuple[str, str, str]:
    return (credit_code, product_name, str(tier))


class AwardBatch:
    """Applies the award rules to candidates in order and stores the accepted ones."""

    def __init__(self, *, session: AsyncSession, rules: Rules, principal: Principal) -> None:
        self.session = session
        self.rules = rules
        self.principal = principal
        self.stored = 0
        # Only the last batch's ids, so a long import keeps bounded memory.
        self.created_ids: list[str] = []

    async def apply(
        self, candidates: Sequence[tuple[int, BrandCreate]], *, reason: str | None
    ) -> list[tuple[int, Violation]]:
        """Check and store `(line, candidate)` pairs; answer the violations by line."""
        existing = await repository.listings_with_keys(
            session=self.session, credit_codes=(c.enterprise_credit_code for _, c in candidates)
        )
        by_key: dict[tuple[str, str, str], list[KeyListing]] = defaultdict(list)
        for listing in existing:
            by_key[_key(listing.enterprise_credit_code, listing.product_name, listing.tier)].append(
                listing
            )
        violations: list[tuple[int, Violation]] = []
        rows, history, superseded = [], [], []
        now = _now()
        for line, candidate in candidates:
            key = _key(candidate.enterprise_credit_code, candidate.product_name, candidate.tier)
            found, accepted = _check_award(candidate, rules=self.rules, same_key=by_key[key])
            if accepted is None:
                violations.extend((line, violation) for violation in found)
                continue
            row = accepted.row
            rows.append(row)
            history.append(
                _history(
                    brand_id=row["id"],
                    principal=self.principal,
                    action="created",
                    at=now,
                    to_status="active",
                    effective_on=row["awarded_on"],
                    reason=reason,
                )
            )
            same_key = by_key[key]
            if accepted.predecessor is not None:
                old = accepted.predecessor
                same_key[same_key.index(old)] = replace(old, superseded_on=row["awarded_on"])
                superseded.append({"b_id": old.id, "on": row["awarded_on"]})
                history.append(
                    _history(
                        brand_id=old.id,
                        principal=self.principal,
                        action="renewed",
                        at=now,
                        effective_on=row["awarded_on"],
                        changes={"superseded_on": [None, row["awarded_on"].isoformat()]},
                        reason=f"renewed by listing {row['id']}",
                    )
                )
            same_key.append(
                KeyListing(**{name: row[name] for name in KeyListing.__dataclass_fields__})
            )
        await repository.insert_listings(session=self.session, rows=rows)
        await repository.mark_superseded(session=self.session, updates=superseded, at=now)
        await repository.insert_history(session=self.session, rows=history)
        self.stored += len(rows)
        self.created_ids = [row["id"] for row in rows]
        return violations


async def create_listing(
    *, session: AsyncSession, data: BrandCreate, rules: Rules, principal: Principal
) -> Brand:
    """Register one listing; 422 for a broken rule, 409 for an overlapping listing."""
    batch = AwardBatch(session=session, rules=rules, principal=principal)
    violations = await batch.apply([(0, data)], reason=None)
    _raise_for(v for _, v in violations)
    return await get_listing(session=session, brand_id=batch.created_ids[0])


def _raise_for(violations: Iterable[Violation]) -> None:
    found = list(violations)
    if not found:
        return
    conflicts = [v for v in found if v.conflict]
    if conflicts and len(conflicts) == len(found):
        raise Conflict(
            f"{conflicts[0].field}: {conflicts[0].message}",
            existing_id=conflicts[0].existing_id,
            errors=[FieldError(v.field, v.message).as_dict() for v in conflicts],
        )
    raise ValidationFailed([FieldError(v.field, v.message) for v in found])


# Reading and editing one listing ------------------------------------------------------


async def get_listing(*, session: AsyncSession, brand_id: str) -> Brand:
    """The listing with this id; 404 otherwise."""
    brand = await repository.get_brand(session=session, brand_id=brand_id)
    if brand is None:
        raise NotFound(f"No brand listing with id {brand_id!r}.", field="id")
    return brand


NOT_NULL = {
    "product_name",
    "brand_name",
    "enterprise_name",
    "county_code",
    "sector",
    "awarded_on",
    "valid_until",
    "international_standard",
}


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return str(value) if isinstance(value, StrEnum) else value


async def update_listing(
    *,
    session: AsyncSession,
    brand: Brand,
    data: BrandUpdate,
    rules: Rules,
    principal: Principal,
) -> Brand:
    """Apply field edits, checked like a new award; every change goes to the history."""
    requested = data.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in requested.items() if value is None and name in NOT_NULL)
    if nulls:
        raise ValidationFailed([FieldError(name, "may not be null") for name in nulls])
    changes = {
        name: [_json_value(getattr(brand, name)), _json_value(value)]
        for name, value in requested.items()
        if getattr(brand, name) != value
    }
    if not changes:
        return brand
    merged = {name: getattr(brand, name) for name in BrandUpdate.model_fields} | requested
    found = _field_violations(
        rules=rules,
        tier=brand.tier,
        county_code=merged["county_code"],
        awarded_on=merged["awarded_on"],
        valid_until=merged["valid_until"],
        international_standard=merged["international_standard"],
        standard_code=merged["standard_code"],
    )
    predecessor = successor = None
    if brand.renewal_of is not None:
        (predecessor,) = await repository.listings_where(
            session=session, condition=repository.b.id == brand.renewal_of
        )
        if merged["awarded_on"] <= predecessor.awarded_on:
            found.append(
                Violation(
                    "awarded_on",
                    f"a renewal must be awarded after the listing it renews "
                    f"({predecessor.id}, awarded {predecessor.awarded_on})",
                )
            )
    successor = await repository.successor_of(session=session, brand_id=brand.id)
    if successor is not None and merged["awarded_on"] >= successor.awarded_on:
        found.append(
            Violation(
                "awarded_on",
                f"must stay before the award of its renewal ({successor.id}, "
                f"awarded {successor.awarded_on})",
            )
        )
    if not found and {"product_name", "awarded_on", "valid_until"} & set(changes):
        same_key = await repository.listings_where(
            session=session,
            condition=repository.b.enterprise_credit_code == brand.enterprise_credit_code,
        )
        same_key = [
            other
            for other in same_key
            if other.product_name == merged["product_name"] and other.tier == brand.tier
        ]
        skip = {brand.id} | {other.id for other in (predecessor, successor) if other}
        duplicate = _duplicate(same_key, merged["awarded_on"], merged["valid_until"], skip)
        if duplicate is not None:
            found.append(
                Violation(
                    "product_name",
                    f"the enterprise already has a listing of this product in tier "
                    f"{brand.tier} ({duplicate.id}) overlapping this one",
                    conflict=True,
                    existing_id=duplicate.id,
                )
            )
    _raise_for(found)
    now = _now()
    for name, value in requested.items():
        setattr(brand, name, str(value) if isinstance(value, StrEnum) else value)
    brand.search_text = repository.search_text(
        brand.product_name, brand.brand_name, brand.enterprise_name
    )
    brand.updated_at = now
    if predecessor is not None and "awarded_on" in changes:
        await repository.mark_superseded(
            session=session, updates=[{"b_id": predecessor.id, "on": brand.awarded_on}], at=now
        )
    await repository.add(
        session=session,
        items=[
            BrandHistory(
                **_history(
                    brand_id=brand.id,
                    principal=principal,
                    action="updated",
                    at=now,
                    changes=changes,
                )
            )
        ],
    )
    return brand


async def change_status(
    *,
    session: AsyncSession,
    brand: Brand,
    change: StatusChange,
    rules: Rules,
    principal: Principal,
) -> Brand:
    """A status action with its reason; legal transitions only, revoked and expired final."""
    effective_on = change.effective_on or rules.today
    _check_effective_on(brand, effective_on, rules.today)
    # Judged on the day the change takes effect, so a past revocation can still be recorded.
    current = status_on(brand, effective_on)
    requested = change.status
    if requested == current:
        if not change.clear_review:
            raise Conflict(
                f"The listing is already {current}; nothing to change.",
                current_status=str(current),
                requested_status=str(requested),
            )
        if not brand.review_required:
            raise Conflict(
                "The listing has no review flag to clear.",
                current_status=str(current),
                requested_status=str(requested),
            )
    elif requested not in LEGAL_TRANSITIONS[current]:
        hint = (
            " (expiry follows from valid_until)"
            if BrandStatus.expired in (current, requested)
            else ""
        )
        raise Conflict(
            f"A listing cannot go from {current} to {requested}{hint}.",
            current_status=str(current),
            requested_status=str(requested),
        )
    now = _now()
    if requested != current:
        if current == BrandStatus.suspended:
            await repository.close_suspension(
                session=session, brand_id=brand.id, ended_on=effective_on
            )
        if requested == BrandStatus.suspended:
            await repository.open_suspension(
                session=session, suspension_id=new_id(), brand_id=brand.id, started_on=effective_on
            )
        if requested == BrandStatus.revoked:
            brand.revoked_on = effective_on
        brand.status = str(requested)
        brand.status_changed_on = effective_on
    changes = None
    if change.clear_review:
        changes = {"review_required": [brand.review_required, False]}
        brand.review_required = False
        brand.review_reason = None
    brand.updated_at = now
    action = "status_changed" if requested != current else "review_cleared"
    await repository.add(
        session=session,
        items=[
            BrandHistory(
                **_history(
                    brand_id=brand.id,
                    principal=principal,
                    action=action,
                    at=now,
                    from_status=str(current),
                    to_status=str(requested),
                    effective_on=effective_on if requested != current else None,
                    changes=changes,
                    reason=change.reason,
                )
            )
        ],
    )
    return brand


def _check_effective_on(brand: Brand, effective_on: date, today: date) -> None:
    if effective_on > today:
        raise ValidationFailed.single("effective_on", f"{effective_on} is in the future")
    if effective_on < brand.awarded_on:
        raise ValidationFailed.single(
            "effective_on", f"{effective_on} is before the award ({brand.awarded_on})"
        )
    if brand.status_changed_on is not None and effective_on < brand.status_changed_on:
        raise ValidationFailed.single(
            "effective_on",
            f"{effective_on} is before the last status change ({brand.status_changed_on})",
        )


async def history(
    *, session: AsyncSession, brand_id: str, limit: int, cursor: str | None, codec: CursorCodec
) -> Page[HistoryEntry]:
    """The changes to one listing, oldest first."""
    fingerprint = query_fingerprint({"brand_id": brand_id})
    after = codec.decode(cursor, fingerprint)[0] if cursor else None
    entries = await repository.history_of(
        session=session, brand_id=brand_id, after_id=after, limit=limit + 1
    )
    items = [HistoryEntry.model_validate(entry, from_attributes=True) for entry in entries]
    return page_of(items, limit=limit, codec=codec, fingerprint=fingerprint, key=lambda e: [e.id])


# Review flags --------------------------------------------------------------------------


async def raise_review_flag(
    *, session: AsyncSession, data: ReviewFlagCreate, rules: Rules, principal: Principal
) -> ReviewFlagRead:
    """Flag every active or suspended listing of the enterprise, once per (source, reference)."""
    first = await repository.get_review_flag(
        session=session, source=data.source, reference=data.reference
    )
    if first is not None:
        return ReviewFlagRead(
            reference=first.reference,
            source=first.source,
            flagged_brand_ids=list(first.flagged_brand_ids),
            created=False,
        )
    ids = await repository.flaggable_ids(
        session=session, credit_code=data.enterprise_credit_code, today=rules.today
    )
    now = _now()
    reason = f"{data.source} {data.reference}: {data.reason}"
    await repository.set_review_required(session=session, brand_ids=ids, reason=reason, at=now)
    await repository.insert_history(
        session=session,
        rows=[
            _history(
                brand_id=brand_id,
                principal=principal,
                action="review_flagged",
                at=now,
                changes={
                    "review_required": [None, True],
                    "source": data.source,
                    "reference": data.reference,
                },
                reason=reason,
            )
            for brand_id in ids
        ],
    )
    await repository.add(
        session=session,
        items=[
            ReviewFlag(
                source=data.source,
                reference=data.reference,
                enterprise_credit_code=data.enterprise_credit_code,
                reason=data.reason,
                flagged_brand_ids=ids,
                raised_by=principal.client_id,
                created_at=now,
            )
        ],
    )
    return ReviewFlagRead(
        reference=data.reference, source=data.source, flagged_brand_ids=ids, created=True
    )


# Lists, exports and statistics ---------------------------------------------------------


def check_filters(filters: ListingFilters, rules: Rules) -> None:
    """422 for a county outside the configured list or an inverted date range."""
    errors = []
    if filters.county_code is not None:
        error = county_code_error(filters.county_code, rules.regions)
        if error:
            errors.append(FieldError("county_code", error))
    if filters.awarded_from and filters.awarded_to and filters.awarded_from > filters.awarded_to:
        errors.append(FieldError("awarded_to", "is before awarded_from"))
    if errors:
        raise ValidationFailed(errors)


async def list_listings(
    *,
    session: AsyncSession | AsyncConnection,
    filters: ListingFilters,
    rules: Rules,
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
) -> Page[BrandRead]:
    """One page of listings matching `filters`, newest first."""
    check_filters(filters, rules)
    fingerprint = query_fingerprint(vars(filters))
    after = codec.decode(cursor, fingerprint)[0] if cursor else None
    rows = await repository.list_listings(
        session=session, filters=filters, today=rules.today, after_id=after, limit=limit + 1
    )
    items = to_reads(rows, rules)
    return page_of(items, limit=limit, codec=codec, fingerprint=fingerprint, key=lambda r: [r.id])


async def export_rows(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    filters: ListingFilters,
    rules: Rules,
    fields: Sequence[str],
) -> AsyncIterator[list[Any]]:
    """The CSV rows of an export, read through a session of their own."""
    async with sessionmaker() as session:
        async for row in repository.stream_listings(
            session=session, filters=filters, today=rules.today
        ):
            item = to_read(row, rules).model_dump(mode="json")
            yield [item[name] for name in fields]


async def stats(
    *,
    session: AsyncSession | AsyncConnection,
    year: int,
    county_code: str | None,
    as_of: date | None,
    rules: Rules,
) -> BrandStats:
    """New awards and listings in force by county and tier, every group and the totals."""
    if county_code is not None:
        error = county_code_error(county_code, rules.regions)
        if error:
            raise ValidationFailed.single("county_code", error)
    day = as_of or date(year, 12, 31)
    rows = await repository.stats_groups(
        session=session,
        year_start=date(year, 1, 1),
        year_end=date(year, 12, 31),
        as_of=day,
        county_code=county_code,
    )
    counted = {(row.county_code, row.tier): row for row in rows}
    counties = sorted({county_code} if county_code else rules.regions | {c for c, _ in counted})
    zero = Counts(new_awards=0, in_force=0, in_force_international=0)
    groups = []
    for county in counties:
        for tier in Tier:
            row = counted.get((county, str(tier)))
            counts = (
                Counts(
                    new_awards=int(row.new_awards),
                    in_force=int(row.in_force),
                    in_force_international=int(row.in_force_international),
                )
                if row is not None
                else zero
            )
            groups.append(StatsGroup(county_code=county, tier=tier, **counts.model_dump()))
    return BrandStats(
        year=year,
        as_of=day,
        groups=groups,
        by_county=[
            CountyCounts(county_code=county, **_sum(g for g in groups if g.county_code == county))
            for county in counties
        ],
        by_tier=[
            TierCounts(tier=tier, **_sum(g for g in groups if g.tier == tier)) for tier in Tier
        ],
        totals=Counts(**_sum(groups)),
    )


def _sum(groups: Iterable[Counts]) -> dict[str, int]:
    total = {"new_awards": 0, "in_force": 0, "in_force_international": 0}
    for group in groups:
        for name in total:
            total[name] += getattr(group, name)
    return total


# Import --------------------------------------------------------------------------------


def _parse_rows(
    rows: Iterator[tuple[int, dict[str, str]]], errors: list[RowError]
) -> Iterator[tuple[int, BrandCreate]]:
    for line, raw in rows:
        if "__error__" in raw:
            errors.append(RowError(line, "row", raw["__error__"]))
            continue
        values = {name: value for name, value in raw.items() if value != ""}
        try:
            yield line, BrandCreate.model_validate(values)
        except ValidationError as exc:
            errors.extend(
                RowError(line, field_name(error["loc"]), str(error["msg"]))
                for error in exc.errors()
            )


async def import_listings(
    *,
    session: AsyncSession,
    upload: IO[bytes],
    dry_run: bool,
    rules: Rules,
    principal: Principal,
    batch_size: int,
) -> dict[str, Any]:
    """Check every row in file order and store all of them, or none when one is bad.

    Rows are stored batch by batch inside the request's transaction, so later rows are
    checked against earlier ones through the database; a dry run or a bad row rolls the
    whole transaction back.
    """
    check_utf8(upload)
    errors: list[RowError] = []
    seen = 0
    batch = AwardBatch(session=session, rules=rules, principal=principal)

    def counted() -> Iterator[tuple[int, dict[str, str]]]:
        nonlocal seen
        for item in read_rows(upload, required=IMPORT_REQUIRED, allowed=IMPORT_FIELDS):
            seen += 1
            yield item

    for candidates in batched(_parse_rows(counted(), errors), batch_size):
        violations = await batch.apply(candidates, reason="CSV import")
        errors.extend(RowError(line, v.field, v.message) for line, v in violations)
    if seen == 0:
        raise ValidationFailed.single("file", "The file has a header but no rows.")
    errors.sort(key=lambda error: error.line)
    stored = 0 if errors or dry_run else batch.stored
    report = import_report(rows=seen, errors=errors, dry_run=dry_run, stored=stored)
    if errors and not dry_run:
        failure = ValidationFailed(
            [FieldError(f"line {e.line}: {e.field}", e.message) for e in errors[:1]],
            detail=f"{len({e.line for e in errors})} of {seen} rows are invalid; nothing was stored.",
        )
        failure.extra.update(report)
        raise failure
    if dry_run:
        await repository.discard(session=session)
    return report
