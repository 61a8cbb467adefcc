"""The rules of the brand registry: awards, renewals, status, review flags, counterfeit
notices, quality awards and statistics.

Award rules are applied the same way to one listing and to a CSV import: candidates are
checked in order against the listings already stored (and those accepted before them), so an
import behaves exactly like the same rows posted one after another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from brand_registry import repository
from brand_registry.catalogue import GEOGRAPHICAL_INDICATION, GI_FIELDS, Catalogue
from brand_registry.models import (
    Award,
    AwardHistory,
    Brand,
    BrandHistory,
    CounterfeitNotice,
    ReviewFlag,
)
from brand_registry.repository import KeyListing, validity_text
from brand_registry.schemas import (
    AWARD_EXPORT_FIELDS,
    AWARD_IMPORT_FIELDS,
    AWARD_IMPORT_REQUIRED,
    AWARD_LABELS,
    IMPORT_FIELDS,
    IMPORT_REQUIRED,
    LABELS,
    AwardCounts,
    AwardCreate,
    AwardFilters,
    AwardLevel,
    AwardRead,
    AwardStatsRead,
    AwardStatus,
    AwardStatusUpdate,
    AwardUpdate,
    BrandCreate,
    BrandHistoryRead,
    BrandRead,
    BrandStatsRead,
    BrandStatus,
    BrandStatusUpdate,
    BrandUpdate,
    CounterfeitNoticeCreate,
    CounterfeitNoticeRead,
    Counts,
    CountyAwardCounts,
    CountyCounts,
    ListingFilters,
    ReviewFlagClear,
    ReviewFlagClearRead,
    ReviewFlagCreate,
    ReviewFlagRead,
    StatsGroup,
    Tier,
    TierCounts,
)
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.csvio import RowError, batched, drawn_in_thread
from kit.dates import business_date_errors
from kit.db import as_utc, plan_each_statement
from kit.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed, field_name
from kit.events import NewEvent, emit, emit_many
from kit.identifiers import new_id
from kit.pagination import Page, PageParams
from kit.xlsxio import Upload

LEGAL_TRANSITIONS = {
    BrandStatus.active: {BrandStatus.suspended, BrandStatus.revoked},
    BrandStatus.suspended: {BrandStatus.active, BrandStatus.revoked},
    BrandStatus.revoked: set(),
    BrandStatus.expired: set(),
}


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


EVENT_SOURCE = "brand_registry"


def subject_of(brand_id: str) -> str:
    """The subject of a listing's change events."""
    return f"brands/{brand_id}"


# Reading -------------------------------------------------------------------------------


def status_on(listing: Brand, day: date) -> BrandStatus:
    """The status of a listing on `day`, a date not before its last recorded status change:
    a revocation, else expiry, else the recorded status."""
    return BrandStatus(
        _status_text(listing.status, listing.valid_until, listing.superseded_on, day)
    )


def _status_text(
    recorded: str, valid_until: date | None, superseded_on: date | None, day: date
) -> str:
    if recorded == "revoked":
        return recorded
    if (valid_until is not None and valid_until < day) or (
        superseded_on is not None and superseded_on <= day
    ):
        return "expired"
    return recorded


READ_COLUMNS = tuple(
    name
    for name in BrandRead.model_fields
    if name not in {"tier_label", "status", "suspension_overdue"}
)


def to_read(listing: Brand | Mapping[Any, Any], *, catalogue: Catalogue, today: date) -> BrandRead:
    """The API view of a stored listing (an ORM object or a row of the list's columns)."""
    if isinstance(listing, Brand):
        values = {name: getattr(listing, name) for name in READ_COLUMNS}
        values["status"] = listing.status
        values["status_changed_on"] = listing.status_changed_on
    else:
        values = dict(listing)
    values["tier_label"] = catalogue.policies[values["tier"]].label
    values["status"] = _status_text(
        values["status"], values["valid_until"], values["superseded_on"], today
    )
    since = values["status_changed_on"]
    values["suspension_overdue"] = (
        values["status"] == "suspended"
        and since is not None
        and since < catalogue.suspension_cutoff(today)
    )
    return BrandRead.model_validate(values)


def etag(brand: Brand) -> str:
    """The listing's current ETag; every change bumps its version."""
    return make_etag(brand.id, brand.version)


async def get_listing(
    *, session: AsyncSession, brand_id: str, principal: Principal | None = None
) -> Brand:
    """The listing with this id; 404 otherwise, and for a listing of a county the
    `principal` may not read."""
    brand = await repository.get_brand(session=session, brand_id=brand_id)
    if brand is None or (principal is not None and not principal.reads(brand.county_code)):
        raise NotFound(f"No brand listing with id {brand_id!r}.", field="id")
    return brand


async def read_listing(
    *, engine: AsyncEngine, brand_id: str, principal: Principal, catalogue: Catalogue, today: date
) -> tuple[BrandRead, str]:
    """A listing as its GET answers, and its ETag, from one row; 404 as `get_listing`."""
    values = await repository.listing_row(engine=engine, brand_id=brand_id)
    if values is None or not principal.reads(values["county_code"]):
        raise NotFound(f"No brand listing with id {brand_id!r}.", field="id")
    version = values.pop("version")
    return to_read(values, catalogue=catalogue, today=today), make_etag(values["id"], version)


# History -------------------------------------------------------------------------------


def _history(
    *,
    brand_id: str,
    principal: Principal,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    effective_on: date | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A history entry; `before` and `after` hold the values replaced and written, the
    status among them."""
    return {
        "id": new_id(),
        "brand_id": brand_id,
        "action": action,
        "actor": principal.client_id,
        "actor_name": principal.client_name,
        "reason": reason,
        "at": at,
        "effective_on": effective_on,
        "before": before or None,
        "after": after or None,
    }


def history_read(entry: BrandHistory | AwardHistory) -> BrandHistoryRead:
    """The API view of a history entry: the status pair and `{field: [old, new]}` changes
    read from `before` and `after` (a key only in `after` describes the change itself)."""
    before, after = entry.before or {}, entry.after or {}
    changes = {
        name: [before[name], value] if name in before else value
        for name, value in after.items()
        if name != "status"
    }
    return BrandHistoryRead(
        id=entry.id,
        changed_at=entry.at,
        actor_id=entry.actor,
        actor_name=entry.actor_name,
        action=entry.action,
        from_status=before.get("status"),
        to_status=after.get("status"),
        effective_on=entry.effective_on,
        changes=changes or None,
        reason=entry.reason,
    )


async def history(
    *, session: AsyncSession, brand_id: str, page: PageParams
) -> Page[BrandHistoryRead]:
    """One page of the changes to one listing, oldest first."""
    entries = await repository.history_page(session=session, brand_id=brand_id, page=page)
    return entries.map(history_read)


# Award rules ---------------------------------------------------------------------------


def _date_violations(
    *, catalogue: Catalogue, today: date, awarded_on: date | None, valid_until: date | None
) -> list[Violation]:
    """The suite's date policy (kit.dates): an award happened by today, its validity ends at
    most the catalogue's horizon ahead."""
    errors = business_date_errors({"awarded_on": awarded_on}, today=today)
    errors += business_date_errors(
        {"valid_until": valid_until},
        today=today,
        horizon_years=catalogue.validity_horizon_years,
    )
    return [Violation(error.field, error.message) for error in errors]


def _indication_violations(
    *, catalogue: Catalogue, tier: str, values: Mapping[str, Any]
) -> list[Violation]:
    """A geographical-indication listing names its protected name and area (known counties,
    each once) and the approval it rests on; a listing of another tier names none of them."""
    if tier != GEOGRAPHICAL_INDICATION:
        return [
            Violation(name, f"only a {GEOGRAPHICAL_INDICATION} listing has {name}")
            for name in GI_FIELDS
            if values.get(name) is not None
        ]
    found = [
        Violation(name, f"required for a {GEOGRAPHICAL_INDICATION} listing")
        for name in GI_FIELDS
        if values.get(name) is None
    ]
    seen: set[str] = set()
    for code in values.get("protected_area") or []:
        error = catalogue.county_code_error(code)
        if error:
            found.append(Violation("protected_area", error))
        elif code in seen:
            found.append(Violation("protected_area", f"names {code} more than once"))
        seen.add(code)
    return found


def _field_violations(
    *,
    catalogue: Catalogue,
    tier: str,
    county_code: str,
    awarded_on: date,
    valid_until: date | None,
    international_standard: bool,
    standard_code: str | None,
    indication: Mapping[str, Any],
) -> list[Violation]:
    found = _indication_violations(catalogue=catalogue, tier=tier, values=indication)
    policy = catalogue.policies[tier]
    if policy.closed_on(awarded_on):
        found.append(
            Violation(
                "tier",
                f"{tier} ({policy.label}) accepts no awards after "
                f"{policy.awards_closed_after}; this award is dated {awarded_on}",
            )
        )
    error = catalogue.county_code_error(county_code)
    if error:
        found.append(Violation("county_code", error))
    if valid_until is not None and valid_until < awarded_on:
        found.append(Violation("valid_until", f"{valid_until} is before awarded_on {awarded_on}"))
    if international_standard and not standard_code:
        found.append(
            Violation(
                "standard_code",
                "required when international_standard is true: name the standard followed",
            )
        )
    return found


def _end(valid_until: date | None) -> date:
    """The last day a validity covers; a listing without one never ends."""
    return date.max if valid_until is None else valid_until


def _effective_end(listing: KeyListing) -> date:
    """The last day a listing counts: its validity, or the day before its renewal."""
    if listing.superseded_on is not None:
        return min(
            _end(listing.valid_until), date.fromordinal(listing.superseded_on.toordinal() - 1)
        )
    return _end(listing.valid_until)


def _duplicate(
    others: Iterable[KeyListing], awarded_on: date, valid_until: date | None, skip: set[str]
) -> KeyListing | None:
    for other in others:
        if other.id in skip or other.revoked_on is not None:
            continue
        if other.awarded_on <= _end(valid_until) and awarded_on <= _effective_end(other):
            return other
    return None


def _duplicate_violation(duplicate: KeyListing, tier: str, *, dated: bool) -> Violation:
    """The 409 of an overlapping listing; a new award also names the other's dates."""
    which = (
        f"{duplicate.id}, {duplicate.awarded_on} to {validity_text(duplicate.valid_until)}"
        if dated
        else duplicate.id
    )
    return Violation(
        "product_name",
        f"the enterprise already has a listing of this product in tier {tier} ({which}) "
        "overlapping this one",
        conflict=True,
        existing_id=duplicate.id,
    )


def _predecessor(others: Iterable[KeyListing], awarded_on: date) -> KeyListing | None:
    earlier = [
        other
        for other in others
        if other.awarded_on < awarded_on
        and other.revoked_on is None
        and other.superseded_on is None
    ]
    return max(earlier, key=lambda other: other.awarded_on, default=None)


def _days_lapsed(listing: KeyListing, awarded_on: date) -> int:
    """Days from a listing's expiry to `awarded_on` (0 or less while it is still valid, and
    always for a listing that never expires)."""
    if listing.valid_until is None:
        return 0
    return (awarded_on - listing.valid_until).days


def _award_violations(
    data: BrandCreate,
    valid_until: date | None,
    *,
    catalogue: Catalogue,
    same_key: list[KeyListing],
    today: date,
) -> tuple[list[Violation], KeyListing | None]:
    """The rules a new award breaks, and the listing it renews (for a valid renewal)."""
    found = _date_violations(
        catalogue=catalogue, today=today, awarded_on=data.awarded_on, valid_until=valid_until
    )
    found += _field_violations(
        catalogue=catalogue,
        tier=data.tier,
        county_code=data.county_code,
        awarded_on=data.awarded_on,
        valid_until=valid_until,
        international_standard=data.international_standard,
        standard_code=data.standard_code,
        indication={name: getattr(data, name) for name in GI_FIELDS},
    )
    grace = catalogue.policies[data.tier].renewal_grace_days
    earlier = _predecessor(same_key, data.awarded_on)
    predecessor = None
    if data.award_kind == "renewal":
        predecessor = earlier
        if predecessor is None:
            found.append(
                Violation(
                    "award_kind",
                    "a renewal needs an earlier, unrevoked listing of the same enterprise, "
                    "product and tier, and none was found",
                )
            )
        elif (late := _days_lapsed(predecessor, data.awarded_on)) > grace:
            found.append(
                Violation(
                    "award_kind",
                    f"renewal after the grace period: listing {predecessor.id} lapsed on "
                    f"{predecessor.valid_until}, {late} days before this award, beyond the "
                    f"{grace} days a {data.tier} listing may still be renewed; record a new award",
                )
            )
    elif earlier is not None and 0 < _days_lapsed(earlier, data.awarded_on) <= grace:
        found.append(
            Violation(
                "award_kind",
                f"new award of a lapsed listing: listing {earlier.id} of this product lapsed on "
                f"{earlier.valid_until}, within the {grace} days a {data.tier} listing may "
                "still be renewed; record a renewal, which is not 新增",
            )
        )
    skip = {predecessor.id} if predecessor else set()
    duplicate = _duplicate(same_key, data.awarded_on, valid_until, skip)
    if duplicate is not None:
        found.append(_duplicate_violation(duplicate, data.tier, dated=True))
    return found, predecessor


def _new_row(
    data: BrandCreate, valid_until: date | None, predecessor: KeyListing | None
) -> dict[str, Any]:
    """The stored row of an accepted award."""
    now = _now()
    return {
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
        "counterfeit_cases": 0,
        "search_text": repository.search_text(
            data.product_name, data.brand_name, data.enterprise_name
        ),
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _check_award(
    data: BrandCreate, *, catalogue: Catalogue, same_key: list[KeyListing], today: date
) -> tuple[list[Violation], Accepted | None]:
    policy = catalogue.policies[data.tier]
    valid_until = data.valid_until or policy.default_valid_until(data.awarded_on)
    found, predecessor = _award_violations(
        data, valid_until, catalogue=catalogue, same_key=same_key, today=today
    )
    if found:
        return found, None
    return [], Accepted(row=_new_row(data, valid_until, predecessor), predecessor=predecessor)


def _key(credit_code: str, product_name: str, tier: str) -> tuple[str, str, str]:
    return (credit_code, product_name, str(tier))


@dataclass
class _Writes:
    """What one batch of accepted awards stores: listings, history, and renewed listings."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    superseded: list[dict[str, Any]] = field(default_factory=list)


class AwardBatch:
    """Applies the award rules to candidates in order and stores the accepted ones."""

    def __init__(
        self, *, session: AsyncSession, catalogue: Catalogue, principal: Principal, today: date
    ) -> None:
        self.session = session
        self.catalogue = catalogue
        self.principal = principal
        self.today = today
        self.stored = 0
        # Only the last batch's ids, so a long import keeps bounded memory.
        self.created_ids: list[str] = []

    async def apply(
        self, candidates: Sequence[tuple[int, BrandCreate]], *, reason: str | None
    ) -> list[tuple[int, Violation]]:
        """Check and store `(line, candidate)` pairs; answer the violations by line."""
        by_key = await self._listings_by_key(candidates)
        violations: list[tuple[int, Violation]] = []
        writes = _Writes()
        now = _now()
        for line, candidate in candidates:
            same_key = by_key[
                _key(candidate.enterprise_credit_code, candidate.product_name, candidate.tier)
            ]
            found, accepted = _check_award(
                candidate, catalogue=self.catalogue, same_key=same_key, today=self.today
            )
            if accepted is None:
                violations.extend((line, violation) for violation in found)
            else:
                self._accept(accepted, same_key, writes, at=now, reason=reason)
        await repository.insert_listings(session=self.session, rows=writes.rows)
        await repository.mark_superseded(session=self.session, updates=writes.superseded, at=now)
        await repository.insert_history(session=self.session, rows=writes.history)
        await emit_many(
            self.session,
            source=EVENT_SOURCE,
            events=[
                NewEvent(
                    type="brand.created",
                    subject=subject_of(row["id"]),
                    data={"id": row["id"], "item": self._item(row)},
                    county_code=row["county_code"],
                )
                for row in writes.rows
            ],
        )
        self.stored += len(writes.rows)
        self.created_ids = [row["id"] for row in writes.rows]
        return violations

    def _item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return to_read(row, catalogue=self.catalogue, today=self.today).model_dump(mode="json")

    async def _listings_by_key(
        self, candidates: Sequence[tuple[int, BrandCreate]]
    ) -> defaultdict[tuple[str, str, str], list[KeyListing]]:
        existing = await repository.listings_with_keys(
            session=self.session, credit_codes=(c.enterprise_credit_code for _, c in candidates)
        )
        by_key: defaultdict[tuple[str, str, str], list[KeyListing]] = defaultdict(list)
        for listing in existing:
            by_key[_key(listing.enterprise_credit_code, listing.product_name, listing.tier)].append(
                listing
            )
        return by_key

    def _accept(
        self,
        accepted: Accepted,
        same_key: list[KeyListing],
        writes: _Writes,
        *,
        at: datetime,
        reason: str | None,
    ) -> None:
        """Queue an accepted award and the renewal of its predecessor; later candidates of
        the batch see both through `same_key`."""
        row = accepted.row
        writes.rows.append(row)
        writes.history.append(
            _history(
                brand_id=row["id"],
                principal=self.principal,
                action="created",
                at=at,
                after={"status": "active"},
                effective_on=row["awarded_on"],
                reason=reason,
            )
        )
        old = accepted.predecessor
        if old is not None:
            same_key[same_key.index(old)] = replace(old, superseded_on=row["awarded_on"])
            writes.superseded.append({"b_id": old.id, "on": row["awarded_on"]})
            writes.history.append(
                _history(
                    brand_id=old.id,
                    principal=self.principal,
                    action="renewed",
                    at=at,
                    before={"superseded_on": None},
                    after={"superseded_on": row["awarded_on"].isoformat()},
                    effective_on=row["awarded_on"],
                    reason=f"renewed by listing {row['id']}",
                )
            )
        same_key.append(KeyListing(**{name: row[name] for name in KeyListing.__dataclass_fields__}))


async def create_listing(
    *,
    session: AsyncSession,
    data: BrandCreate,
    catalogue: Catalogue,
    principal: Principal,
    today: date,
) -> Brand:
    """Register one listing; 403 outside the principal's counties, 422 for a broken rule,
    409 for an overlapping listing."""
    principal.require_county(data.county_code)
    batch = AwardBatch(session=session, catalogue=catalogue, principal=principal, today=today)
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


# Editing one listing -------------------------------------------------------------------


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
KEY_FIELDS = {"product_name", "awarded_on", "valid_until"}


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return str(value) if isinstance(value, StrEnum) else value


def _requested_edits(data: BrandUpdate, *, open_ended: bool) -> dict[str, Any]:
    """The fields the edit sets; 422 for a required field set to null (a validity may be
    removed in a tier whose listings need none)."""
    requested = data.model_dump(exclude_unset=True)
    required = NOT_NULL - {"valid_until"} if open_ended else NOT_NULL
    nulls = sorted(name for name, value in requested.items() if value is None and name in required)
    if nulls:
        raise ValidationFailed([FieldError(name, "may not be null") for name in nulls])
    return requested


def _edited_values(
    brand: Brand, requested: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The old and new values, as JSON, of the fields the edit really changes."""
    changed = [name for name, value in requested.items() if getattr(brand, name) != value]
    before = {name: _json_value(getattr(brand, name)) for name in changed}
    after = {name: _json_value(requested[name]) for name in changed}
    return before, after


def _renewal_order_violations(
    awarded_on: date, predecessor: KeyListing | None, successor: KeyListing | None
) -> list[Violation]:
    """A renewal stays after the listing it renews, and before the one that renews it."""
    found = []
    if predecessor is not None and awarded_on <= predecessor.awarded_on:
        found.append(
            Violation(
                "awarded_on",
                f"a renewal must be awarded after the listing it renews "
                f"({predecessor.id}, awarded {predecessor.awarded_on})",
            )
        )
    if successor is not None and awarded_on >= successor.awarded_on:
        found.append(
            Violation(
                "awarded_on",
                f"must stay before the award of its renewal ({successor.id}, "
                f"awarded {successor.awarded_on})",
            )
        )
    return found


async def _edit_duplicates(
    *, session: AsyncSession, brand: Brand, merged: dict[str, Any], skip: set[str]
) -> list[Violation]:
    """The 409 of an edit that makes the listing overlap another of the same product."""
    same_key = await repository.same_key_listings(
        session=session,
        credit_code=brand.enterprise_credit_code,
        product_name=merged["product_name"],
        tier=brand.tier,
    )
    duplicate = _duplicate(same_key, merged["awarded_on"], merged["valid_until"], skip)
    return [] if duplicate is None else [_duplicate_violation(duplicate, brand.tier, dated=False)]


def _apply_edits(brand: Brand, requested: dict[str, Any], at: datetime) -> None:
    for name, value in requested.items():
        setattr(brand, name, str(value) if isinstance(value, StrEnum) else value)
    brand.search_text = repository.search_text(
        brand.product_name, brand.brand_name, brand.enterprise_name
    )
    brand.updated_at = at


async def update_listing(
    *,
    session: AsyncSession,
    brand: Brand,
    data: BrandUpdate,
    catalogue: Catalogue,
    principal: Principal,
    if_match: str | None,
    today: date,
) -> Brand:
    """Apply field edits, checked like a new award; every change goes to the history. The
    listing's county, and the county it moves to, must be the principal's."""
    principal.require_county(brand.county_code)
    requested = _requested_edits(
        data, open_ended=catalogue.policies[brand.tier].validity_years is None
    )
    if requested.get("county_code") is not None:
        principal.require_county(requested["county_code"])
    check_if_match(if_match, etag(brand))
    before, after = _edited_values(brand, requested)
    if not after:
        return brand
    merged = {name: getattr(brand, name) for name in BrandUpdate.model_fields} | requested
    predecessor = (
        await repository.key_listing(session=session, brand_id=brand.renewal_of)
        if brand.renewal_of is not None
        else None
    )
    successor = await repository.successor_of(session=session, brand_id=brand.id)
    found = (
        _date_violations(
            catalogue=catalogue,
            today=today,
            awarded_on=requested.get("awarded_on"),
            valid_until=requested.get("valid_until"),
        )
        + _field_violations(
            catalogue=catalogue,
            tier=brand.tier,
            county_code=merged["county_code"],
            awarded_on=merged["awarded_on"],
            valid_until=merged["valid_until"],
            international_standard=merged["international_standard"],
            standard_code=merged["standard_code"],
            indication={name: merged[name] for name in GI_FIELDS},
        )
        + _renewal_order_violations(merged["awarded_on"], predecessor, successor)
    )
    if not found and KEY_FIELDS & set(after):
        skip = {brand.id} | {other.id for other in (predecessor, successor) if other}
        found = await _edit_duplicates(session=session, brand=brand, merged=merged, skip=skip)
    _raise_for(found)
    now = _now()
    _apply_edits(brand, requested, now)
    if predecessor is not None and "awarded_on" in after:
        await repository.mark_superseded(
            session=session, updates=[{"b_id": predecessor.id, "on": brand.awarded_on}], at=now
        )
    entry = _history(
        brand_id=brand.id, principal=principal, action="updated", at=now, before=before, after=after
    )
    await repository.add(session=session, items=[BrandHistory(**entry)])
    return brand


# Status actions ------------------------------------------------------------------------


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


def _transition_refusal(
    brand: Brand, current: BrandStatus, requested: BrandStatus, *, clear_review: bool
) -> str | None:
    """Why the status table refuses the action (a 409), or None when it is allowed."""
    if requested == current:
        if not clear_review:
            return f"The listing is already {current}; nothing to change."
        if not brand.review_required:
            return "The listing has no review flag to clear."
        return None
    if requested not in LEGAL_TRANSITIONS[current]:
        hint = (
            " (expiry follows from valid_until)"
            if BrandStatus.expired in (current, requested)
            else ""
        )
        return f"A listing cannot go from {current} to {requested}{hint}."
    return None


async def _move_status(
    *,
    session: AsyncSession,
    brand: Brand,
    current: BrandStatus,
    requested: BrandStatus,
    effective_on: date,
) -> None:
    """Record the new status from `effective_on`: suspension periods and the revocation date
    date it, so the status on any past day can be computed."""
    if current == BrandStatus.suspended:
        await repository.close_suspension(session=session, brand_id=brand.id, ended_on=effective_on)
    if requested == BrandStatus.suspended:
        await repository.open_suspension(
            session=session, suspension_id=new_id(), brand_id=brand.id, started_on=effective_on
        )
    if requested == BrandStatus.revoked:
        brand.revoked_on = effective_on
    brand.status = str(requested)
    brand.status_changed_on = effective_on


async def change_status(
    *,
    session: AsyncSession,
    brand: Brand,
    change: BrandStatusUpdate,
    today: date,
    principal: Principal,
    if_match: str | None,
    catalogue: Catalogue,
) -> Brand:
    """A status action with its reason; legal transitions only, revoked and expired final."""
    principal.require_county(brand.county_code)
    check_if_match(if_match, etag(brand))
    effective_on = change.effective_on or today
    _check_effective_on(brand, effective_on, today)
    # Judged on the day the change takes effect, so a past revocation can still be recorded.
    current = status_on(brand, effective_on)
    requested = change.status
    refusal = _transition_refusal(brand, current, requested, clear_review=change.clear_review)
    if refusal is not None:
        raise Conflict(refusal, current_status=str(current), requested_status=str(requested))
    moved = requested != current
    before: dict[str, Any] = {"status": str(current)}
    after: dict[str, Any] = {"status": str(requested)}
    if moved:
        await _move_status(
            session=session,
            brand=brand,
            current=current,
            requested=requested,
            effective_on=effective_on,
        )
    was_flagged = brand.review_required
    if change.clear_review:
        before["review_required"], after["review_required"] = brand.review_required, False
        brand.review_required = False
        brand.review_reason = None
    now = _now()
    brand.updated_at = now
    entry = _history(
        brand_id=brand.id,
        principal=principal,
        action="status_changed" if moved else "review_cleared",
        at=now,
        before=before,
        after=after,
        effective_on=effective_on if moved else None,
        reason=change.reason,
    )
    await repository.add(session=session, items=[BrandHistory(**entry)])
    item = to_read(brand, catalogue=catalogue, today=today).model_dump(mode="json")
    if moved:
        await emit(
            session,
            source=EVENT_SOURCE,
            type="brand.status_changed",
            subject=subject_of(brand.id),
            data={
                "id": brand.id,
                "from": str(current),
                "to": str(requested),
                "effective_on": effective_on.isoformat(),
                "reason": change.reason,
                "item": item,
            },
            county_code=brand.county_code,
        )
    if change.clear_review and was_flagged:
        await emit(
            session,
            source=EVENT_SOURCE,
            type="brand.review_flagged",
            subject=subject_of(brand.id),
            data={
                "id": brand.id,
                "flagged": False,
                "source": None,
                "reference": None,
                "reason": change.reason,
                "item": item,
            },
            county_code=brand.county_code,
        )
    return brand


# Review flags --------------------------------------------------------------------------


async def _emit_review_flags(
    *,
    session: AsyncSession,
    brand_ids: Sequence[str],
    flagged: bool,
    source: str,
    reference: str,
    reason: str,
    catalogue: Catalogue,
    today: date,
) -> None:
    """A `brand.review_flagged` event for each listing a flag put under review or released."""
    listings = await repository.listings_by_ids(session=session, brand_ids=brand_ids)
    await emit_many(
        session,
        source=EVENT_SOURCE,
        events=[
            NewEvent(
                type="brand.review_flagged",
                subject=subject_of(listing.id),
                data={
                    "id": listing.id,
                    "flagged": flagged,
                    "source": source,
                    "reference": reference,
                    "reason": reason,
                    "item": to_read(listing, catalogue=catalogue, today=today).model_dump(
                        mode="json"
                    ),
                },
                county_code=listing.county_code,
            )
            for listing in listings
        ],
    )


async def raise_review_flag(
    *,
    session: AsyncSession,
    data: ReviewFlagCreate,
    today: date,
    principal: Principal,
    catalogue: Catalogue,
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
        session=session, credit_code=data.enterprise_credit_code, today=today
    )
    now = _now()
    reason = _review_reason(data.source, data.reference, data.reason)
    await repository.set_review_required(session=session, brand_ids=ids, reason=reason, at=now)
    await repository.insert_history(
        session=session,
        rows=[
            _history(
                brand_id=brand_id,
                principal=principal,
                action="review_flagged",
                at=now,
                before={"review_required": None},
                after={"review_required": True, "source": data.source, "reference": data.reference},
                reason=reason,
            )
            for brand_id in ids
        ],
    )
    flag = ReviewFlag(
        source=data.source,
        reference=data.reference,
        enterprise_credit_code=data.enterprise_credit_code,
        reason=data.reason,
        flagged_brand_ids=ids,
        raised_by=principal.client_id,
        created_at=now,
    )
    await repository.add(session=session, items=[flag])
    await _emit_review_flags(
        session=session,
        brand_ids=ids,
        flagged=True,
        source=data.source,
        reference=data.reference,
        reason=data.reason,
        catalogue=catalogue,
        today=today,
    )
    return ReviewFlagRead(
        reference=data.reference, source=data.source, flagged_brand_ids=ids, created=True
    )


def _review_reason(source: str, reference: str, reason: str) -> str:
    """A listing's `review_reason` while a flag holds it under review."""
    return f"{source} {reference}: {reason}"


# The history entries of an operator taking a listing out of review (a status action with
# `clear_review`): the flags raised before are dealt with.
REVIEWED = ("review_cleared", "status_changed")


async def _reviewed_at(*, session: AsyncSession, brand_ids: list[str]) -> dict[str, datetime]:
    """When an operator last took each listing out of review."""
    entries = await repository.review_changes(
        session=session, brand_ids=brand_ids, actions=REVIEWED
    )
    return {
        entry.brand_id: as_utc(entry.at)
        for entry in entries
        if (entry.after or {}).get("review_required") is False
    }


def _holding_flag(
    brand_id: str, others: list[ReviewFlag], reviewed_at: datetime | None
) -> ReviewFlag | None:
    """The latest other standing flag that holds a listing under review: one that flagged it
    after an operator last took it out of review."""
    holding = [
        flag
        for flag in others
        if brand_id in flag.flagged_brand_ids
        and (reviewed_at is None or as_utc(flag.created_at) > reviewed_at)
    ]
    return holding[-1] if holding else None


async def _withdraw(
    *,
    session: AsyncSession,
    flag: ReviewFlag,
    reason: str,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
) -> None:
    """Take the flag's listings out of review unless another flag holds them, with a history
    entry on each listing it still held under review."""
    states = await repository.review_states(session=session, brand_ids=flag.flagged_brand_ids)
    under_review = [i for i in flag.flagged_brand_ids if states.get(i, (False, None))[0]]
    others = await repository.standing_review_flags(
        session=session,
        credit_code=flag.enterprise_credit_code,
        excluding=(flag.source, flag.reference),
    )
    reviewed_at = await _reviewed_at(session=session, brand_ids=under_review)
    now = _now()
    cleared: list[str] = []
    still_flagged: list[str] = []
    entries = []
    for brand_id in under_review:
        holding = _holding_flag(brand_id, others, reviewed_at.get(brand_id))
        new_reason = (
            _review_reason(holding.source, holding.reference, holding.reason) if holding else None
        )
        await repository.set_review(
            session=session,
            brand_ids=[brand_id],
            required=holding is not None,
            reason=new_reason,
            at=now,
        )
        (still_flagged if holding else cleared).append(brand_id)
        entries.append(
            _history(
                brand_id=brand_id,
                principal=principal,
                action="review_flag_cleared",
                at=now,
                before={"review_required": True, "review_reason": states[brand_id][1]},
                after={
                    "review_required": holding is not None,
                    "review_reason": new_reason,
                    "source": flag.source,
                    "reference": flag.reference,
                },
                reason=_review_reason(flag.source, flag.reference, reason),
            )
        )
    await repository.insert_history(session=session, rows=entries)
    flag.cleared_at = now
    flag.cleared_by = principal.client_id
    flag.clear_reason = reason
    flag.cleared_brand_ids = cleared
    flag.still_flagged_brand_ids = still_flagged
    await repository.add(session=session, items=[flag])
    await _emit_review_flags(
        session=session,
        brand_ids=cleared,
        flagged=False,
        source=flag.source,
        reference=flag.reference,
        reason=reason,
        catalogue=catalogue,
        today=today,
    )


async def clear_review_flag(
    *,
    session: AsyncSession,
    source: str,
    reference: str,
    data: ReviewFlagClear,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
) -> ReviewFlagClearRead:
    """Withdraw a flag at its raiser's request, once: a repeat answers the first result."""
    flag = await repository.get_review_flag(
        session=session, source=source, reference=reference, for_update=True
    )
    if flag is None:
        raise NotFound(f"No review flag {reference!r} from {source!r}.")
    if flag.raised_by != principal.client_id:
        raise Forbidden(
            f"Only {flag.raised_by!r}, which raised this flag, may withdraw it; an operator "
            "takes a listing out of review with a status action and clear_review.",
            raised_by=flag.raised_by,
        )
    changed = flag.cleared_at is None
    if changed:
        await _withdraw(
            session=session,
            flag=flag,
            reason=data.reason,
            principal=principal,
            catalogue=catalogue,
            today=today,
        )
    assert flag.cleared_at is not None
    return ReviewFlagClearRead(
        source=flag.source,
        reference=flag.reference,
        enterprise_credit_code=flag.enterprise_credit_code,
        cleared_at=as_utc(flag.cleared_at),
        cleared_brand_ids=list(flag.cleared_brand_ids or []),
        still_flagged_brand_ids=list(flag.still_flagged_brand_ids or []),
        changed=changed,
    )


# Lists, exports and statistics ---------------------------------------------------------


def check_filters(filters: ListingFilters, catalogue: Catalogue) -> None:
    """422 for a county outside the configured list or an inverted date range."""
    errors = []
    if filters.county_code is not None:
        error = catalogue.county_code_error(filters.county_code)
        if error:
            errors.append(FieldError("county_code", error))
    if filters.awarded_from and filters.awarded_to and filters.awarded_from > filters.awarded_to:
        errors.append(FieldError("awarded_to", "is before awarded_from"))
    if errors:
        raise ValidationFailed(errors)


async def list_listings(
    *,
    engine: AsyncEngine,
    filters: ListingFilters,
    catalogue: Catalogue,
    today: date,
    page: PageParams,
    counties: frozenset[str] | None = None,
) -> Page[BrandRead]:
    """One page of listings matching `filters`, newest first, of `counties` only (None: all)."""
    check_filters(filters, catalogue)
    rows = await repository.list_listings(
        engine=engine,
        filters=filters,
        today=today,
        page=page,
        county_codes=counties,
        suspended_before=catalogue.suspension_cutoff(today),
    )
    return rows.map(partial(to_read, catalogue=catalogue, today=today))


def export_rows(
    *,
    session: AsyncSession,
    filters: ListingFilters,
    catalogue: Catalogue,
    today: date,
    fields: Sequence[str],
    counties: frozenset[str] | None = None,
    typed: bool = False,
) -> AsyncIterator[list[Any]]:
    """The rows of an export, of `counties` only (None: all): JSON values for CSV, Python
    values (dates, numbers, booleans) for a workbook when `typed`; the filters are checked
    now, before the response starts."""
    mode = "python" if typed else "json"
    check_filters(filters, catalogue)

    async def rows() -> AsyncIterator[list[Any]]:
        async for row in repository.stream_listings(
            session=session,
            filters=filters,
            today=today,
            county_codes=counties,
            suspended_before=catalogue.suspension_cutoff(today),
        ):
            item = to_read(row, catalogue=catalogue, today=today).model_dump(mode=mode)
            yield [_cell(item[name]) for name in fields]

    return rows()


AREA_SEPARATOR = ";"
"""Between the county codes of a protected area in a CSV or workbook cell."""


def _cell(value: Any) -> Any:
    """An export cell: a list (a protected area) as its codes joined by `AREA_SEPARATOR`."""
    return AREA_SEPARATOR.join(value) if isinstance(value, list) else value


def _stats_groups(
    counted: Mapping[tuple[str, str], Any], counties: Iterable[str]
) -> list[StatsGroup]:
    """Every county × every tier, zeros where nothing was counted."""
    groups = []
    for county in counties:
        for tier in Tier:
            row = counted.get((county, str(tier)))
            groups.append(
                StatsGroup(
                    county_code=county,
                    tier=tier,
                    new_awards=int(row.new_awards) if row else 0,
                    in_force=int(row.in_force) if row else 0,
                    in_force_international=int(row.in_force_international) if row else 0,
                )
            )
    return groups


async def stats(
    *,
    session: AsyncSession,
    year: int,
    county_code: str | None,
    as_of: date | None,
    catalogue: Catalogue,
    counties: frozenset[str] | None = None,
) -> BrandStatsRead:
    """New awards and listings in force by county and tier, every group and the totals; of
    `counties` only (None: all) for a county-bound reader."""
    if county_code is not None:
        error = catalogue.county_code_error(county_code)
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
    counted = {
        (row.county_code, row.tier): row
        for row in rows
        if counties is None or row.county_code in counties
    }
    shown = {county_code} if county_code else catalogue.regions | {c for c, _ in counted}
    if counties is not None:
        shown &= counties
    groups = _stats_groups(counted, sorted(shown))
    return BrandStatsRead(
        year=year,
        as_of=day,
        groups=groups,
        by_county=[
            CountyCounts(county_code=county, **_sum(g for g in groups if g.county_code == county))
            for county in sorted(shown)
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
        values: dict[str, Any] = {name: value for name, value in raw.items() if value != ""}
        if "protected_area" in values:
            values["protected_area"] = [
                code.strip()
                for code in values["protected_area"].split(AREA_SEPARATOR)
                if code.strip()
            ]
        try:
            yield line, BrandCreate.model_validate(values)
        except ValidationError as exc:
            errors.extend(
                RowError(line, field_name(error["loc"]), str(error["msg"]))
                for error in exc.errors()
            )


def _import_failure(errors: list[RowError], rows: int, report: dict[str, Any]) -> ValidationFailed:
    """The 422 of an import with bad rows, carrying the whole report."""
    failure = ValidationFailed(
        [FieldError(f"line {e.line}: {e.field}", e.message) for e in errors[:1]],
        detail=f"{len({e.line for e in errors})} of {rows} rows are invalid; nothing was stored.",
    )
    failure.extra.update(report)
    return failure


async def import_listings(
    *,
    session: AsyncSession,
    upload: Upload,
    dry_run: bool,
    catalogue: Catalogue,
    principal: Principal,
    batch_size: int,
    today: date,
) -> dict[str, Any]:
    """Check every row in file order and store all of them, or none when one is bad; a row of
    a county outside the principal's binding refuses the whole file (403). The file is CSV
    (UTF-8 or GB18030) or a workbook, whose header may use the fields' `LABELS`.

    Rows are stored batch by batch inside the request's transaction, so later rows are
    checked against earlier ones through the database; a dry run or a bad row rolls the
    whole transaction back. A bad row is a 422 with the report, dry run or not.
    """
    await plan_each_statement(session)
    errors: list[RowError] = []
    seen = 0
    outside: list[int] = []
    batch = AwardBatch(session=session, catalogue=catalogue, principal=principal, today=today)

    def counted() -> Iterator[tuple[int, dict[str, str]]]:
        nonlocal seen
        rows = upload.rows(
            required=IMPORT_REQUIRED, allowed=IMPORT_FIELDS, labels=LABELS, ignored=LABELS
        )
        for item in rows:
            seen += 1
            # A row without a county is refused for its missing field instead.
            county = (item[1].get("county_code") or "").strip()
            if county and not principal.covers(county):
                outside.append(item[0])
            yield item

    # Rows are read and parsed in a worker thread, the next batch while this one is applied.
    parsed = batched(_parse_rows(counted(), errors), batch_size)
    async with aclosing(drawn_in_thread(parsed, ahead=True)) as batches:
        async for candidates in batches:
            violations = await batch.apply(candidates, reason=f"{upload.kind.upper()} import")
            errors.extend(RowError(line, v.field, v.message) for line, v in violations)
    if seen == 0:
        raise ValidationFailed.single("file", "The file has a header but no rows.")
    principal.require_rows_in_binding(outside)
    errors.sort(key=lambda error: error.line)
    stored = 0 if errors or dry_run else batch.stored
    report = upload.report(rows=seen, errors=errors, dry_run=dry_run, stored=stored)
    if errors:
        # A dry run too: the same 422 and report, the transaction rolled back.
        raise _import_failure(errors, seen, report)
    if dry_run:
        await repository.discard(session=session)
    return report


# Counterfeit notices -------------------------------------------------------------------


NOTICE_FIELDS = ("brand_id", "case_kind", "occurred_on", "county_code", "summary")
"""What a repeat of a notice (same source and reference) must carry again."""


def notice_read(notice: CounterfeitNotice) -> CounterfeitNoticeRead:
    return CounterfeitNoticeRead.model_validate(
        {**notice.model_dump(), "created_at": as_utc(notice.created_at)}
    )


def _repeat(stored: CounterfeitNotice, data: CounterfeitNoticeCreate) -> CounterfeitNoticeRead:
    """The stored notice for a repeat; 409 when the repeat says something else."""
    differing = [name for name in NOTICE_FIELDS if getattr(stored, name) != getattr(data, name)]
    if differing:
        raise Conflict(
            f"A notice {data.reference!r} from {data.source!r} is already stored with other "
            f"values ({', '.join(differing)}); a notice is not changed by sending it again.",
            errors=[
                FieldError(name, "differs from the stored notice").as_dict() for name in differing
            ],
        )
    return notice_read(stored)


async def notify_counterfeit(
    *,
    session: AsyncSession,
    data: CounterfeitNoticeCreate,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
) -> tuple[CounterfeitNoticeRead, bool]:
    """Record a counterfeiting case against a listing once per (source, reference): the
    listing counts it and its history records it, and it stays out of review (the listing
    is the victim). A repeat answers the stored notice (created False)."""
    stored = await repository.get_counterfeit_notice(
        session=session, source=data.source, reference=data.reference
    )
    if stored is not None:
        return _repeat(stored, data), False
    errors = [
        FieldError(e.field, e.message)
        for e in business_date_errors({"occurred_on": data.occurred_on}, today=today)
    ]
    county_error = catalogue.county_code_error(data.county_code)
    if county_error:
        errors.append(FieldError("county_code", county_error))
    if errors:
        raise ValidationFailed(errors)
    brand = await repository.get_brand(session=session, brand_id=data.brand_id)
    if brand is None:
        raise NotFound(f"No brand listing with id {data.brand_id!r}.", field="brand_id")
    now = _now()
    notice = CounterfeitNotice(**data.model_dump(), raised_by=principal.client_id, created_at=now)
    # The notice's key decides between concurrent copies: the one stored first is answered.
    if not await repository.insert_counterfeit_notice(session=session, notice=notice):
        stored = await repository.get_counterfeit_notice(
            session=session, source=data.source, reference=data.reference
        )
        assert stored is not None
        return _repeat(stored, data), False
    cases = await repository.count_counterfeit_case(session=session, brand_id=brand.id, at=now)
    entry = _history(
        brand_id=brand.id,
        principal=principal,
        action="counterfeit_noticed",
        at=now,
        before={"counterfeit_cases": cases - 1},
        after={"counterfeit_cases": cases, "source": data.source, "reference": data.reference},
        effective_on=data.occurred_on,
        reason=f"{data.source} {data.reference} ({data.case_kind}): {data.summary}",
    )
    await repository.insert_history(session=session, rows=[entry])
    return notice_read(notice), True


async def counterfeit_notices(
    *, session: AsyncSession, brand_id: str, page: PageParams
) -> Page[CounterfeitNoticeRead]:
    """One page of the counterfeiting cases notified against a listing."""
    notices = await repository.counterfeit_notices_page(
        session=session, brand_id=brand_id, page=page
    )
    return notices.map(notice_read)


# Quality awards ------------------------------------------------------------------------


def award_subject(award_id: str) -> str:
    """The subject of an award's change events."""
    return f"awards/{award_id}"


def award_etag(award: Award) -> str:
    """The award's current ETag; every change bumps its version."""
    return make_etag(award.id, award.version)


def award_read(award: Award, *, catalogue: Catalogue) -> AwardRead:
    """The API view of a stored award."""
    policy = catalogue.award_kinds.get(award.kind)
    return AwardRead.model_validate(
        {
            **{
                name: getattr(award, name)
                for name in AwardRead.model_fields
                if name != "kind_label"
            },
            "kind_label": policy.label if policy else award.kind,
            "created_at": as_utc(award.created_at),
            "updated_at": as_utc(award.updated_at),
        }
    )


async def get_award(
    *, session: AsyncSession, award_id: str, principal: Principal | None = None
) -> Award:
    """The award with this id; 404 otherwise, and for an award of a county the `principal`
    may not read."""
    award = await repository.get_award(session=session, award_id=award_id)
    if award is None or (principal is not None and not principal.reads(award.county_code)):
        raise NotFound(f"No award with id {award_id!r}.", field="id")
    return award


def _award_history(
    *,
    award_id: str,
    principal: Principal,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    effective_on: date | None = None,
    reason: str | None = None,
) -> AwardHistory:
    return AwardHistory(
        id=new_id(),
        award_id=award_id,
        action=action,
        actor=principal.client_id,
        actor_name=principal.client_name,
        reason=reason,
        at=at,
        effective_on=effective_on,
        before=before or None,
        after=after or None,
    )


def _quality_award_errors(
    *,
    catalogue: Catalogue,
    today: date,
    kind: str,
    level: str,
    county_code: str,
    awarded_on: date | None,
    excellence_score: float | None,
) -> list[FieldError]:
    """The award's checks against reference data: a configured kind at one of its levels,
    a served county, the date policy, and the score a self-assessment reports."""
    errors = business_date_errors({"awarded_on": awarded_on}, today=today)
    policy = catalogue.award_kinds.get(kind)
    if policy is None:
        errors.append(
            FieldError("kind", f"unknown award kind; one of {', '.join(catalogue.award_kinds)}")
        )
    elif level not in policy.levels:
        errors.append(
            FieldError(
                "level",
                f"{kind} ({policy.label}) is conferred at {', '.join(policy.levels)}, not {level}",
            )
        )
    elif policy.score_required and excellence_score is None:
        errors.append(
            FieldError("excellence_score", f"required for {kind} ({policy.label}): GB/T 19580")
        )
    county_error = catalogue.county_code_error(county_code)
    if county_error:
        errors.append(FieldError("county_code", county_error))
    return errors


def _award_conflict(existing: Award) -> Conflict:
    """The 409 of a second award of one kind, level and year to one enterprise."""
    message = (
        f"the enterprise already has the {existing.level} {existing.kind} award of "
        f"{existing.year} ({existing.id})"
    )
    return Conflict(
        f"kind: {message}",
        existing_id=existing.id,
        errors=[FieldError("kind", message).as_dict()],
    )


async def create_award(
    *,
    session: AsyncSession,
    data: AwardCreate,
    catalogue: Catalogue,
    principal: Principal,
    today: date,
) -> Award:
    """Record an award; 403 outside the principal's counties, 422 for a broken rule, 409 for
    a second award of its kind, level and year to the enterprise (concurrent ones too)."""
    principal.require_county(data.county_code)
    errors = _quality_award_errors(
        catalogue=catalogue,
        today=today,
        kind=data.kind,
        level=data.level,
        county_code=data.county_code,
        awarded_on=data.awarded_on,
        excellence_score=data.excellence_score,
    )
    if errors:
        raise ValidationFailed(errors)
    same_award = partial(
        repository.same_award,
        session=session,
        credit_code=data.enterprise_credit_code,
        kind=data.kind,
        level=str(data.level),
        year=data.year,
    )
    existing = await same_award()
    if existing is not None:
        raise _award_conflict(existing)
    now = _now()
    award = Award(
        **data.model_dump(),
        id=new_id(),
        status=str(AwardStatus.awarded),
        created_at=now,
        updated_at=now,
    )
    award.level = str(data.level)
    entry = _award_history(
        award_id=award.id,
        principal=principal,
        action="created",
        at=now,
        after={"status": str(AwardStatus.awarded)},
        effective_on=data.awarded_on,
    )
    if not await repository.insert_award(session=session, award=award, items=[entry]):
        existing = await same_award()
        if existing is None:
            raise Conflict("The award conflicts with one stored meanwhile; send it again.")
        raise _award_conflict(existing)
    await emit(
        session,
        source=EVENT_SOURCE,
        type="award.created",
        subject=award_subject(award.id),
        data={
            "id": award.id,
            "item": award_read(award, catalogue=catalogue).model_dump(mode="json"),
        },
        county_code=award.county_code,
    )
    return award


async def update_award(
    *,
    session: AsyncSession,
    award: Award,
    data: AwardUpdate,
    catalogue: Catalogue,
    principal: Principal,
    if_match: str | None,
    today: date,
) -> Award:
    """Apply field edits, checked like a new award; every change goes to the history. The
    award's county, and the county it moves to, must be the principal's."""
    principal.require_county(award.county_code)
    requested = data.model_dump(exclude_unset=True)
    nulls = sorted(
        name
        for name, value in requested.items()
        if value is None and name in {"enterprise_name", "county_code", "awarded_on"}
    )
    if nulls:
        raise ValidationFailed([FieldError(name, "may not be null") for name in nulls])
    if requested.get("county_code") is not None:
        principal.require_county(requested["county_code"])
    check_if_match(if_match, award_etag(award))
    changed = [name for name, value in requested.items() if getattr(award, name) != value]
    if not changed:
        return award
    merged = {name: getattr(award, name) for name in AwardUpdate.model_fields} | requested
    errors = _quality_award_errors(
        catalogue=catalogue,
        today=today,
        kind=award.kind,
        level=award.level,
        county_code=merged["county_code"],
        awarded_on=requested.get("awarded_on"),
        excellence_score=merged["excellence_score"],
    )
    if errors:
        raise ValidationFailed(errors)
    before = {name: _json_value(getattr(award, name)) for name in changed}
    after = {name: _json_value(requested[name]) for name in changed}
    now = _now()
    for name in changed:
        setattr(award, name, requested[name])
    award.updated_at = now
    entry = _award_history(
        award_id=award.id, principal=principal, action="updated", at=now, before=before, after=after
    )
    await repository.add(session=session, items=[award, entry])
    return award


async def change_award_status(
    *,
    session: AsyncSession,
    award: Award,
    change: AwardStatusUpdate,
    catalogue: Catalogue,
    principal: Principal,
    if_match: str | None,
    today: date,
) -> Award:
    """Revoke an award, with its reason; a revocation is final."""
    principal.require_county(award.county_code)
    check_if_match(if_match, award_etag(award))
    current, requested = AwardStatus(award.status), change.status
    if current != AwardStatus.awarded or requested != AwardStatus.revoked:
        raise Conflict(
            f"An award cannot go from {current} to {requested}; an awarded award may be revoked.",
            current_status=str(current),
            requested_status=str(requested),
        )
    effective_on = change.effective_on or today
    if effective_on > today:
        raise ValidationFailed.single("effective_on", f"{effective_on} is in the future")
    if effective_on < award.awarded_on:
        raise ValidationFailed.single(
            "effective_on", f"{effective_on} is before the award ({award.awarded_on})"
        )
    now = _now()
    award.status = str(requested)
    award.revoked_on = effective_on
    award.updated_at = now
    entry = _award_history(
        award_id=award.id,
        principal=principal,
        action="status_changed",
        at=now,
        before={"status": str(current)},
        after={"status": str(requested)},
        effective_on=effective_on,
        reason=change.reason,
    )
    await repository.add(session=session, items=[award, entry])
    await emit(
        session,
        source=EVENT_SOURCE,
        type="award.status_changed",
        subject=award_subject(award.id),
        data={
            "id": award.id,
            "from": str(current),
            "to": str(requested),
            "effective_on": effective_on.isoformat(),
            "reason": change.reason,
            "item": award_read(award, catalogue=catalogue).model_dump(mode="json"),
        },
        county_code=award.county_code,
    )
    return award


async def list_awards(
    *,
    session: AsyncSession,
    filters: AwardFilters,
    catalogue: Catalogue,
    page: PageParams,
    counties: frozenset[str] | None = None,
) -> Page[AwardRead]:
    """One page of awards matching `filters`, newest first, of `counties` only (None: all)."""
    if filters.county_code is not None:
        error = catalogue.county_code_error(filters.county_code)
        if error:
            raise ValidationFailed.single("county_code", error)
    awards = await repository.list_awards(
        session=session, filters=filters, page=page, county_codes=counties
    )
    return awards.map(partial(award_read, catalogue=catalogue))


async def award_history(
    *, session: AsyncSession, award_id: str, page: PageParams
) -> Page[BrandHistoryRead]:
    """One page of the changes to one award, oldest first."""
    entries = await repository.award_history_page(session=session, award_id=award_id, page=page)
    return entries.map(history_read)


def _award_counts(rows: Iterable[Any], catalogue: Catalogue) -> dict[str, Any]:
    """The awards of `rows`, by every configured kind and every level (zeros included)."""
    by_kind = dict.fromkeys(catalogue.award_kinds, 0)
    by_level = {str(level): 0 for level in AwardLevel}
    total = 0
    for row in rows:
        by_kind[row.kind] = by_kind.get(row.kind, 0) + int(row.awards)
        by_level[row.level] = by_level.get(row.level, 0) + int(row.awards)
        total += int(row.awards)
    return {"awards": total, "by_kind": by_kind, "by_level": by_level}


async def award_stats(
    *,
    session: AsyncSession,
    year: int,
    county_code: str | None,
    as_of: date | None,
    catalogue: Catalogue,
    counties: frozenset[str] | None = None,
) -> AwardStatsRead:
    """Awards of `year` conferred by `as_of` (default 31 December) and not revoked on it, per
    county with every configured county shown; of `counties` only for a bound reader."""
    if county_code is not None:
        error = catalogue.county_code_error(county_code)
        if error:
            raise ValidationFailed.single("county_code", error)
    day = as_of or date(year, 12, 31)
    rows = [
        row
        for row in await repository.award_stats_groups(
            session=session, year=year, as_of=day, county_code=county_code
        )
        if counties is None or row.county_code in counties
    ]
    shown = {county_code} if county_code else catalogue.regions | {r.county_code for r in rows}
    if counties is not None:
        shown &= counties
    by_county = [
        CountyAwardCounts(
            county_code=county,
            **_award_counts((r for r in rows if r.county_code == county), catalogue),
        )
        for county in sorted(shown)
    ]
    return AwardStatsRead(
        year=year,
        as_of=day,
        by_county=by_county,
        totals=AwardCounts(**_award_counts((r for r in rows if r.county_code in shown), catalogue)),
    )


def award_export_rows(
    *,
    session: AsyncSession,
    filters: AwardFilters,
    catalogue: Catalogue,
    counties: frozenset[str] | None = None,
    typed: bool = False,
) -> AsyncIterator[list[Any]]:
    """The rows of an award export, of `counties` only (None: all): JSON values for CSV,
    Python values for a workbook when `typed`; the filters are checked now."""
    mode = "python" if typed else "json"
    if filters.county_code is not None:
        error = catalogue.county_code_error(filters.county_code)
        if error:
            raise ValidationFailed.single("county_code", error)

    async def rows() -> AsyncIterator[list[Any]]:
        async for award in repository.stream_awards(
            session=session, filters=filters, county_codes=counties
        ):
            item = award_read(award, catalogue=catalogue).model_dump(mode=mode)
            yield [item[name] for name in AWARD_EXPORT_FIELDS]

    return rows()


def _parse_award_rows(
    rows: Iterator[tuple[int, dict[str, str]]], errors: list[RowError]
) -> Iterator[tuple[int, AwardCreate]]:
    for line, raw in rows:
        if "__error__" in raw:
            errors.append(RowError(line, "row", raw["__error__"]))
            continue
        values = {name: value for name, value in raw.items() if value != ""}
        try:
            yield line, AwardCreate.model_validate(values)
        except ValidationError as exc:
            errors.extend(
                RowError(line, field_name(error["loc"]), str(error["msg"]))
                for error in exc.errors()
            )


def _award_key(credit_code: str, kind: str, level: str, year: int) -> tuple[str, str, str, int]:
    return (credit_code, kind, str(level), year)


async def import_awards(
    *,
    session: AsyncSession,
    upload: Upload,
    dry_run: bool,
    catalogue: Catalogue,
    principal: Principal,
    today: date,
) -> dict[str, Any]:
    """Check every row in file order and store all of them, or none when one is bad (a 422
    with the per-row report, dry run or not); a row outside the principal's counties refuses
    the whole file (403). A row repeating a stored award, or an earlier row, is refused."""
    errors: list[RowError] = []
    outside: list[int] = []
    raw_rows = list(
        upload.rows(
            required=AWARD_IMPORT_REQUIRED,
            allowed=AWARD_IMPORT_FIELDS,
            labels=AWARD_LABELS,
            ignored=AWARD_LABELS,
        )
    )
    if not raw_rows:
        raise ValidationFailed.single("file", "The file has a header but no rows.")
    for line, raw in raw_rows:
        county = (raw.get("county_code") or "").strip()
        if county and not principal.covers(county):
            outside.append(line)
    principal.require_rows_in_binding(outside)
    candidates = list(_parse_award_rows(iter(raw_rows), errors))
    stored = await repository.awards_with_keys(
        session=session, credit_codes=(data.enterprise_credit_code for _, data in candidates)
    )
    taken = {_award_key(a.enterprise_credit_code, a.kind, a.level, a.year): a.id for a in stored}
    now = _now()
    items: list[Any] = []
    awards: list[Award] = []
    for line, data in candidates:
        found = _quality_award_errors(
            catalogue=catalogue,
            today=today,
            kind=data.kind,
            level=data.level,
            county_code=data.county_code,
            awarded_on=data.awarded_on,
            excellence_score=data.excellence_score,
        )
        key = _award_key(data.enterprise_credit_code, data.kind, data.level, data.year)
        if key in taken:
            found.append(
                FieldError(
                    "kind",
                    f"the enterprise already has the {data.level} {data.kind} award of "
                    f"{data.year} ({taken[key]})",
                )
            )
        if found:
            errors.extend(RowError(line, e.field, e.message) for e in found)
            continue
        award = Award(
            **data.model_dump(),
            id=new_id(),
            status=str(AwardStatus.awarded),
            created_at=now,
            updated_at=now,
        )
        award.level = str(data.level)
        taken[key] = f"line {line}"
        awards.append(award)
        items += [
            award,
            _award_history(
                award_id=award.id,
                principal=principal,
                action="created",
                at=now,
                after={"status": str(AwardStatus.awarded)},
                effective_on=data.awarded_on,
                reason=f"{upload.kind.upper()} import",
            ),
        ]
    errors.sort(key=lambda error: error.line)
    report = upload.report(
        rows=len(raw_rows),
        errors=errors,
        dry_run=dry_run,
        stored=0 if errors or dry_run else len(awards),
    )
    if errors:
        raise _import_failure(errors, len(raw_rows), report)
    if dry_run:
        return report
    await repository.insert_awards(session=session, items=items)
    await emit_many(
        session,
        source=EVENT_SOURCE,
        events=[
            NewEvent(
                type="award.created",
                subject=award_subject(award.id),
                data={
                    "id": award.id,
                    "item": award_read(award, catalogue=catalogue).model_dump(mode="json"),
                },
                county_code=award.county_code,
            )
            for award in awards
        ],
    )
    return report
