"""Rules of the assessment service: target sets, reported and reference values, standings, runs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assessment import repository
from assessment.catalogue import reported_key, unit_of, validate_target_set
from assessment.models import (
    AssessmentRun,
    AuditEntry,
    ReferenceValue,
    ReportedValue,
    TargetSet,
)
from assessment.schemas import (
    Indicator,
    ReferenceValueWrite,
    ReportedValueCreate,
    Rules,
    RunCreate,
    Source,
    TargetSetRead,
    TargetSetWrite,
    Unit,
)
from assessment.scoring import GradeRule
from assessment.sources import StatsFetcher
from assessment.standings import Inputs, ResolvedRules, applies_to, compute, queries_for
from kit.concurrency import check_if_match, make_etag
from kit.errors import Conflict, NotFound, ValidationFailed
from kit.identifiers import county_code_error, new_id

DRAFT, PUBLISHED = "draft", "published"


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the audit log."""

    name: str
    request_id: str | None = None


def now() -> datetime:
    return datetime.now(UTC)


async def audit(
    *,
    session: AsyncSession,
    entity: str,
    entity_id: str,
    action: str,
    year: int | None,
    actor: Actor,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append one entry to the audit log."""
    entry = AuditEntry(
        id=new_id(),
        entity=entity,
        entity_id=entity_id,
        action=action,
        year=year,
        actor=actor.name,
        at=now(),
        request_id=actor.request_id,
        before=before,
        after=after,
    )
    await repository.add(session=session, row=entry)


def check_county(code: str, known: Collection[str], *, field: str = "county_code") -> None:
    """422 naming `field` unless `code` is one of the configured counties."""
    problem = county_code_error(code, known)
    if problem:
        raise ValidationFailed.single(field, problem)


def resolve_as_of(*, year: int, as_of: date | None, today: date) -> date:
    """The date standings are computed for: given, or today within the year, or 31 December."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    if as_of is None:
        return max(start, min(today, end))
    if not start <= as_of <= end:
        raise ValidationFailed.single("as_of", f"must be a date in {year}")
    return as_of


def resolve_rules(rules: Rules | None, defaults: dict[str, Any]) -> ResolvedRules:
    """The target set's own rules, falling back to the configured ones member by member."""
    grades = [GradeRule(**g) for g in defaults["grades"]]
    commended = list(defaults["commended_grades"])
    criticized = list(defaults["criticized_grades"])
    if rules is not None:
        if rules.grades:
            grades = [GradeRule(g.grade, g.label, g.min_score) for g in rules.grades]
        if rules.commended_grades is not None:
            commended = list(rules.commended_grades)
        if rules.criticized_grades is not None:
            criticized = list(rules.criticized_grades)
    thresholds = defaults.get("thresholds", {})
    return ResolvedRules(
        grades=grades,
        commended_grades=commended,
        criticized_grades=criticized,
        green=float(thresholds.get("green", 0.9)),
        amber=float(thresholds.get("amber", 0.75)),
    )


# Target sets


def target_set_etag(row: TargetSet) -> str:
    return make_etag(f"target-set:{row.year}:{row.version}", row.revision)


def target_set_read(row: TargetSet, *, frozen: bool) -> TargetSetRead:
    document = TargetSetWrite.model_validate(row.document)
    return TargetSetRead(
        year=row.year,
        version=row.version,
        reason=row.reason,
        frozen=frozen,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        indicators=document.indicators,
        rules=document.rules,
    )


def _snapshot(row: TargetSet) -> dict[str, Any]:
    return {"version": row.version, "reason": row.reason, **row.document}


async def is_frozen(*, session: AsyncSession, row: TargetSet) -> bool:
    return bool(await repository.frozen_target_set_ids(session=session, ids=[row.id]))


async def get_target_set(
    *, session: AsyncSession, year: int, version: int | None
) -> tuple[TargetSet, bool]:
    """A version of the year's target set (the current one by default) and whether it is frozen."""
    if version is None:
        row = await repository.current_target_set(session=session, year=year)
    else:
        row = await repository.target_set_version(session=session, year=year, version=version)
    if row is None:
        which = f"version {version} of " if version is not None else ""
        raise NotFound(f"There is no {which}target set for {year}.")
    return row, await is_frozen(session=session, row=row)


async def put_target_set(
    *,
    session: AsyncSession,
    year: int,
    body: TargetSetWrite,
    actor: Actor,
    known_counties: Collection[str],
    if_match: str | None,
) -> tuple[TargetSet, bool]:
    """Create the year's set, change it in place, or add a version once it is frozen.

    Returns the stored version and whether a new version was created.
    """
    errors = validate_target_set(body, known_counties)
    if errors:
        raise ValidationFailed(errors)
    document = body.model_dump(mode="json", exclude={"reason"})
    current = await repository.current_target_set(session=session, year=year)
    stamp = now()
    if current is not None:
        if if_match is not None:
            check_if_match(if_match, target_set_etag(current))
        if not await is_frozen(session=session, row=current):
            before = _snapshot(current)
            current.document = document
            current.reason = body.reason or current.reason
            current.updated_at = stamp
            await session.flush()
            await audit(
                session=session,
                entity="target_set",
                entity_id=f"{year}/{current.version}",
                action="update",
                year=year,
                actor=actor,
                before=before,
                after=_snapshot(current),
            )
            return current, False
        if not body.reason:
            raise ValidationFailed.single(
                "reason",
                f"version {current.version} of {year} is frozen by a published run; "
                "a new version needs a reason",
            )
    row = TargetSet(
        id=new_id(),
        year=year,
        version=1 if current is None else current.version + 1,
        reason=body.reason,
        document=document,
        created_at=stamp,
        created_by=actor.name,
        updated_at=stamp,
    )
    await repository.add(session=session, row=row)
    await audit(
        session=session,
        entity="target_set",
        entity_id=f"{year}/{row.version}",
        action="create" if current is None else "new_version",
        year=year,
        actor=actor,
        before=None if current is None else _snapshot(current),
        after=_snapshot(row),
    )
    return row, True


async def load_seed_target_set(
    *,
    session: AsyncSession,
    year: int,
    document: dict[str, Any],
    known_counties: Collection[str],
) -> bool:
    """Store a shipped target set as version 1 unless the year already has one."""
    if await repository.current_target_set(session=session, year=year) is not None:
        return False
    body = TargetSetWrite.model_validate(document)
    await put_target_set(
        session=session,
        year=year,
        body=body,
        actor=Actor("seed"),
        known_counties=known_counties,
        if_match=None,
    )
    return True


# Reported and reference values


def reported_value_dict(row: ReportedValue) -> dict[str, Any]:
    return {
        "id": row.id,
        "county_code": row.county_code,
        "year": row.year,
        "indicator": row.indicator,
        "value": row.value,
        "evidence": {"document": row.evidence_document, "text": row.evidence_text},
        "reported_by": row.reported_by,
        "measured_on": row.measured_on.isoformat(),
        "reported_at": row.reported_at.isoformat(),
        "recorded_by": row.recorded_by,
        "current": row.superseded_by is None,
        "superseded_by": row.superseded_by,
    }


def _reported_indicator(target_set: TargetSet, key: str) -> Indicator | None:
    document = TargetSetWrite.model_validate(target_set.document)
    return next(
        (i for i in document.indicators if i.source is Source.reported and reported_key(i) == key),
        None,
    )


def _check_reported_value(indicator: Indicator, value: float) -> None:
    unit = unit_of(indicator)
    if unit is Unit.rate and not 0 <= value <= 1:
        raise ValidationFailed.single("value", "a rate is a fraction between 0 and 1")
    if unit is Unit.flag and value not in (0, 1):
        raise ValidationFailed.single("value", "a milestone is 1 (reached) or 0 (not reached)")
    if unit is Unit.count and (value < 0 or value != int(value)):
        raise ValidationFailed.single("value", "a count is a whole number, 0 or more")


async def report_value(
    *,
    session: AsyncSession,
    body: ReportedValueCreate,
    actor: Actor,
    known_counties: Collection[str],
    today: date,
) -> ReportedValue:
    """Record a county's figure; an earlier one for the same indicator is kept, superseded."""
    check_county(body.county_code, known_counties)
    target_set = await repository.current_target_set(session=session, year=body.year)
    if target_set is None:
        raise ValidationFailed.single("year", f"there is no target set for {body.year}")
    indicator = _reported_indicator(target_set, body.indicator)
    if indicator is None:
        raise ValidationFailed.single(
            "indicator", f"{body.indicator!r} is not a reported indicator of {body.year}"
        )
    if not applies_to(indicator, body.county_code):
        raise ValidationFailed.single(
            "county_code", f"{body.county_code} is not assessed on {body.indicator!r}"
        )
    _check_reported_value(indicator, body.value)
    measured_on = body.measured_on or min(today, date(body.year, 12, 31))
    if measured_on.year != body.year:
        raise ValidationFailed.single("measured_on", f"must be a date in {body.year}")
    if measured_on > today:
        raise ValidationFailed.single("measured_on", "must not be in the future")
    previous = await repository.current_reported_value(
        session=session, county_code=body.county_code, year=body.year, indicator=body.indicator
    )
    row = ReportedValue(
        id=new_id(),
        county_code=body.county_code,
        year=body.year,
        indicator=body.indicator,
        value=body.value,
        evidence_document=body.evidence.document,
        evidence_text=body.evidence.text,
        reported_by=body.reported_by,
        measured_on=measured_on,
        reported_at=now(),
        recorded_by=actor.name,
    )
    await repository.add(session=session, row=row)
    before = None
    if previous is not None:
        before = reported_value_dict(previous)
        previous.superseded_by = row.id
        await session.flush()
    await audit(
        session=session,
        entity="reported_value",
        entity_id=f"{body.year}/{body.county_code}/{body.indicator}",
        action="report" if previous is None else "correct",
        year=body.year,
        actor=actor,
        before=before,
        after=reported_value_dict(row),
    )
    return row


async def get_reported_value(*, session: AsyncSession, value_id: str) -> ReportedValue:
    row = await repository.get_reported_value(session=session, value_id=value_id)
    if row is None:
        raise NotFound(f"There is no reported value {value_id!r}.")
    return row


def reference_value_dict(row: ReferenceValue) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "year": row.year,
        "value": row.value,
        "source": row.source,
        "published_on": row.published_on.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by,
    }


async def get_reference_value(*, session: AsyncSession, year: int, key: str) -> ReferenceValue:
    row = await repository.get_reference_value(session=session, year=year, key=key)
    if row is None:
        raise NotFound(f"There is no reference value {key!r} for {year}.")
    return row


async def put_reference_value(
    *, session: AsyncSession, year: int, key: str, body: ReferenceValueWrite, actor: Actor
) -> tuple[ReferenceValue, bool]:
    """Set a reference value; returns it and whether it was created."""
    target_set = await repository.current_target_set(session=session, year=year)
    if target_set is not None and body.value > 1:
        document = TargetSetWrite.model_validate(target_set.document)
        if any(i.reference == key and unit_of(i) is Unit.rate for i in document.indicators):
            raise ValidationFailed.single(
                "value", f"{key!r} is compared with a rate: a fraction between 0 and 1"
            )
    row = await repository.get_reference_value(session=session, year=year, key=key)
    before = None if row is None else reference_value_dict(row)
    created = row is None
    if row is None:
        row = ReferenceValue(
            id=new_id(),
            year=year,
            key=key,
            value=body.value,
            source=body.source,
            published_on=body.published_on,
            updated_at=now(),
            updated_by=actor.name,
        )
        await repository.add(session=session, row=row)
    else:
        row.value, row.source, row.published_on = body.value, body.source, body.published_on
        row.updated_at, row.updated_by = now(), actor.name
        await session.flush()
    await audit(
        session=session,
        entity="reference_value",
        entity_id=f"{year}/{key}",
        action="create" if created else "update",
        year=year,
        actor=actor,
        before=before,
        after=reference_value_dict(row),
    )
    return row, created


# Standings and runs


async def gather_inputs(
    *,
    session: AsyncSession,
    fetcher: StatsFetcher,
    year: int,
    as_of: date | None,
    today: date,
    regions: list[dict[str, str]],
    defaults: dict[str, Any],
) -> tuple[Inputs, TargetSet]:
    """Read the target set, reported and reference values, then every `/stats` in parallel."""
    target_set = await repository.current_target_set(session=session, year=year)
    if target_set is None:
        raise NotFound(f"There is no target set for {year}.")
    resolved = resolve_as_of(year=year, as_of=as_of, today=today)
    document = TargetSetWrite.model_validate(target_set.document)
    reported: dict[tuple[str, str], dict[str, Any]] = {}
    for row in await repository.reported_values_as_of(session=session, year=year, as_of=resolved):
        reported[(row.county_code, row.indicator)] = reported_value_dict(row)
    references = {
        row.key: {
            "value": row.value,
            "source": row.source,
            "published_on": row.published_on.isoformat(),
        }
        for row in await repository.list_reference_values(
            session=session, year=year, key=None, after=None, limit=10_000
        )
    }
    fetched = await fetcher.fetch_all(queries_for(document.indicators), year=year, as_of=resolved)
    inputs = Inputs(
        year=year,
        as_of=resolved,
        target_set_version=target_set.version,
        indicators=document.indicators,
        rules=resolve_rules(document.rules, defaults),
        regions=regions,
        fetched=fetched,
        reported=reported,
        references=references,
    )
    return inputs, target_set


def serialize_inputs(inputs: Inputs, target_set: TargetSet) -> dict[str, Any]:
    """The inputs of a run as stored: enough to recompute and to audit every figure."""
    return {
        "year": inputs.year,
        "as_of": inputs.as_of.isoformat(),
        "target_set": {"version": target_set.version, **target_set.document},
        "regions": inputs.regions,
        "stats": {key: fetched.as_dict() for key, fetched in inputs.fetched.items()},
        "reported_values": list(inputs.reported.values()),
        "reference_values": inputs.references,
    }


async def standings(
    *,
    session: AsyncSession,
    fetcher: StatsFetcher,
    year: int,
    as_of: date | None,
    today: date,
    regions: list[dict[str, str]],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    """Live standings of every county and of the city."""
    inputs, _ = await gather_inputs(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        regions=regions,
        defaults=defaults,
    )
    return compute(inputs)


def run_summary(run: AssessmentRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "year": run.year,
        "as_of": run.as_of,
        "status": run.status,
        "complete": run.complete,
        "completeness": run.completeness,
        "target_set_version": run.target_set_version,
        "note": run.note,
        "created_at": run.created_at,
        "created_by": run.created_by,
        "published_at": run.published_at,
        "published_by": run.published_by,
    }


def run_etag(run: AssessmentRun) -> str:
    return make_etag(run.id, run.version)


def _audit_summary(run: AssessmentRun) -> dict[str, Any]:
    summary = run_summary(run)
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in summary.items()}


async def create_run(
    *,
    session: AsyncSession,
    fetcher: StatsFetcher,
    year: int,
    body: RunCreate,
    actor: Actor,
    today: date,
    regions: list[dict[str, str]],
    defaults: dict[str, Any],
) -> AssessmentRun:
    """Compute the standings now and store them with their inputs as a draft run."""
    inputs, target_set = await gather_inputs(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=body.as_of,
        today=today,
        regions=regions,
        defaults=defaults,
    )
    result = compute(inputs)
    run = AssessmentRun(
        id=new_id(),
        year=year,
        as_of=inputs.as_of,
        status=DRAFT,
        complete=bool(result["meta"]["complete"]),
        completeness=result["meta"]["completeness"],
        target_set_id=target_set.id,
        target_set_version=target_set.version,
        note=body.note,
        inputs=serialize_inputs(inputs, target_set),
        standings=result,
        created_at=now(),
        created_by=actor.name,
    )
    await repository.add(session=session, row=run)
    await audit(
        session=session,
        entity="run",
        entity_id=run.id,
        action="create",
        year=year,
        actor=actor,
        before=None,
        after=_audit_summary(run),
    )
    return run


async def get_run(*, session: AsyncSession, year: int, run_id: str) -> AssessmentRun:
    run = await repository.get_run(session=session, year=year, run_id=run_id)
    if run is None:
        raise NotFound(f"There is no run {run_id!r} of {year}.")
    return run


async def publish_run(
    *, session: AsyncSession, run: AssessmentRun, actor: Actor, if_match: str | None
) -> AssessmentRun:
    """Freeze a complete run; a run missing any source's figures is refused."""
    if if_match is not None:
        check_if_match(if_match, run_etag(run))
    if run.status == PUBLISHED:
        raise Conflict(f"Run {run.id} is already published.", current_status=run.status)
    missing = {k: v for k, v in run.completeness.items() if v != "ok"}
    if missing:
        reasons = "; ".join(f"{k}: {v}" for k, v in missing.items())
        raise Conflict(
            f"Run {run.id} cannot be published: its inputs are incomplete ({reasons}). "
            "Start a new run once every source answers.",
            completeness=run.completeness,
        )
    before = _audit_summary(run)
    run.status = PUBLISHED
    run.published_at = now()
    run.published_by = actor.name
    await session.flush()
    await audit(
        session=session,
        entity="run",
        entity_id=run.id,
        action="publish",
        year=run.year,
        actor=actor,
        before=before,
        after=_audit_summary(run),
    )
    return run
