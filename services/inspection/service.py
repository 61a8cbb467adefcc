"""Rules of the inspection service: what a valid spot-check is, re-inspection chains,
corrections with history, the embargo, the stats, and the notices to the brand registry."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from inspection import repository
from inspection.bulletin import render_bulletin_pdf, render_bulletin_xlsx
from inspection.catalogue import PROGRAMME_FIELDS, Catalogue
from inspection.models import OutboxMessage, SpotCheck, SpotCheckHistory
from inspection.repository import SpotCheckRow
from inspection.schemas import (
    LEVEL_LABELS,
    RESULT_LABELS,
    CategoryStats,
    CountRow,
    CountyFindings,
    CountyStats,
    EquipmentCounts,
    EquipmentCountyStats,
    EquipmentGroupStats,
    EquipmentKindStats,
    FindingCounts,
    FindingRecord,
    FindingRow,
    GroupStats,
    ItemRow,
    Level,
    MetrologyCounts,
    MetrologyCountyStats,
    MetrologyGroupStats,
    MetrologyStats,
    MetrologySubjectStats,
    PassRate,
    Programme,
    ProgrammeStats,
    Result,
    SpecialEquipmentStats,
    SpotCheckCreate,
    SpotCheckFields,
    SpotCheckFilters,
    SpotCheckHistoryList,
    SpotCheckHistoryRead,
    SpotCheckRead,
    SpotCheckStats,
    SpotCheckUpdate,
    StatsRow,
)
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.dates import business_date_errors
from kit.db import as_utc, read_concurrently, values_of
from kit.errors import Conflict, FieldError, NotFound, ValidationFailed, field_name
from kit.events import NewEvent, emit_many, pending_events, reschedule, withdraw
from kit.identifiers import new_id
from kit.outbox import (
    DELIVERED,
    FAILED,
    HELD,
    PENDING,
    WITHDRAWN,
    Postpone,
    Send,
    Step,
    Wait,
    Withdraw,
)
from kit.pagination import Page, PageParams
from kit.pdf import find_font

REVIEW_FLAG = "brand_review_flag"
ALIASES = frozenset({"inspected_on"})
"""Fields a request may send that are another field under a programme's own name."""
RECORDED_FIELDS = tuple(name for name in SpotCheckFields.model_fields if name not in ALIASES)
CHAIN_KEYS = ("plan_code", "sample_code")


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_published(spot_check: SpotCheck | SpotCheckRow, today: date) -> bool:
    """A result is public from its bulletin day on."""
    return spot_check.published_on is not None and spot_check.published_on <= today


def public_final_result(spot_check: SpotCheck | SpotCheckRow, today: date) -> Result:
    """An original's result as the public knows it on `today`: an overturning re-inspection
    counts from its own bulletin day on, and until then the original's result stands.
    (`repository.public_pass` is the same rule in SQL.)"""
    overturned = spot_check.overturned_on is not None and spot_check.overturned_on <= today
    return Result.passed if spot_check.result == Result.passed or overturned else Result.failed


@dataclass(frozen=True)
class Embargo:
    """What a reader may see of the results on `today`: those published by then, and what
    follows from them alone; everything when `lifted` (a `spot-checks:write` client that
    may, and here does, see results before their bulletin)."""

    today: date
    lifted: bool = False

    def shows(self, spot_check: SpotCheck | SpotCheckRow) -> bool:
        return self.lifted or is_published(spot_check, self.today)

    def final_result(self, spot_check: SpotCheck | SpotCheckRow) -> Result | None:
        """An original's result after its re-inspections as this reader may know it; None
        on a re-inspection."""
        if spot_check.reinspection_of is not None:
            return None
        if self.lifted:
            return Result(spot_check.final_result)
        return public_final_result(spot_check, self.today)


EVENT_SOURCE = "inspection"
PUBLISHED, CORRECTED = "spot_check.published", "spot_check.corrected"


def subject_of(spot_check_id: str) -> str:
    """The subject of a spot-check's change events."""
    return f"spot-checks/{spot_check_id}"


def publication_at(published_on: date, timezone: str) -> datetime:
    """When a bulletin day begins on the bureau's calendar: its check's events are due."""
    return datetime.combine(published_on, time.min, ZoneInfo(timezone))


def public_item(spot_check: SpotCheck, *, catalogue: Catalogue, today: date) -> dict[str, Any]:
    """The check as a reader without the write scope sees it once it is published."""
    day = max(today, spot_check.published_on) if spot_check.published_on else today
    read = to_read(spot_check, catalogue=catalogue, embargo=Embargo(today=day))
    return read.model_dump(mode="json")


def published_event(
    spot_check: SpotCheck, *, catalogue: Catalogue, today: date, timezone: str
) -> NewEvent | None:
    """`spot_check.published`, due at the start of the check's bulletin day; None while it
    has no bulletin day."""
    if spot_check.published_on is None:
        return None
    return NewEvent(
        type=PUBLISHED,
        subject=subject_of(spot_check.id),
        data={
            "id": spot_check.id,
            "programme": spot_check.programme,
            "published_on": spot_check.published_on.isoformat(),
            "item": public_item(spot_check, catalogue=catalogue, today=today),
        },
        county_code=spot_check.county_code,
        not_before=publication_at(spot_check.published_on, timezone),
    )


async def _emit_correction(
    *,
    session: AsyncSession,
    spot_check: SpotCheck,
    changes: dict[str, list[Any]],
    reason: str,
    was_published_on: date | None,
    catalogue: Catalogue,
    today: date,
    timezone: str,
) -> None:
    """Keep the check's unpublished events at its bulletin day (dropped while it has none)
    and emit `spot_check.corrected`, not before the check is published."""
    subject = subject_of(spot_check.id)
    published_on = spot_check.published_on
    if published_on != was_published_on:
        if published_on is None:
            await withdraw(session, subject=subject)
        else:
            await reschedule(
                session, subject=subject, not_before=publication_at(published_on, timezone)
            )
    if published_on is None:
        return
    new: list[NewEvent] = []
    if was_published_on is None or was_published_on > today:
        pending = await pending_events(session, subject=subject)
        if not any(event["type"] == PUBLISHED for event in pending):
            event = published_event(spot_check, catalogue=catalogue, today=today, timezone=timezone)
            new.extend([event] if event else [])
    not_before = publication_at(published_on, timezone) if published_on > today else None
    new.append(
        NewEvent(
            type=CORRECTED,
            subject=subject,
            data={
                "id": spot_check.id,
                "programme": spot_check.programme,
                "changes": changes,
                "reason": reason,
                "item": public_item(spot_check, catalogue=catalogue, today=today),
            },
            county_code=spot_check.county_code,
            not_before=not_before,
        )
    )
    await emit_many(session, source=EVENT_SOURCE, events=new)


def _decimal(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


def decimal_text(value: Decimal) -> str:
    """A decimal as the exact text a record stores: `500`, `4.5`."""
    return format(value.normalize(), "f")


def etag_of(spot_check: SpotCheck | SpotCheckRow) -> str:
    return make_etag(spot_check.id, spot_check.version)


_STORED_FIELDS = tuple(
    name for name in SpotCheckRead.model_fields if name in SpotCheck.model_fields
)
"""The fields of the served shape read as stored; `to_read` works out or converts the rest."""


def to_read(
    spot_check: SpotCheck | SpotCheckRow, *, catalogue: Catalogue, embargo: Embargo
) -> SpotCheckRead:
    """The served shape of a spot-check, with labels beside the codes, as `embargo` lets
    its reader see it, validated from its stored values in one dict (`kit.db.values_of`)."""
    values = values_of(spot_check, _STORED_FIELDS)
    programme = Programme(values["programme"])
    level = Level(values["level"])
    result = Result(values["result"])
    values.update(
        programme=programme,
        programme_label=catalogue.programme_label(programme.value),
        level=level,
        level_label=LEVEL_LABELS[level],
        product_category_label=catalogue.category_label(values["product_category"]),
        result=result,
        result_label=RESULT_LABELS[result],
        published=is_published(spot_check, embargo.today),
        final_result=embargo.final_result(spot_check),
        metrology_subject_label=catalogue.subject_label(values["metrology_subject"]),
        nominal_quantity=_decimal(values["nominal_quantity"]),
        measured_shortfall=_decimal(values["measured_shortfall"]),
        tolerated_deficiency=_decimal(values["tolerated_deficiency"]),
        equipment_kind_label=catalogue.equipment_kind_label(values["equipment_kind"]),
        inspected_on=values["sampled_on"] if programme is Programme.special_equipment else None,
        created_at=as_utc(values["created_at"]),
        updated_at=as_utc(values["updated_at"]),
    )
    return SpotCheckRead.model_validate(values)


async def visible_spot_check(
    *,
    session: AsyncSession,
    spot_check_id: str,
    embargo: Embargo,
    principal: Principal | None = None,
) -> SpotCheck:
    """The spot-check with this id; an embargoed one exists only for those who may see it,
    one of a county outside the principal's readable counties for no one."""
    spot_check = await repository.get_spot_check(session=session, spot_check_id=spot_check_id)
    if spot_check is None or _withheld(spot_check, embargo, principal):
        raise NotFound(f"No spot-check with id {spot_check_id!r}.")
    return spot_check


def _withheld(
    spot_check: SpotCheck | SpotCheckRow, embargo: Embargo, principal: Principal | None
) -> bool:
    """Whether the reader is told there is no such spot-check: an embargoed result, or one
    of a county outside the principal's readable counties."""
    return not embargo.shows(spot_check) or (
        principal is not None and not principal.reads(spot_check.county_code)
    )


async def readable_spot_check(
    *, engine: AsyncEngine, spot_check_id: str, embargo: Embargo, principal: Principal
) -> SpotCheckRow:
    """The spot-check with this id as its GET answers from it, one row; 404 as
    `visible_spot_check`."""
    row = await repository.spot_check_row(engine=engine, spot_check_id=spot_check_id)
    if row is None or _withheld(row, embargo, principal):
        raise NotFound(f"No spot-check with id {spot_check_id!r}.")
    return row


async def list_spot_checks(
    *,
    engine: AsyncEngine,
    filters: SpotCheckFilters,
    page: PageParams,
    catalogue: Catalogue,
    today: date,
) -> Page[SpotCheckRead]:
    """One page of the filtered spot-checks, oldest first, as the embargo lets them out."""
    rows = await repository.list_spot_checks(engine=engine, filters=filters, today=today, page=page)
    embargo = Embargo(today=today, lifted=filters.include_unpublished)
    return rows.map(lambda row: to_read(row, catalogue=catalogue, embargo=embargo))


def pydantic_errors(exc: ValidationError) -> list[FieldError]:
    """Field-named errors from a pydantic validation failure."""
    return [
        FieldError(field_name(error["loc"]), str(error["msg"]))
        for error in exc.errors(include_url=False)
    ]


def _reference_errors(record: SpotCheckFields, catalogue: Catalogue) -> list[FieldError]:
    """The category (one of its programme's) and the county must be configured ones."""
    errors = []
    if record.product_category is not None and (
        category_error := catalogue.category_error(
            record.product_category, programme=record.programme.value
        )
    ):
        errors.append(FieldError("product_category", category_error))
    if county_error := catalogue.county_code_error(record.county_code):
        errors.append(FieldError("county_code", county_error))
    return errors


def _date_errors(record: SpotCheckFields, catalogue: Catalogue, today: date) -> list[FieldError]:
    """The suite's date policy (kit.dates): a sample is taken between 1949-10-01 and today,
    its bulletin scheduled at most the catalogue's horizon ahead; and a result is not
    published before it was sampled."""
    errors = business_date_errors({"sampled_on": record.sampled_on}, today=today)
    errors += business_date_errors(
        {"published_on": record.published_on},
        today=today,
        horizon_years=catalogue.bulletin_horizon_years,
    )
    if record.published_on is not None and record.published_on < record.sampled_on:
        errors.append(FieldError("published_on", "a result is published after it was sampled"))
    return errors


def _result_errors(record: SpotCheckFields) -> list[FieldError]:
    """A failure names its items (a refusal none), a pass has none and violates nothing."""
    errors = []
    failed = record.result is Result.failed
    if record.refused:
        if not failed:
            errors.append(
                FieldError("result", "a refusal to be sampled counts as a failure: use 'fail'")
            )
        if record.nonconforming_items:
            errors.append(
                FieldError("nonconforming_items", "a refused sampling has no test results")
            )
    elif failed and not record.nonconforming_items:
        errors.append(
            FieldError("nonconforming_items", "a failed check must name at least one item")
        )
    if not failed and record.nonconforming_items:
        errors.append(FieldError("nonconforming_items", "a passed check has no failed items"))
    if not failed and record.mandatory_standard_violation:
        errors.append(
            FieldError("mandatory_standard_violation", "only a failed check violates a standard")
        )
    return errors


def _programme_field_errors(record: SpotCheckFields, catalogue: Catalogue) -> list[FieldError]:
    """The fields the programme (and metrology subject) requires are filled in, those it
    does not hold are empty, and its codes are its catalogue's."""
    rule = catalogue.programmes.get(record.programme.value)
    if rule is None:
        return [FieldError("programme", f"programme {record.programme.value!r} is not configured")]
    errors = []
    subject = record.metrology_subject
    if subject is not None and rule.subjects and subject not in rule.subjects:
        known = ", ".join(rule.subjects)
        errors.append(
            FieldError(
                "metrology_subject", f"unknown metrology subject {subject!r}; known: {known}"
            )
        )
    required, allowed = rule.required_fields(subject), rule.allowed_fields(subject)
    of = f"a {rule.code} record" + (f" of subject {subject}" if subject in rule.subjects else "")
    for name in PROGRAMME_FIELDS:
        value = getattr(record, name)
        if value is None and name in required:
            errors.append(FieldError(name, f"{of} requires it"))
        elif value is not None and name not in allowed:
            errors.append(FieldError(name, f"{of} does not record it"))
    kind = record.equipment_kind
    if kind is not None and rule.equipment_kinds and kind not in rule.equipment_kinds:
        known = ", ".join(rule.equipment_kinds)
        errors.append(FieldError("equipment_kind", f"unknown kind {kind!r}; known: {known}"))
    unit = record.quantity_unit
    if unit is not None and rule.quantity_units and unit not in rule.quantity_units:
        known = ", ".join(rule.quantity_units)
        errors.append(FieldError("quantity_unit", f"unknown unit {unit!r}; known: {known}"))
    return errors


def _metrology_errors(record: SpotCheckFields) -> list[FieldError]:
    """Nonconforming instruments are among those checked; a check fails exactly when it
    found one. A prepackaged-quantity batch fails exactly when a package falls short by more
    than the tolerated deficiency (`measured_shortfall` is the largest shortfall found)."""
    errors = []
    checked, nonconforming = record.instruments_checked, record.instruments_nonconforming
    if checked is not None and nonconforming is not None and nonconforming > checked:
        errors.append(
            FieldError("instruments_nonconforming", f"more than the {checked} instruments checked")
        )
    failed = record.result is Result.failed
    if nonconforming is not None and not record.refused and failed != (nonconforming > 0):
        errors.append(
            FieldError(
                "result",
                "a metrology check fails exactly when it finds a nonconforming instrument",
            )
        )
    shortfall, tolerated = record.measured_shortfall, record.tolerated_deficiency
    if shortfall is not None and tolerated is not None and failed != (shortfall > tolerated):
        verdict = "fail" if shortfall > tolerated else "pass"
        errors.append(
            FieldError(
                "result",
                f"a shortfall of {shortfall} against a tolerated deficiency of {tolerated} "
                f"is a {verdict!r}",
            )
        )
    return errors


def _equipment_errors(record: SpotCheckFields, today: date) -> list[FieldError]:
    """An inspection's day is its sampling day; the next inspection is due after this one,
    within the date policy's reach."""
    errors = []
    if record.inspected_on is not None:
        if record.programme is not Programme.special_equipment:
            errors.append(FieldError("inspected_on", "only special equipment is inspected"))
        elif record.inspected_on != record.sampled_on:
            errors.append(
                FieldError(
                    "inspected_on", "it is the sampling day: send one of the two, or both equal"
                )
            )
    if record.next_due_on is None:
        return errors
    errors += business_date_errors(
        {"next_due_on": record.next_due_on}, today=today, horizon_years=NEXT_DUE_HORIZON_YEARS
    )
    if record.next_due_on <= record.sampled_on:
        errors.append(FieldError("next_due_on", "the next inspection is due after this one"))
    return errors


NEXT_DUE_HORIZON_YEARS = 10
"""The longest period between two periodic inspections of special equipment, with margin."""


def rule_errors(record: SpotCheckFields, *, catalogue: Catalogue, today: date) -> list[FieldError]:
    """What makes a record invalid beyond its fields' own shapes."""
    return [
        *_programme_field_errors(record, catalogue),
        *_reference_errors(record, catalogue),
        *_date_errors(record, catalogue, today),
        *_result_errors(record),
        *_metrology_errors(record),
        *_equipment_errors(record, today),
    ]


def _check_record(record: SpotCheckFields, *, catalogue: Catalogue, today: date) -> None:
    errors = rule_errors(record, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)


def stored_values(record: SpotCheckFields) -> dict[str, Any]:
    values = record.model_dump(mode="python", exclude=set(ALIASES))
    values["level"] = record.level.value
    values["result"] = record.result.value
    values["programme"] = record.programme.value
    for name in ("nominal_quantity", "measured_shortfall", "tolerated_deficiency"):
        if values[name] is not None:
            values[name] = decimal_text(values[name])
    values["nonconforming_items"] = [item.model_dump() for item in record.nonconforming_items]
    return values


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def recorded(spot_check: SpotCheck) -> dict[str, Any]:
    """The recorded fields of a stored spot-check."""
    return {name: getattr(spot_check, name) for name in RECORDED_FIELDS}


def snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded fields of a new check as the history keeps them (dates as ISO text)."""
    return {name: _jsonable(values[name]) for name in RECORDED_FIELDS}


def review_notice(values: Mapping[str, Any], *, reference: str) -> dict[str, Any]:
    """The review-flag request the brand registry receives for a failed check."""
    if values["refused"]:
        what = "refused sampling"
    else:
        items = values["nonconforming_items"] or []
        what = "、".join(item["item"] for item in items) or "nonconforming"
    return {
        "enterprise_credit_code": values["enterprise_credit_code"],
        "source": "inspection",
        "reference": reference,
        "reason": f"Spot-check {values['plan_code']} sample {values['sample_code']} failed: {what}",
    }


def _release(day: date | None) -> dict[str, Any]:
    """A notice due from `day` on, or held while there is no such day."""
    return {"status": PENDING if day else HELD, "release_on": day}


AT_ONCE = {"status": PENDING, "release_on": None}


def outbox_row(
    values: Mapping[str, Any],
    *,
    spot_check_id: str,
    reference: str,
    now: datetime,
    request_id: str | None,
) -> dict[str, Any]:
    """An outbox entry carrying a review notice, due on the check's bulletin day."""
    return {
        "id": new_id(),
        "kind": REVIEW_FLAG,
        "spot_check_id": spot_check_id,
        "payload": review_notice(values, reference=reference),
        **_release(values["published_on"]),
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "request_id": request_id,
    }


def history_row(
    *,
    spot_check_id: str,
    version: int,
    action: str,
    principal: Principal,
    reason: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A history entry: `before` the changed fields' old values (None for a new check),
    `after` their new ones."""
    return {
        "id": new_id(),
        "spot_check_id": spot_check_id,
        "version": version,
        "action": action,
        "actor": principal.client_id,
        "reason": reason,
        "at": now,
        "before": before,
        "after": after,
    }


def history_read(entry: SpotCheckHistory) -> SpotCheckHistoryRead:
    """A history entry as served: a correction's `changes` are `{field: [old, new]}`, a new
    check's are its recorded fields."""
    if entry.before is None:
        changes = dict(entry.after)
    else:
        before = entry.before
        changes = {name: [before.get(name), value] for name, value in entry.after.items()}
    return SpotCheckHistoryRead(
        id=entry.id,
        version=entry.version,
        action=entry.action,
        changed_by=entry.actor,
        changed_at=as_utc(entry.at),
        reason=entry.reason,
        changes=changes,
    )


async def _refresh_chain(*, session: AsyncSession, root_id: str) -> None:
    """Carry the chain's final result to its original, where the stats read it.

    The outcome follows from the chain and is no change of the original's record: its
    version (and ETag) stays, so a reader of a published original learns nothing from a
    re-inspection still under embargo."""
    chain = await repository.chain_of(session=session, root_id=root_id)
    if not chain:
        return
    root, last = chain[0], chain[-1]
    overturned = root.result == Result.failed and last.result == Result.passed and last is not root
    overturned_on = last.published_on if overturned else None
    if (root.final_result, root.overturned_on) != (last.result, overturned_on):
        await repository.set_chain_outcome(
            session=session, root=root, final_result=last.result, overturned_on=overturned_on
        )


async def _check_reinspection(
    *,
    session: AsyncSession,
    record: SpotCheckFields,
    original_id: str,
    principal: Principal,
    catalogue: Catalogue,
) -> SpotCheck:
    """A re-inspection names a failed, sampled, not yet re-inspected check of its plan,
    sample and programme (one whose failures are re-inspected), of a county the principal
    may write (it changes that check's final result)."""
    rule = catalogue.programmes.get(record.programme.value)
    if rule is not None and not rule.reinspection:
        raise ValidationFailed.single(
            "reinspection_of",
            f"a {record.programme.value} record is not re-inspected: record a new check",
        )
    original = await repository.get_spot_check(session=session, spot_check_id=original_id)
    if original is None:
        raise ValidationFailed.single("reinspection_of", f"no spot-check with id {original_id!r}")
    principal.require_county(original.county_code)
    if original.programme != record.programme.value:
        raise Conflict(
            f"A re-inspection belongs to the programme of the check it re-inspects "
            f"({original.programme!r}), not {record.programme.value!r}.",
            field="programme",
        )
    if original.result != Result.failed:
        raise Conflict(
            "Only a failed check can be re-inspected; this one passed.",
            field="reinspection_of",
            reinspection_of=original.id,
        )
    if original.refused:
        raise Conflict(
            "The enterprise refused sampling: there is no sample to re-inspect.",
            field="reinspection_of",
        )
    if original.plan_code != record.plan_code:
        raise Conflict(
            f"A re-inspection belongs to the plan of the check it re-inspects "
            f"({original.plan_code!r}), not {record.plan_code!r}.",
            field="plan_code",
        )
    if original.sample_code != record.sample_code:
        raise Conflict(
            f"A re-inspection tests the same sample ({original.sample_code!r}), "
            f"not {record.sample_code!r}.",
            field="sample_code",
        )
    already = await repository.find_reinspection(session=session, spot_check_id=original.id)
    if already is not None:
        raise Conflict(
            "This check was already re-inspected; re-inspect the latest check of the chain.",
            field="reinspection_of",
            reinspected_by=already.id,
        )
    return original


async def _check_unique_sample(
    *,
    session: AsyncSession,
    plan_code: str,
    sample_code: str | None,
    exclude_id: str | None = None,
) -> None:
    """A sample code is recorded once per plan (its re-inspections aside)."""
    if sample_code is None:
        return
    existing = await repository.find_original(
        session=session, plan_code=plan_code, sample_code=sample_code
    )
    if existing is not None and existing.id != exclude_id:
        raise Conflict(
            f"Sample {sample_code!r} is already recorded in plan {plan_code!r}.",
            field="sample_code",
            existing_id=existing.id,
        )


async def _check_one_inspection_a_day(
    *,
    session: AsyncSession,
    equipment_code: str | None,
    sampled_on: date,
    exclude_id: str | None = None,
) -> None:
    """An item of special equipment is inspected once a day."""
    if equipment_code is None:
        return
    existing = await repository.find_inspection(
        session=session, equipment_code=equipment_code, sampled_on=sampled_on
    )
    if existing is not None and existing.id != exclude_id:
        raise repository.inspection_conflict(equipment_code, sampled_on, existing.id)


async def _original_of(
    *,
    session: AsyncSession,
    record: SpotCheckFields,
    reinspection_of: str | None,
    principal: Principal,
    catalogue: Catalogue,
) -> SpotCheck | None:
    """The check a new record re-inspects; None for an original, whose sample must be new."""
    if reinspection_of:
        return await _check_reinspection(
            session=session,
            record=record,
            original_id=reinspection_of,
            principal=principal,
            catalogue=catalogue,
        )
    await _check_unique_sample(
        session=session, plan_code=record.plan_code, sample_code=record.sample_code
    )
    await _check_one_inspection_a_day(
        session=session, equipment_code=record.equipment_code, sampled_on=record.sampled_on
    )
    return None


def _new_spot_check(
    record: SpotCheckFields, *, original: SpotCheck | None, principal: Principal, now: datetime
) -> SpotCheck:
    spot_check_id = new_id()
    return SpotCheck(
        id=spot_check_id,
        **stored_values(record),
        reinspection_of=original.id if original else None,
        root_id=original.root_id if original else spot_check_id,
        final_result=record.result.value,
        created_by=principal.client_id,
        created_at=now,
        updated_at=now,
    )


def _review_notice_row(
    spot_check: SpotCheck, *, reference: str, now: datetime, request_id: str | None
) -> OutboxMessage:
    return OutboxMessage(
        **outbox_row(
            recorded(spot_check),
            spot_check_id=spot_check.id,
            reference=reference,
            now=now,
            request_id=request_id,
        )
    )


def flags_brand_review(programme: str, catalogue: Catalogue) -> bool:
    """Whether a failure of this programme flags the enterprise's brands for review."""
    rule = catalogue.programmes.get(programme)
    return rule is not None and rule.brand_review


def _creation_rows(
    spot_check: SpotCheck,
    *,
    original: SpotCheck | None,
    reason: str | None,
    principal: Principal,
    now: datetime,
    request_id: str | None,
    catalogue: Catalogue,
) -> list[Any]:
    """The history entry of a new check, and the review notice a failed original owes
    (when its programme's failures flag brands)."""
    after = snapshot(recorded(spot_check))
    if original is not None:
        after["reinspection_of"] = original.id
    default_reason = "re-inspection recorded" if original else "spot-check recorded"
    rows: list[Any] = [
        SpotCheckHistory(
            **history_row(
                spot_check_id=spot_check.id,
                version=spot_check.version,
                action="reinspected" if original else "created",
                principal=principal,
                reason=reason or default_reason,
                before=None,
                after=after,
                now=now,
            )
        )
    ]
    reviewed = flags_brand_review(spot_check.programme, catalogue)
    if original is None and spot_check.result == Result.failed and reviewed:
        rows.append(
            _review_notice_row(spot_check, reference=spot_check.id, now=now, request_id=request_id)
        )
    return rows


async def create_spot_check(
    *,
    session: AsyncSession,
    body: SpotCheckCreate,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
    request_id: str | None,
    timezone: str,
) -> SpotCheck:
    """Record a spot-check (or a re-inspection), its history, the notices it owes and its
    `spot_check.published` event, due on its bulletin day."""
    principal.require_county(body.county_code)
    record = SpotCheckFields.model_validate(
        body.model_dump(include={*RECORDED_FIELDS, *ALIASES}, exclude_none=True)
    )
    _check_record(record, catalogue=catalogue, today=today)
    original = await _original_of(
        session=session,
        record=record,
        reinspection_of=body.reinspection_of,
        principal=principal,
        catalogue=catalogue,
    )
    now = utcnow()
    spot_check = _new_spot_check(record, original=original, principal=principal, now=now)
    await repository.add(session=session, rows=[spot_check])
    rows = _creation_rows(
        spot_check,
        original=original,
        reason=body.reason,
        principal=principal,
        now=now,
        request_id=request_id,
        catalogue=catalogue,
    )
    await repository.add(session=session, rows=rows)
    if original is not None:
        await _refresh_chain(session=session, root_id=spot_check.root_id)
        await _keep_notices_in_step(
            session=session,
            changed=spot_check,
            now=now,
            request_id=request_id,
            catalogue=catalogue,
        )
        await repository.flush(session=session)
    event = published_event(spot_check, catalogue=catalogue, today=today, timezone=timezone)
    await emit_many(session, source=EVENT_SOURCE, events=[event] if event else [])
    return spot_check


def _corrected_values(
    current: dict[str, Any], requested: dict[str, Any], *, catalogue: Catalogue, today: date
) -> dict[str, Any]:
    """A correction names at least one field, and the corrected record is validated like a
    new one: its stored values."""
    if not requested:
        raise ValidationFailed.single("body", "name at least one field to correct")
    try:
        record = SpotCheckFields.model_validate({**current, **requested})
    except ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc)) from None
    _check_record(record, catalogue=catalogue, today=today)
    return stored_values(record)


def _check_chain_keeps_its_sample(
    spot_check: SpotCheck, *, reinspection: SpotCheck | None, changed: set[str]
) -> None:
    """The plan and sample code of a re-inspection chain never change."""
    in_chain = spot_check.reinspection_of is not None or reinspection is not None
    if in_chain and changed & {*CHAIN_KEYS, "programme"}:
        field = next(name for name in ("sample_code", "plan_code", "programme") if name in changed)
        raise Conflict(
            "The programme, plan and sample code of a re-inspection chain cannot change.",
            field=field,
        )


def _check_reinspected_stays_failed(
    *, reinspection: SpotCheck | None, new_values: Mapping[str, Any]
) -> None:
    """A check that has a re-inspection stays failed: the re-inspection is corrected instead."""
    if reinspection is not None and new_values["result"] != Result.failed:
        raise Conflict(
            "This check has a re-inspection, so it stays failed; correct the re-inspection.",
            field="result",
            reinspected_by=reinspection.id,
        )


async def _check_correction_in_chain(
    *,
    session: AsyncSession,
    spot_check: SpotCheck,
    changed: set[str],
    new_values: Mapping[str, Any],
) -> None:
    """The chain rules a correction must keep, and an original's sample staying unique."""
    reinspection = await repository.find_reinspection(session=session, spot_check_id=spot_check.id)
    _check_chain_keeps_its_sample(spot_check, reinspection=reinspection, changed=changed)
    _check_reinspected_stays_failed(reinspection=reinspection, new_values=new_values)
    if spot_check.reinspection_of is None and changed & set(CHAIN_KEYS):
        await _check_unique_sample(
            session=session,
            plan_code=new_values["plan_code"],
            sample_code=new_values["sample_code"],
            exclude_id=spot_check.id,
        )
    if spot_check.reinspection_of is None and changed & {"equipment_code", "sampled_on"}:
        await _check_one_inspection_a_day(
            session=session,
            equipment_code=new_values["equipment_code"],
            sampled_on=new_values["sampled_on"],
            exclude_id=spot_check.id,
        )


def _apply(spot_check: SpotCheck, new_values: Mapping[str, Any], *, now: datetime) -> None:
    for name, value in new_values.items():
        setattr(spot_check, name, value)
    spot_check.updated_at = now
    if spot_check.reinspection_of is None:
        spot_check.final_result = spot_check.result


async def correct_spot_check(
    *,
    session: AsyncSession,
    spot_check: SpotCheck,
    body: SpotCheckUpdate,
    if_match: str | None,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
    request_id: str | None,
    timezone: str,
) -> SpotCheck:
    """Apply a correction with its reason; the history keeps what changed, and the notices
    to the brand registry and the check's events follow it."""
    principal.require_county(spot_check.county_code)
    requested = body.changes()
    if requested.get("county_code") is not None:
        principal.require_county(requested["county_code"])
    check_if_match(if_match, etag_of(spot_check))
    current = recorded(spot_check)
    new_values = _corrected_values(current, requested, catalogue=catalogue, today=today)
    changed = {name for name in RECORDED_FIELDS if current[name] != new_values[name]}
    if not changed:
        return spot_check
    await _check_correction_in_chain(
        session=session, spot_check=spot_check, changed=changed, new_values=new_values
    )
    now = utcnow()
    _apply(spot_check, new_values, now=now)
    await _refresh_chain(session=session, root_id=spot_check.root_id)
    await repository.flush(session=session)
    in_order = [name for name in RECORDED_FIELDS if name in changed]
    rows: list[Any] = [
        SpotCheckHistory(
            **history_row(
                spot_check_id=spot_check.id,
                version=spot_check.version,
                action="corrected",
                principal=principal,
                reason=body.reason,
                before={name: _jsonable(current[name]) for name in in_order},
                after={name: _jsonable(new_values[name]) for name in in_order},
                now=now,
            )
        )
    ]
    await repository.add(session=session, rows=rows)
    await _keep_notices_in_step(
        session=session, changed=spot_check, now=now, request_id=request_id, catalogue=catalogue
    )
    await repository.flush(session=session)
    await _emit_correction(
        session=session,
        spot_check=spot_check,
        changes={
            name: [_jsonable(current[name]), _jsonable(new_values[name])] for name in in_order
        },
        reason=body.reason,
        was_published_on=current["published_on"],
        catalogue=catalogue,
        today=today,
        timezone=timezone,
    )
    return spot_check


async def spot_check_history(
    *, session: AsyncSession, spot_check: SpotCheck
) -> SpotCheckHistoryList:
    """Every change of a spot-check, oldest first."""
    entries = await repository.history_of(session=session, spot_check_id=spot_check.id)
    return SpotCheckHistoryList(
        spot_check_id=spot_check.id, items=[history_read(entry) for entry in entries]
    )


# Notices to the brand registry ----------------------------------------------------------
#
# A failed original owes the brand registry a review flag from its bulletin day on, and the
# flag's clearing once the failure no longer stands: from the bulletin day of a re-inspection
# that overturns it, or at once after a correction into a pass or onto another enterprise.
# Writes keep the notices' release days in step with their chain; the worker asks `next_step`
# just before it sends one, so nothing leaves before the results it follows from are public.

REVIEW_CLEAR = "brand_review_clear"
UNDELIVERED = frozenset({PENDING, HELD})
NOT_SENT = frozenset({FAILED, WITHDRAWN})


def _fails_for(root: SpotCheck, enterprise: str) -> bool:
    """The original records a failure of this enterprise (whatever its re-inspections say)."""
    return root.result == Result.failed and root.enterprise_credit_code == enterprise


def _failure_stands(root: SpotCheck, enterprise: str) -> bool:
    """... and no re-inspection overturns it, published or not."""
    return _fails_for(root, enterprise) and root.final_result == Result.failed


def _flag_release(root: SpotCheck, enterprise: str) -> dict[str, Any]:
    """A flag is due on the original's bulletin day; one corrected away is due at once, for
    the worker to withdraw."""
    return _release(root.published_on) if _fails_for(root, enterprise) else AT_ONCE


def _clear_release(root: SpotCheck, enterprise: str) -> dict[str, Any]:
    """A clearing is due on the overturning re-inspection's bulletin day; one owed to a
    correction, or whose failure stands again (for the worker to withdraw), at once."""
    if _fails_for(root, enterprise) and root.final_result == Result.passed:
        return _release(root.overturned_on)
    return AT_ONCE


def _reschedule(notice: OutboxMessage, release: Mapping[str, Any]) -> None:
    notice.status = release["status"]
    notice.release_on = release["release_on"]


def _clear_row(
    flag: OutboxMessage, *, release: Mapping[str, Any], now: datetime, request_id: str | None
) -> OutboxMessage:
    """The clearing of a flag; its reason is written when it is sent."""
    return OutboxMessage(
        id=new_id(),
        kind=REVIEW_CLEAR,
        spot_check_id=flag.spot_check_id,
        payload={
            name: flag.payload[name] for name in ("source", "reference", "enterprise_credit_code")
        },
        **release,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        request_id=request_id,
    )


async def _keep_notices_in_step(
    *,
    session: AsyncSession,
    changed: SpotCheck,
    now: datetime,
    request_id: str | None,
    catalogue: Catalogue,
) -> None:
    """After a change in a chain: each unsent flag and clearing due when it should be, a
    clearing for every flag whose failure no longer stands, and a new flag for a failure that
    stands with no flag left standing for it (a correction into a failure, onto another
    enterprise, or taking an overturn back after its clearing went out)."""
    root = await repository.get_spot_check(session=session, spot_check_id=changed.root_id)
    assert root is not None, "a chain has its original"
    notices = await repository.notices_of(session=session, spot_check_id=root.id)
    clears = {
        n.payload["reference"]: n
        for n in notices
        if n.kind == REVIEW_CLEAR and n.status != WITHDRAWN
    }
    rows: list[OutboxMessage] = []
    flagged = False
    for flag in (n for n in notices if n.kind == REVIEW_FLAG and n.status not in NOT_SENT):
        enterprise = flag.payload["enterprise_credit_code"]
        clear = clears.get(flag.payload["reference"])
        if flag.status in UNDELIVERED:
            _reschedule(flag, _flag_release(root, enterprise))
        if clear is not None and clear.status in UNDELIVERED:
            _reschedule(clear, _clear_release(root, enterprise))
        if _failure_stands(root, enterprise):
            flagged = flagged or clear is None or clear.status != DELIVERED
        elif clear is None:
            release = _clear_release(root, enterprise)
            rows.append(_clear_row(flag, release=release, now=now, request_id=request_id))
    reviewed = flags_brand_review(root.programme, catalogue)
    if not flagged and reviewed and _failure_stands(root, root.enterprise_credit_code):
        reference = f"{changed.id}/v{changed.version}"
        rows.append(_review_notice_row(root, reference=reference, now=now, request_id=request_id))
    await repository.add(session=session, rows=rows)


def _flag_step(notice: OutboxMessage, root: SpotCheck, today: date) -> Step:
    """A flag goes out once its failure is public, unless a published re-inspection already
    overturned it; its reason names the items as they stand then."""
    if not _fails_for(root, notice.payload["enterprise_credit_code"]):
        return Withdraw("the check was corrected: it no longer records this failure")
    if not is_published(root, today):
        return Postpone(root.published_on)
    if public_final_result(root, today) == Result.passed:
        return Withdraw(
            f"a re-inspection published on {root.overturned_on} overturned the failure first"
        )
    return Send(review_notice(recorded(root), reference=notice.payload["reference"]))


def _clearing(notice: OutboxMessage, reason: str) -> Send:
    return Send({**notice.payload, "reason": reason})


async def _clear_step(
    *, session: AsyncSession, notice: OutboxMessage, root: SpotCheck, today: date, now: datetime
) -> Step:
    """A clearing follows its flag's delivery, and goes out once the failure publicly no
    longer stands."""
    reference = notice.payload["reference"]
    flag = next(
        (
            n
            for n in await repository.notices_of(session=session, spot_check_id=root.id)
            if n.kind == REVIEW_FLAG and n.payload["reference"] == reference
        ),
        None,
    )
    if flag is None or flag.status in NOT_SENT:
        return Withdraw("its review flag was never sent")
    if flag.status == HELD:
        return Postpone(None)
    if flag.status == PENDING:
        if flag.release_on is not None and flag.release_on > today:
            return Postpone(flag.release_on)
        return Wait(max(as_utc(flag.next_attempt_at), now) + timedelta(seconds=1))
    sample = f"Spot-check {root.plan_code} sample {root.sample_code}"
    if root.result == Result.passed:
        return _clearing(notice, f"{sample} was corrected into a pass")
    if not _fails_for(root, notice.payload["enterprise_credit_code"]):
        return _clearing(notice, f"{sample} was corrected onto another enterprise")
    if public_final_result(root, today) == Result.passed:
        return _clearing(
            notice,
            f"{sample}: the failure was overturned by a re-inspection published on "
            f"{root.overturned_on}",
        )
    if root.final_result == Result.passed:
        return Postpone(root.overturned_on)
    return Withdraw("the failure stands again: its overturning re-inspection was corrected")


async def next_step(
    *, session: AsyncSession, notice: OutboxMessage, today: date, now: datetime
) -> Step:
    """What the outbox does now with a notice that is due, as the embargo allows on `today`."""
    root = await repository.get_spot_check(session=session, spot_check_id=notice.spot_check_id)
    if root is None:
        return Withdraw(f"no spot-check {notice.spot_check_id!r}")
    if notice.kind == REVIEW_CLEAR:
        return await _clear_step(session=session, notice=notice, root=root, today=today, now=now)
    return _flag_step(notice, root, today)


def parse_levels(levels: str | None) -> list[Level]:
    """`national,provincial` → the levels in canonical order; all of them when absent."""
    if levels is None or not levels.strip():
        return list(Level)
    chosen: set[Level] = set()
    for part in levels.split(","):
        name = part.strip()
        if not name:
            continue
        try:
            chosen.add(Level(name))
        except ValueError:
            known = ", ".join(level.value for level in Level)
            raise ValidationFailed.single(
                "levels", f"unknown level {name!r}; known: {known}"
            ) from None
    return [level for level in Level if level in chosen]


def _rate(checked: int, passed: int) -> float | None:
    return round(passed / checked, 4) if checked else None


def _tally(rows: Iterable[StatsRow], key: Callable[[StatsRow], Any]) -> dict[Any, PassRate]:
    """Checked and passed counts per `key(row)`, with their pass rate."""
    totals: dict[Any, list[int]] = {}
    for row in rows:
        slot = totals.setdefault(key(row), [0, 0])
        slot[0] += row.checked
        slot[1] += row.passed
    return {
        group: PassRate(checked=checked, passed=passed, pass_rate=_rate(checked, passed))
        for group, (checked, passed) in totals.items()
    }


NOTHING_CHECKED = PassRate(checked=0, passed=0, pass_rate=None)


def _stats_period(year: int, as_of: date | None) -> tuple[date, date]:
    """The first day of `year` and the cut-off day (`as_of`, by default 31 December)."""
    start, year_end = date(year, 1, 1), date(year, 12, 31)
    as_of = as_of or year_end
    if as_of < start:
        raise ValidationFailed.single("as_of", f"must not be before the start of {year}")
    return start, as_of


def _check_stats_county(county_code: str | None, catalogue: Catalogue) -> None:
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        raise ValidationFailed.single("county_code", error)


def _group_stats(
    rows: list[StatsRow], *, counties: list[str], levels: list[Level]
) -> list[GroupStats]:
    """Every county × level, with zeros where nothing was checked."""
    tally = _tally(rows, lambda r: (r.county_code, r.level))
    return [
        GroupStats(
            county_code=county,
            level=level,
            **tally.get((county, level.value), NOTHING_CHECKED).model_dump(),
        )
        for county in counties
        for level in levels
    ]


def _county_stats(rows: list[StatsRow], *, counties: list[str]) -> list[CountyStats]:
    """Every county, with zeros where nothing was checked."""
    tally = _tally(rows, lambda r: r.county_code)
    return [
        CountyStats(county_code=county, **tally.get(county, NOTHING_CHECKED).model_dump())
        for county in counties
    ]


def _category_stats(
    rows: list[StatsRow], *, catalogue: Catalogue, programme: str
) -> list[CategoryStats]:
    """Every category of the programme in catalogue order (then any other found), zeros
    included."""
    tally = _tally(rows, lambda r: r.product_category)
    known = catalogue.categories_of(programme)
    categories = list(known) + sorted(set(tally) - set(known))
    return [
        CategoryStats(
            product_category=category,
            product_category_label=catalogue.category_label(category) or category,
            **tally.get(category, NOTHING_CHECKED).model_dump(),
        )
        for category in categories
    ]


def _total_stats(rows: list[StatsRow]) -> PassRate:
    checked = sum(r.checked for r in rows)
    passed = sum(r.passed for r in rows)
    return PassRate(checked=checked, passed=passed, pass_rate=_rate(checked, passed))


FINDING_KINDS = ("unlicensed_referral", "mandatory_standard_violation", "refused")
# A re-inspection that passes overturns these; a referral for unlicensed production stands.
OVERTURNED_BY_A_PASS = {"mandatory_standard_violation", "refused"}


def _finding_records(rows: list[FindingRow]) -> list[FindingRecord]:
    """One record per sample: the kinds found anywhere in its chain that still stand."""
    chains: dict[str, list[FindingRow]] = {}
    for row in rows:
        chains.setdefault(row.root_id, []).append(row)
    records = []
    for root_id, members in chains.items():
        passed = members[0].chain_passed
        kinds = [
            kind
            for kind in FINDING_KINDS
            if any(getattr(m, kind) for m in members)
            and not (passed and kind in OVERTURNED_BY_A_PASS)
        ]
        if not kinds:
            continue
        first = members[0]
        records.append(
            FindingRecord(
                id=root_id,
                record_ids=[m.id for m in members if any(getattr(m, k) for k in kinds)],
                county_code=first.county_code,
                level=Level(first.level),
                plan_code=first.plan_code,
                sample_code=first.sample_code,
                enterprise_credit_code=first.enterprise_credit_code,
                enterprise_name=first.enterprise_name,
                product_name=first.product_name,
                sampled_on=min(m.sampled_on for m in members),
                published_on=min((m.published_on for m in members if m.published_on), default=None),
                kinds=kinds,
            )
        )
    return sorted(records, key=lambda r: (r.county_code, r.sampled_on, r.id))


def _count_findings(records: Iterable[FindingRecord]) -> FindingCounts:
    counts = dict.fromkeys(FINDING_KINDS, 0)
    for record in records:
        for kind in record.kinds:
            counts[kind] += 1
    return FindingCounts(**counts, total=sum(counts.values()))


def _findings_by_county(
    records: list[FindingRecord], *, counties: list[str]
) -> list[CountyFindings]:
    """Every county, with zeros where nothing was found."""
    by_county: dict[str, list[FindingRecord]] = {county: [] for county in counties}
    for record in records:
        if record.county_code in by_county:
            by_county[record.county_code].append(record)
    return [
        CountyFindings(county_code=county, **_count_findings(by_county[county]).model_dump())
        for county in counties
    ]


async def spot_check_stats(
    *,
    engine: AsyncEngine,
    year: int,
    as_of: date | None,
    levels: list[Level],
    county_code: str | None,
    include_unpublished: bool,
    catalogue: Catalogue,
    today: date,
    counties: frozenset[str] | None = None,
    programme: Programme = Programme.product_quality,
) -> SpotCheckStats:
    """Samples of `year` sampled by `as_of`, each counted once with its final result; and
    the findings of their chains; of `counties` only (None: all) for a county-bound reader."""
    start, as_of = _stats_period(year, as_of)
    _check_stats_county(county_code, catalogue)
    window: dict[str, Any] = {
        "programme": programme.value,
        "start": start,
        "end": min(as_of, date(year, 12, 31)),
        "levels": [level.value for level in levels],
        "county_code": county_code,
        "include_unpublished": include_unpublished,
        "today": today,
    }
    rows, finding_rows = await read_concurrently(
        engine,
        lambda session: repository.stats_rows(session=session, **window),
        lambda session: repository.finding_rows(session=session, **window),
    )
    if counties is not None:
        rows = [row for row in rows if row.county_code in counties]
    findings = _finding_records(finding_rows)
    if counties is not None:
        findings = [record for record in findings if record.county_code in counties]
    shown = {county_code} if county_code else set(catalogue.regions)
    if counties is not None:
        shown &= counties
    counties_shown = sorted(shown | {r.county_code for r in rows})
    return SpotCheckStats(
        programme=programme.value,
        year=year,
        as_of=as_of,
        levels=levels,
        include_unpublished=include_unpublished,
        groups=_group_stats(rows, counties=counties_shown, levels=levels),
        by_county=_county_stats(rows, counties=counties_shown),
        by_category=_category_stats(rows, catalogue=catalogue, programme=programme.value),
        totals=_total_stats(rows),
        findings_by_county=_findings_by_county(findings, counties=counties_shown),
        findings_totals=_count_findings(findings),
        finding_records=findings,
    )


def parse_programme(programme: str | None) -> Programme:
    """The programme whose stats are asked for: product quality when none is named."""
    if programme is None or not programme.strip():
        return Programme.product_quality
    try:
        return Programme(programme.strip())
    except ValueError:
        known = ", ".join(p.value for p in Programme)
        raise ValidationFailed.single(
            "programme", f"unknown programme {programme.strip()!r}; known: {known}"
        ) from None


def parse_programmes(programmes: str | None) -> frozenset[str] | None:
    """`metrology,food_safety` → those programmes; None (every programme) when absent."""
    if programmes is None or not programmes.strip():
        return None
    chosen = {parse_programme(part).value for part in programmes.split(",") if part.strip()}
    return frozenset(chosen) or None


@dataclass(frozen=True)
class StatsQuery:
    """What a programme's stats count: the year to `as_of`, the levels, one county or all,
    the embargo, and a county-bound reader's counties."""

    year: int
    as_of: date | None
    levels: list[Level]
    county_code: str | None
    include_unpublished: bool
    counties: frozenset[str] | None = None


def _shown_counties(query: StatsQuery, catalogue: Catalogue, found: Iterable[str]) -> list[str]:
    """The counties a stats answer lists: the one asked for or every configured one (with
    any found), within a bound reader's counties."""
    shown = {query.county_code} if query.county_code else set(catalogue.regions)
    shown |= set(found)
    if query.counties is not None:
        shown &= query.counties
    return sorted(shown)


def _metrology_counts(rows: Iterable[CountRow]) -> MetrologyCounts:
    counts = MetrologyCounts()
    for row in rows:
        counts.checked += row.records
        counts.nonconforming += row.failed
        counts.instruments_checked += row.instruments_checked
        counts.instruments_nonconforming += row.instruments_nonconforming
    return counts


async def metrology_stats(
    *, session: AsyncSession, query: StatsQuery, catalogue: Catalogue, today: date
) -> MetrologyStats:
    """Metrology checks of the year by `as_of` and their instruments, per county and level,
    county and subject."""
    start, as_of = _stats_period(query.year, query.as_of)
    _check_stats_county(query.county_code, catalogue)
    rows = await repository.count_rows(
        session=session,
        programme=Programme.metrology.value,
        kind="metrology_subject",
        start=start,
        end=min(as_of, date(query.year, 12, 31)),
        levels=[level.value for level in query.levels],
        county_code=query.county_code,
        include_unpublished=query.include_unpublished,
        today=today,
    )
    if query.counties is not None:
        rows = [row for row in rows if row.county_code in query.counties]
    counties = _shown_counties(query, catalogue, (row.county_code for row in rows))
    rule = catalogue.programmes.get(Programme.metrology.value)
    subjects = list(rule.subjects) if rule else []
    subjects += sorted({row.kind or "" for row in rows} - set(subjects))
    return MetrologyStats(
        year=query.year,
        as_of=as_of,
        levels=query.levels,
        include_unpublished=query.include_unpublished,
        groups=[
            MetrologyGroupStats(
                county_code=county,
                level=level,
                **_metrology_counts(
                    r for r in rows if r.county_code == county and r.level == level.value
                ).model_dump(),
            )
            for county in counties
            for level in query.levels
        ],
        by_county=[
            MetrologyCountyStats(
                county_code=county,
                **_metrology_counts(r for r in rows if r.county_code == county).model_dump(),
            )
            for county in counties
        ],
        by_subject=[
            MetrologySubjectStats(
                metrology_subject=subject,
                metrology_subject_label=catalogue.subject_label(subject) or subject,
                **_metrology_counts(r for r in rows if (r.kind or "") == subject).model_dump(),
            )
            for subject in subjects
        ],
        totals=_metrology_counts(rows),
    )


def _equipment_counts(
    rows: Iterable[CountRow], items: Iterable[ItemRow], **extra: Any
) -> dict[str, Any]:
    counts = EquipmentCounts()
    for row in rows:
        counts.inspected += row.records
        counts.failed += row.failed
    for item in items:
        counts.items_registered += item.items
        counts.items_overdue += item.items if item.overdue else 0
        counts.items_major_hazard += item.items if item.major_hazard_source else 0
        if item.overdue and item.major_hazard_source:
            counts.items_major_hazard_overdue += item.items
    return {**counts.model_dump(), **extra}


async def equipment_stats(
    *, session: AsyncSession, query: StatsQuery, catalogue: Catalogue, today: date
) -> SpecialEquipmentStats:
    """Special-equipment inspections of the year by `as_of` per county and level; and the
    items registered and overdue on `as_of` per county and kind."""
    start, as_of = _stats_period(query.year, query.as_of)
    _check_stats_county(query.county_code, catalogue)
    programme = Programme.special_equipment.value
    rows = await repository.count_rows(
        session=session,
        programme=programme,
        kind="equipment_kind",
        start=start,
        end=min(as_of, date(query.year, 12, 31)),
        levels=[level.value for level in query.levels],
        county_code=query.county_code,
        include_unpublished=query.include_unpublished,
        today=today,
    )
    items = await repository.item_rows(
        session=session,
        programme=programme,
        as_of=as_of,
        county_code=query.county_code,
        include_unpublished=query.include_unpublished,
        today=today,
    )
    overdue = await repository.overdue_codes(
        session=session,
        programme=programme,
        as_of=as_of,
        county_code=query.county_code,
        include_unpublished=query.include_unpublished,
        today=today,
    )
    if query.counties is not None:
        rows = [row for row in rows if row.county_code in query.counties]
        items = [item for item in items if item.county_code in query.counties]
        overdue = [pair for pair in overdue if pair[0] in query.counties]
    counties = _shown_counties(
        query, catalogue, [*(r.county_code for r in rows), *(i.county_code for i in items)]
    )
    rule = catalogue.programmes.get(programme)
    kinds = list(rule.equipment_kinds) if rule else []
    found = {r.kind or "" for r in rows} | {i.equipment_kind or "" for i in items}
    kinds += sorted(found - set(kinds))
    return SpecialEquipmentStats(
        year=query.year,
        as_of=as_of,
        levels=query.levels,
        include_unpublished=query.include_unpublished,
        groups=[
            EquipmentGroupStats(
                county_code=county,
                level=level,
                inspected=sum(
                    r.records for r in rows if r.county_code == county and r.level == level.value
                ),
                failed=sum(
                    r.failed for r in rows if r.county_code == county and r.level == level.value
                ),
            )
            for county in counties
            for level in query.levels
        ],
        by_county=[
            EquipmentCountyStats(
                **_equipment_counts(
                    (r for r in rows if r.county_code == county),
                    (i for i in items if i.county_code == county),
                    county_code=county,
                    overdue_equipment_codes=[code for c, code in overdue if c == county],
                )
            )
            for county in counties
        ],
        by_kind=[
            EquipmentKindStats(
                **_equipment_counts(
                    (r for r in rows if (r.kind or "") == kind),
                    (i for i in items if (i.equipment_kind or "") == kind),
                    equipment_kind=kind,
                    equipment_kind_label=catalogue.equipment_kind_label(kind) or kind,
                )
            )
            for kind in kinds
        ],
        totals=EquipmentCounts(**_equipment_counts(rows, items)),
    )


async def programme_stats(
    *,
    engine: AsyncEngine,
    programme: Programme,
    query: StatsQuery,
    catalogue: Catalogue,
    today: date,
) -> ProgrammeStats:
    """The stats of one programme, in the shape its records call for."""
    if programme in (Programme.metrology, Programme.special_equipment):
        stats = metrology_stats if programme is Programme.metrology else equipment_stats
        answers: list[ProgrammeStats] = await read_concurrently(
            engine,
            lambda session: stats(session=session, query=query, catalogue=catalogue, today=today),
        )
        return answers[0]
    return await spot_check_stats(
        engine=engine,
        year=query.year,
        as_of=query.as_of,
        levels=query.levels,
        county_code=query.county_code,
        include_unpublished=query.include_unpublished,
        catalogue=catalogue,
        today=today,
        counties=query.counties,
        programme=programme,
    )


# Bulletins


async def bulletin_checks(
    *,
    session: AsyncSession,
    plan_code: str,
    level: Level,
    today: date,
    principal: Principal,
    programmes: frozenset[str] | None = None,
) -> list[SpotCheck]:
    """The checks of a plan and level (of `programmes`, None: any) the public may know by
    `today` (a bound reader's counties only); 404 when there are none."""
    checks = await repository.bulletin_checks(
        session=session,
        plan_code=plan_code,
        level=level.value,
        today=today,
        county_codes=principal.readable_counties(),
        programmes=programmes,
    )
    if not checks:
        raise NotFound(
            f"No {LEVEL_LABELS[level]} of plan {plan_code!r} has been published by {today}.",
            field="plan_code",
        )
    return checks


async def bulletin_pdf(
    checks: list[SpotCheck],
    *,
    plan_code: str,
    level: Level,
    catalogue: Catalogue,
    font: Path | None,
) -> bytes:
    """The bulletin as PDF, drawn in a worker thread."""
    chosen = find_font(font, setting="INSPECTION_REPORT_FONT")
    return await anyio.to_thread.run_sync(
        lambda: render_bulletin_pdf(
            checks=checks,
            plan_code=plan_code,
            level_label=LEVEL_LABELS[level],
            counties=dict(catalogue.county_names),
            font=chosen,
        )
    )


def bulletin_xlsx(
    checks: list[SpotCheck], *, plan_code: str, level: Level, catalogue: Catalogue
) -> bytes:
    return render_bulletin_xlsx(
        checks=checks,
        plan_code=plan_code,
        level_label=LEVEL_LABELS[level],
        counties=dict(catalogue.county_names),
    )
