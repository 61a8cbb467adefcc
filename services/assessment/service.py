"""Rules of the assessment service: target sets, reported and reference values, standings, runs.

Preconditions of changes (`If-Match`), checked here and nowhere else:

- `PUT /target-sets/{year}` and `PUT /reference-values/{year}/{key}` create or replace. While
  the item does not exist the PUT creates it, with no precondition header or with
  `If-None-Match: *`; an `If-Match` there is a 412, as there is no version to match. Once it
  exists, replacing it needs `If-Match` with its current ETag: 428 without, 412 when stale, and
  `If-None-Match: *` is a 412. A year's target set is matched by the ETag of its current
  version, also when the PUT adds a new version to a frozen set.
- `POST /assessments/{year}/runs/{id}/publish` needs `If-Match` with the run's ETag.
- `POST /reported-values/{id}/status` (a reviewer accepting or returning a submitted value)
  needs `If-Match` with the value's ETag.
- Creating records takes none: a run is new, and a reported figure is never changed (a
  correction is a new record that supersedes the earlier one; only its review state moves).

Review of reported values: a county's report is `submitted`; a reviewer (scope
`assessments:review`, never a county-bound client) `accepted` or `returned` it (with a
comment). Only accepted figures count: the latest accepted report of a county's indicator;
a later report not accepted (yet) is shown beside it, and while there is no accepted one the
indicator is `pending_review` (submitted) or lacks data (returned).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio

from assessment import repository
from assessment.catalogue import (
    Catalogue,
    applies_to,
    group_rules,
    reported_key,
    unit_of,
    validate_target_set,
)
from assessment.models import (
    AssessmentHistory,
    AssessmentRun,
    EvidenceFile,
    ReferenceValue,
    ReportedValue,
    TargetSet,
)
from assessment.report import render_run_report, render_standings_xlsx
from assessment.repository import Session
from assessment.schemas import (
    AssessmentHistoryRead,
    EvidenceRead,
    Indicator,
    ReferenceValueCreate,
    ReferenceValueRead,
    ReportedValueCreate,
    ReportedValueHistory,
    ReportedValueRead,
    ReviewCreate,
    ReviewDecision,
    ReviewState,
    Rules,
    RunCreate,
    RunPublish,
    RunRead,
    RunSummary,
    Source,
    TargetSetCreate,
    TargetSetRead,
    TargetSetSummary,
    Unit,
    Worklist,
    WorklistItem,
    WorklistState,
)
from assessment.scoring import GradeRule, ResolvedRules
from assessment.sources import StatsFetcher
from assessment.standings import (
    Inputs,
    compute,
    explain,
    not_assessed,
    pending_review,
    queries_for,
)
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    UnsupportedMediaType,
    ValidationFailed,
)
from kit.events import emit
from kit.identifiers import new_id
from kit.pagination import Page, PageParams
from kit.pdf import find_font
from kit.storage import BlobStore, Received, sniff

DRAFT, PUBLISHED = "draft", "published"


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the history."""

    name: str
    request_id: str | None = None


def now() -> datetime:
    return datetime.now(UTC)


def check_replace(
    *, current_etag: str | None, if_match: str | None, if_none_match: str | None
) -> None:
    """The precondition of a create-or-replace PUT (see the module docstring)."""
    if current_etag is None:
        if if_match is not None and if_match.strip():
            raise PreconditionFailed(
                "There is no stored version to match yet: create it without If-Match "
                "(or with If-None-Match: *)."
            )
        return
    if if_none_match is not None and if_none_match.strip() == "*":
        raise PreconditionFailed(
            "It exists already: replace it with If-Match and its current ETag.",
            current_etag=current_etag,
        )
    check_if_match(if_match, current_etag)


async def record_history(
    *,
    session: Session,
    entity: str,
    entity_id: str,
    action: str,
    year: int | None,
    actor: Actor,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None = None,
) -> None:
    """Append one entry to the history."""
    entry = AssessmentHistory(
        id=new_id(),
        entity=entity,
        entity_id=entity_id,
        action=action,
        year=year,
        actor=actor.name,
        reason=reason,
        at=now(),
        request_id=actor.request_id,
        before=before,
        after=after,
    )
    await repository.add(session=session, row=entry)


async def list_history(
    *,
    session: Session,
    entity: str | None,
    entity_id: str | None,
    year: int | None,
    page: PageParams,
    principal: Principal | None = None,
) -> Page[AssessmentHistoryRead]:
    """The log; a county-bound client sees the reported values of its counties only."""
    rows = await repository.list_history(
        session=session,
        entity=entity,
        entity_id=entity_id,
        year=year,
        page=page,
        county_codes=None if principal is None else principal.readable_counties(),
    )
    return rows.map(AssessmentHistoryRead.model_validate)


def check_county_code(
    code: str, catalogue: Catalogue, *, configured: bool = True, field: str = "county_code"
) -> None:
    """422 naming `field` unless `code` is a county-level code (one of the configured ones)."""
    problem = catalogue.county_problem(code, configured=configured)
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


def resolve_rules(rules: Rules | None, defaults: ResolvedRules) -> ResolvedRules:
    """The target set's own rules, falling back to the configured ones member by member."""
    if rules is None:
        return defaults
    grades = defaults.grades
    if rules.grades:
        grades = [GradeRule(g.grade, g.label, g.min_score) for g in rules.grades]
    commended, criticized = rules.commended_grades, rules.criticized_grades
    return replace(
        defaults,
        grades=grades,
        commended_grades=defaults.commended_grades if commended is None else list(commended),
        criticized_grades=defaults.criticized_grades if criticized is None else list(criticized),
        scoring=rules.scoring or defaults.scoring,
        stepped_credit=(
            defaults.stepped_credit if rules.stepped_credit is None else rules.stepped_credit
        ),
        commendation_quota=rules.commendation_quota,
        ranking_groups=group_rules(rules),
    )


# Target sets


def target_set_etag(row: TargetSet) -> str:
    return make_etag(f"target-set:{row.year}:{row.version}", row.revision)


def target_set_document(row: TargetSet) -> TargetSetCreate:
    """The indicators and rules a stored version holds."""
    return TargetSetCreate.model_validate(row.document)


def target_set_read(row: TargetSet, *, frozen: bool) -> TargetSetRead:
    document = target_set_document(row)
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


STORED_EXCLUDE = {"reason", "supersedes_published"}


def _stored(body: TargetSetCreate) -> dict[str, Any]:
    """The document a version stores: indicators and rules."""
    return body.model_dump(mode="json", exclude=STORED_EXCLUDE)


def _snapshot(row: TargetSet) -> dict[str, Any]:
    return {"version": row.version, "reason": row.reason, **row.document}


async def is_frozen(*, session: Session, row: TargetSet) -> bool:
    return bool(await repository.frozen_target_set_ids(session=session, ids=[row.id]))


async def get_target_set(
    *, session: Session, year: int, version: int | None
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


async def list_target_sets(
    *, session: Session, year: int | None, page: PageParams
) -> Page[TargetSetSummary]:
    """Every year's versions, each saying whether it is current and whether it is frozen."""
    rows = await repository.list_target_sets(session=session, year=year, page=page)
    years = list({r.year for r in rows.items})
    latest = await repository.latest_versions(session=session, years=years)
    frozen = await repository.frozen_target_set_ids(session=session, ids=[r.id for r in rows.items])
    return rows.map(
        lambda r: TargetSetSummary(
            year=r.year,
            version=r.version,
            reason=r.reason,
            current=latest.get(r.year) == r.version,
            frozen=r.id in frozen,
            indicator_count=len(r.document.get("indicators", [])),
            created_at=r.created_at,
            created_by=r.created_by,
        )
    )


async def put_target_set(
    *,
    session: Session,
    year: int,
    body: TargetSetCreate,
    actor: Actor,
    catalogue: Catalogue,
    if_match: str | None,
    if_none_match: str | None = None,
) -> tuple[TargetSet, bool]:
    """Create the year's set, change it in place, or add a version once it is frozen.

    Returns the stored version and whether a new version was created.
    """
    errors = validate_target_set(body, catalogue)
    if errors:
        raise ValidationFailed(errors)
    current = await repository.current_target_set(session=session, year=year)
    check_replace(
        current_etag=None if current is None else target_set_etag(current),
        if_match=if_match,
        if_none_match=if_none_match,
    )
    if current is None:
        return await _add_version(session=session, year=year, body=body, actor=actor), True
    await _check_supersedes_published(session=session, year=year, body=body)
    if not await is_frozen(session=session, row=current):
        return await _change_in_place(session=session, row=current, body=body, actor=actor), False
    row = await _add_version(session=session, year=year, body=body, actor=actor, previous=current)
    return row, True


async def _check_supersedes_published(
    *, session: Session, year: int, body: TargetSetCreate
) -> None:
    """Once the year has a published result, its targets change only by an explicit, reasoned
    supersede: 409 without `supersedes_published: true`, 422 without a reason."""
    published = await repository.current_published_run(session=session, year=year)
    if published is None:
        return
    if not body.supersedes_published:
        raise Conflict(
            f"The results of {year} are published (run {published.id}); the target set changes "
            "only with supersedes_published: true and a reason.",
            published_run=published.id,
        )
    if not body.reason:
        raise ValidationFailed.single(
            "reason", f"superseding the published targets of {year} needs a reason"
        )


async def _change_in_place(
    *, session: Session, row: TargetSet, body: TargetSetCreate, actor: Actor
) -> TargetSet:
    """Before publication a version changes in place; the history keeps what it was."""
    before = _snapshot(row)
    row.document = _stored(body)
    row.reason = body.reason or row.reason
    row.updated_at = now()
    await repository.flush(session=session)
    await record_history(
        session=session,
        entity="target_set",
        entity_id=f"{row.year}/{row.version}",
        action="update",
        year=row.year,
        actor=actor,
        before=before,
        after=_snapshot(row),
        reason=body.reason,
    )
    return row


async def _add_version(
    *,
    session: Session,
    year: int,
    body: TargetSetCreate,
    actor: Actor,
    previous: TargetSet | None = None,
) -> TargetSet:
    """Version 1 of a year, or the version after a frozen one."""
    stamp = now()
    row = TargetSet(
        id=new_id(),
        year=year,
        version=1 if previous is None else previous.version + 1,
        reason=body.reason,
        document=_stored(body),
        created_at=stamp,
        created_by=actor.name,
        updated_at=stamp,
    )
    await repository.add(session=session, row=row)
    await record_history(
        session=session,
        entity="target_set",
        entity_id=f"{year}/{row.version}",
        action="create" if previous is None else "new_version",
        year=year,
        actor=actor,
        before=None if previous is None else _snapshot(previous),
        after=_snapshot(row),
        reason=body.reason,
    )
    return row


async def load_seed_target_set(
    *, session: Session, year: int, document: dict[str, Any], catalogue: Catalogue
) -> bool:
    """Store a shipped target set as version 1 unless the year already has one."""
    if await repository.current_target_set(session=session, year=year) is not None:
        return False
    body = TargetSetCreate.model_validate(document)
    await put_target_set(
        session=session,
        year=year,
        body=body,
        actor=Actor("seed"),
        catalogue=catalogue,
        if_match=None,
    )
    return True


# Reported values


EVENT_SOURCE = "assessment"


async def _emit_reported_value(
    *, session: Session, row: ReportedValue, type: str, **change: Any
) -> None:
    """A reported value's change event, with the value as its GET answers."""
    await emit(
        session,
        source=EVENT_SOURCE,
        type=type,
        subject=f"reported-values/{row.id}",
        data={"id": row.id, **change, "item": reported_value_read(row).model_dump(mode="json")},
        county_code=row.county_code,
    )


def reported_value_dict(row: ReportedValue) -> dict[str, Any]:
    return {
        "id": row.id,
        "county_code": row.county_code,
        "year": row.year,
        "indicator": row.indicator,
        "value": row.value,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "evidence": {"document": row.evidence_document, "text": row.evidence_text},
        "reported_by": row.reported_by,
        "measured_on": row.measured_on.isoformat(),
        "reported_at": row.reported_at.isoformat(),
        "recorded_by": row.recorded_by,
        "current": row.superseded_by is None,
        "superseded_by": row.superseded_by,
        "state": row.state,
        "comment": row.review_comment,
        "reviewed_by": row.reviewed_by,
        "reviewed_at": None if row.reviewed_at is None else row.reviewed_at.isoformat(),
    }


def reported_value_read(row: ReportedValue) -> ReportedValueRead:
    return ReportedValueRead.model_validate(reported_value_dict(row))


def reported_value_etag(row: ReportedValue) -> str:
    return make_etag(f"reported-value:{row.id}", row.version)


def chain_key(row: ReportedValue) -> str:
    """How the history names every report of one county's indicator in a year."""
    return f"{row.year}/{row.county_code}/{row.indicator}"


async def _reported_indicator(*, session: Session, body: ReportedValueCreate) -> Indicator:
    """The indicator of the year's current target set a report is for. A county without an
    allocation may report too: its figure is shown (and may earn the set's bonus)."""
    target_set = await repository.current_target_set(session=session, year=body.year)
    if target_set is None:
        raise ValidationFailed.single("year", f"there is no target set for {body.year}")
    indicator = next(
        (
            i
            for i in target_set_document(target_set).indicators
            if i.source is Source.reported and reported_key(i) == body.indicator
        ),
        None,
    )
    if indicator is None:
        raise ValidationFailed.single(
            "indicator", f"{body.indicator!r} is not a reported indicator of {body.year}"
        )
    return indicator


def _check_fraction(indicator: Indicator, body: ReportedValueCreate) -> None:
    """A rate may come with its numerator and denominator (both), which must give the value."""
    if body.numerator is None and body.denominator is None:
        return
    if unit_of(indicator) is not Unit.rate:
        raise ValidationFailed.single("numerator", "only a rate has a numerator and denominator")
    if body.numerator is None or body.denominator is None:
        missing = "denominator" if body.denominator is None else "numerator"
        raise ValidationFailed.single(missing, "a rate's numerator and denominator come together")
    if body.numerator > body.denominator:
        raise ValidationFailed.single("numerator", "must not exceed the denominator")
    if abs(body.numerator / body.denominator - body.value) > 0.0005:
        raise ValidationFailed.single(
            "value",
            f"{body.value:g} is not numerator / denominator = "
            f"{body.numerator / body.denominator:.4f}",
        )


def _check_reported_value(indicator: Indicator, value: float) -> None:
    unit = unit_of(indicator)
    if unit is Unit.rate and not 0 <= value <= 1:
        raise ValidationFailed.single("value", "a rate is a fraction between 0 and 1")
    if unit is Unit.flag and value not in (0, 1):
        raise ValidationFailed.single("value", "a milestone is 1 (reached) or 0 (not reached)")
    if unit is Unit.count and (value < 0 or value != int(value)):
        raise ValidationFailed.single("value", "a count is a whole number, 0 or more")


def _measured_on(body: ReportedValueCreate, today: date) -> date:
    """The date a figure describes: given, or today, or 31 December of a past year."""
    measured_on = body.measured_on or min(today, date(body.year, 12, 31))
    if measured_on.year != body.year:
        raise ValidationFailed.single("measured_on", f"must be a date in {body.year}")
    if measured_on > today:
        raise ValidationFailed.single("measured_on", "must not be in the future")
    return measured_on


async def report_value(
    *,
    session: Session,
    body: ReportedValueCreate,
    actor: Actor,
    catalogue: Catalogue,
    today: date,
    principal: Principal | None = None,
) -> ReportedValue:
    """Submit a county's figure for review; an earlier one for the same indicator is kept,
    superseded (a returned figure is corrected so)."""
    check_county_code(body.county_code, catalogue)
    if principal is not None:
        principal.require_county(body.county_code)
    indicator = await _reported_indicator(session=session, body=body)
    _check_reported_value(indicator, body.value)
    _check_fraction(indicator, body)
    measured_on = _measured_on(body, today)
    previous = await repository.current_reported_value(
        session=session, county_code=body.county_code, year=body.year, indicator=body.indicator
    )
    row = ReportedValue(
        id=new_id(),
        county_code=body.county_code,
        year=body.year,
        indicator=body.indicator,
        value=body.value,
        numerator=body.numerator,
        denominator=body.denominator,
        evidence_document=body.evidence.document,
        evidence_text=body.evidence.text,
        reported_by=body.reported_by,
        measured_on=measured_on,
        reported_at=now(),
        recorded_by=actor.name,
        state=ReviewState.submitted.value,
    )
    await repository.add(session=session, row=row)
    before = None
    if previous is not None:
        before = reported_value_dict(previous)
        previous.superseded_by = row.id
        await repository.flush(session=session)
    await record_history(
        session=session,
        entity="reported_value",
        entity_id=f"{body.year}/{body.county_code}/{body.indicator}",
        action="report" if previous is None else "correct",
        year=body.year,
        actor=actor,
        before=before,
        after=reported_value_dict(row),
    )
    await _emit_reported_value(
        session=session,
        row=row,
        type="reported_value.submitted",
        supersedes=previous.id if previous is not None else None,
    )
    return row


async def get_reported_value(
    *, session: Session, value_id: str, principal: Principal | None = None
) -> ReportedValue:
    """The value, or 404 when there is none or it is another county's than the client's."""
    row = await repository.get_reported_value(session=session, value_id=value_id)
    if row is None or (principal is not None and not principal.reads(row.county_code)):
        raise NotFound(f"There is no reported value {value_id!r}.")
    return row


def _check_review(row: ReportedValue, body: ReviewCreate) -> None:
    """Only the current, submitted report is reviewed; a return says why."""
    if row.superseded_by is not None:
        raise Conflict(
            f"Reported value {row.id} was superseded by {row.superseded_by}: review that one.",
            current_state=row.state,
            superseded_by=row.superseded_by,
        )
    if row.state != ReviewState.submitted.value:
        raise Conflict(
            f"Reported value {row.id} is already {row.state}; only a submitted value is "
            "reviewed (a returned one is corrected by a new submission).",
            current_state=row.state,
        )
    if body.state is ReviewDecision.returned and not (body.comment or "").strip():
        raise ValidationFailed.single("comment", "a returned value needs the reviewer's comment")


async def review_value(
    *,
    session: Session,
    row: ReportedValue,
    body: ReviewCreate,
    actor: Actor,
    if_match: str | None,
) -> ReportedValue:
    """Accept or return a submitted value (If-Match with its ETag)."""
    check_if_match(if_match, reported_value_etag(row))
    _check_review(row, body)
    before = reported_value_dict(row)
    row.state = body.state.value
    row.review_comment = (body.comment or "").strip() or None
    row.reviewed_by = actor.name
    row.reviewed_at = now()
    await repository.flush(session=session)
    await record_history(
        session=session,
        entity="reported_value",
        entity_id=chain_key(row),
        action="accept" if body.state is ReviewDecision.accepted else "return",
        year=row.year,
        actor=actor,
        before=before,
        after=reported_value_dict(row),
        reason=row.review_comment,
    )
    await _emit_reported_value(
        session=session,
        row=row,
        type=f"reported_value.{body.state.value}",
        comment=row.review_comment,
    )
    return row


async def reported_value_history(*, session: Session, row: ReportedValue) -> ReportedValueHistory:
    """The whole chain a value belongs to, oldest first, with every change of it."""
    chain = await repository.reported_value_chain(
        session=session, county_code=row.county_code, year=row.year, indicator=row.indicator
    )
    entries = await repository.history_of(
        session=session, entity="reported_value", entity_id=chain_key(row)
    )
    return ReportedValueHistory(
        county_code=row.county_code,
        year=row.year,
        indicator=row.indicator,
        items=[reported_value_read(r) for r in chain],
        entries=[AssessmentHistoryRead.model_validate(e) for e in entries],
    )


def _worklist_county(
    county_code: str | None, principal: Principal, catalogue: Catalogue
) -> tuple[str, str]:
    """The county a worklist is for (and its name): given, or the one a bound client has."""
    if county_code is None:
        if len(principal.county_codes) != 1:
            raise ValidationFailed.single(
                "county_code", "required unless the client is bound to exactly one county"
            )
        (county_code,) = principal.county_codes
    check_county_code(county_code, catalogue)
    if not principal.reads(county_code):
        principal.require_county(county_code)
    region = catalogue.region(county_code)
    assert region is not None
    return county_code, region.name


async def worklist(
    *,
    session: Session,
    year: int,
    county_code: str | None,
    principal: Principal,
    catalogue: Catalogue,
) -> Worklist:
    """Every reported indicator of the year's target set the county is asked for (or has
    reported anyway), with where its report stands and when it is due."""
    code, name = _worklist_county(county_code, principal, catalogue)
    target_set = await repository.current_target_set(session=session, year=year)
    if target_set is None:
        raise NotFound(f"There is no target set for {year}.")
    current = {
        r.indicator: r
        for r in await repository.current_reported_values_of_county(
            session=session, county_code=code, year=year
        )
    }
    items = []
    for indicator in target_set_document(target_set).indicators:
        if indicator.source is not Source.reported:
            continue
        key = reported_key(indicator)
        row = current.get(key)
        if row is None and not applies_to(indicator, code):
            continue
        items.append(
            WorklistItem(
                indicator=key,
                label=indicator.name,
                due_on=indicator.due_on,
                state=WorklistState.missing if row is None else WorklistState(row.state),
                value=None if row is None else row.value,
                reported_value_id=None if row is None else row.id,
                comment=None if row is None else row.review_comment,
                submitted_at=None if row is None else _aware(row.reported_at),
                reviewed_at=None
                if row is None or row.reviewed_at is None
                else _aware(row.reviewed_at),
            )
        )
    return Worklist(year=year, county_code=code, county_name=name, items=items)


async def list_reported_values(
    *,
    session: Session,
    catalogue: Catalogue,
    county_code: str | None,
    year: int | None,
    indicator: str | None,
    current: bool | None,
    page: PageParams,
    state: ReviewState | None = None,
    principal: Principal | None = None,
) -> Page[ReportedValueRead]:
    """Reported values by filter; a malformed county code is a 422, an unknown one lists none;
    a county-bound client lists its counties' only."""
    if county_code is not None:
        check_county_code(county_code, catalogue, configured=False)
    rows = await repository.list_reported_values(
        session=session,
        county_code=county_code,
        year=year,
        indicator=indicator,
        current=current,
        page=page,
        county_codes=None if principal is None else principal.readable_counties(),
        state=None if state is None else state.value,
    )
    return rows.map(reported_value_read)


# Evidence files

EVIDENCE_TYPES = "PDF, JPEG, PNG, XLSX, DOCX or OFD"


def _aware(moment: datetime) -> datetime:
    """A stored instant in UTC (SQLite gives it back without its zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def evidence_url(row: EvidenceFile) -> str:
    return f"/api/v1/reported-values/{row.reported_value_id}/evidence/{row.id}"


def evidence_dict(row: EvidenceFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "reported_value_id": row.reported_value_id,
        "name": row.name,
        "size": row.size,
        "content_type": row.content_type,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": _aware(row.uploaded_at).isoformat(),
        "download_url": evidence_url(row),
    }


def evidence_read(row: EvidenceFile) -> EvidenceRead:
    return EvidenceRead.model_validate(evidence_dict(row))


MAX_EVIDENCE_FILES = 50
"""Evidence files one reported value may carry."""


async def check_may_attach(*, session: Session, row: ReportedValue, principal: Principal) -> None:
    """Evidence is added by the value's county (or a city-wide writer) to a current value,
    at most MAX_EVIDENCE_FILES of them; checked before the upload is read."""
    principal.require_county(row.county_code)
    if row.superseded_by is not None:
        raise Conflict(
            f"Reported value {row.id} was superseded by {row.superseded_by}: attach the "
            "evidence to that one.",
            superseded_by=row.superseded_by,
        )
    count = await repository.count_evidence(session=session, reported_value_id=row.id)
    if count >= MAX_EVIDENCE_FILES:
        raise Conflict(
            f"Reported value {row.id} has {count} evidence files, the most one value takes.",
            limit=MAX_EVIDENCE_FILES,
        )


def _evidence_name(received: Received, content_type: str) -> str:
    name = (received.filename or "").strip()
    if not name:
        extension = {
            "application/pdf": "pdf",
            "image/jpeg": "jpg",
            "image/png": "png",
            "application/ofd": "ofd",
        }.get(content_type, "bin")
        name = f"evidence.{extension}"
    return name[-255:]


async def before_upload(*, session: Session, row: ReportedValue, principal: Principal) -> str:
    """Check that the client may attach evidence to the value, then let go of the database
    while the file arrives (a slow upload holds no connection); the value's id."""
    await check_may_attach(session=session, row=row, principal=principal)
    value_id = row.id
    await repository.end_reads(session=session)
    return value_id


async def attach_evidence(
    *,
    session: Session,
    value_id: str,
    principal: Principal,
    received: Received,
    store: BlobStore,
    actor: Actor,
) -> EvidenceFile:
    """Type the received file from its content (415 unless one of EVIDENCE_TYPES), store it by
    SHA-256, then record it and its history in the request's transaction. The value is read
    again and checked again: it may have been superseded while the file arrived."""
    row = await get_reported_value(session=session, value_id=value_id, principal=principal)
    await check_may_attach(session=session, row=row, principal=principal)
    content_type = await sniff(received.head, received.path)
    if content_type is None:
        message = f"must be a {EVIDENCE_TYPES} file (judged from its content, not its name)"
        raise UnsupportedMediaType(
            f"The file is not a {EVIDENCE_TYPES} file.",
            errors=[{"field": "file", "message": message}],
        )
    await store.put_file(received.path, sha256=received.sha256, content_type=content_type)
    evidence = EvidenceFile(
        id=new_id(),
        reported_value_id=row.id,
        name=_evidence_name(received, content_type),
        size=received.size,
        content_type=content_type,
        sha256=received.sha256,
        uploaded_by=actor.name,
        uploaded_at=now(),
    )
    await repository.add(session=session, row=evidence)
    await record_history(
        session=session,
        entity="reported_value",
        entity_id=chain_key(row),
        action="attach_evidence",
        year=row.year,
        actor=actor,
        before=None,
        after={"reported_value_id": row.id, **evidence_dict(evidence)},
    )
    return evidence


async def list_evidence(
    *, session: Session, row: ReportedValue, page: PageParams
) -> Page[EvidenceRead]:
    rows = await repository.list_evidence(session=session, reported_value_id=row.id, page=page)
    return rows.map(evidence_read)


async def get_evidence(
    *, session: Session, row: ReportedValue, evidence_id: str, store: BlobStore
) -> tuple[EvidenceFile, int]:
    """The evidence record and its stored size; 404 when either is missing."""
    evidence = await repository.get_evidence(
        session=session, reported_value_id=row.id, evidence_id=evidence_id
    )
    if evidence is None:
        raise NotFound(f"Reported value {row.id} has no evidence {evidence_id!r}.")
    size = await store.size(evidence.sha256)
    if size is None:
        raise NotFound(f"The content of evidence {evidence_id} is not in the store.")
    return evidence, size


# Reference values


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


def reference_value_read(row: ReferenceValue) -> ReferenceValueRead:
    return ReferenceValueRead.model_validate(reference_value_dict(row))


def reference_value_etag(row: ReferenceValue) -> str:
    return make_etag(f"reference-value:{row.year}:{row.key}", row.version)


async def get_reference_value(*, session: Session, year: int, key: str) -> ReferenceValue:
    row = await repository.get_reference_value(session=session, year=year, key=key)
    if row is None:
        raise NotFound(f"There is no reference value {key!r} for {year}.")
    return row


async def list_reference_values(
    *, session: Session, year: int | None, key: str | None, page: PageParams
) -> Page[ReferenceValueRead]:
    rows = await repository.list_reference_values(session=session, year=year, key=key, page=page)
    return rows.map(reference_value_read)


async def _check_reference_unit(*, session: Session, year: int, key: str, value: float) -> None:
    """A reference value compared with a rate is itself a fraction between 0 and 1."""
    if value <= 1:
        return
    target_set = await repository.current_target_set(session=session, year=year)
    if target_set is None:
        return
    indicators = target_set_document(target_set).indicators
    if any(i.reference == key and unit_of(i) is Unit.rate for i in indicators):
        raise ValidationFailed.single(
            "value", f"{key!r} is compared with a rate: a fraction between 0 and 1"
        )


async def put_reference_value(
    *,
    session: Session,
    year: int,
    key: str,
    body: ReferenceValueCreate,
    actor: Actor,
    if_match: str | None,
    if_none_match: str | None = None,
) -> tuple[ReferenceValue, bool]:
    """Set a reference value; returns it and whether it was created."""
    await _check_reference_unit(session=session, year=year, key=key, value=body.value)
    row = await repository.get_reference_value(session=session, year=year, key=key)
    check_replace(
        current_etag=None if row is None else reference_value_etag(row),
        if_match=if_match,
        if_none_match=if_none_match,
    )
    before = None if row is None else reference_value_dict(row)
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
        await repository.flush(session=session)
    await record_history(
        session=session,
        entity="reference_value",
        entity_id=f"{year}/{key}",
        action="create" if before is None else "update",
        year=year,
        actor=actor,
        before=before,
        after=reference_value_dict(row),
    )
    return row, before is None


# Standings and runs


async def gather_inputs(
    *,
    session: Session,
    fetcher: StatsFetcher,
    year: int,
    as_of: date | None,
    today: date,
    catalogue: Catalogue,
) -> tuple[Inputs, TargetSet]:
    """Read the target set, reported and reference values, then every `/stats` in parallel."""
    target_set = await repository.current_target_set(session=session, year=year)
    if target_set is None:
        raise NotFound(f"There is no target set for {year}.")
    resolved = resolve_as_of(year=year, as_of=as_of, today=today)
    document = target_set_document(target_set)
    # The latest accepted report of each county's indicator counts; a later one not (yet)
    # accepted, a correction under review or returned, is shown beside it.
    reported: dict[tuple[str, str], dict[str, Any]] = {}
    latest: dict[tuple[str, str], ReportedValue] = {}
    for row in await repository.reported_values_as_of(session=session, year=year, as_of=resolved):
        latest[(row.county_code, row.indicator)] = row
        if row.state == ReviewState.accepted.value:
            reported[(row.county_code, row.indicator)] = reported_value_dict(row)
    under_review = {
        key: reported_value_dict(row)
        for key, row in latest.items()
        if row.state != ReviewState.accepted.value
    }
    references = {
        row.key: {
            "value": row.value,
            "source": row.source,
            "published_on": row.published_on.isoformat(),
        }
        for row in await repository.reference_values_of_year(session=session, year=year)
    }
    fetched = await fetcher.fetch_all(queries_for(document.indicators), year=year, as_of=resolved)
    inputs = Inputs(
        year=year,
        as_of=resolved,
        target_set_version=target_set.version,
        indicators=document.indicators,
        rules=resolve_rules(document.rules, catalogue.rules),
        regions=list(catalogue.regions),
        fetched=fetched,
        reported=reported,
        references=references,
        famous_brand_tiers=catalogue.famous_brand_tiers,
        under_review=under_review,
    )
    return inputs, target_set


def serialize_inputs(inputs: Inputs, target_set: TargetSet) -> dict[str, Any]:
    """The inputs of a run as stored: enough to recompute and to audit every figure."""
    return {
        "year": inputs.year,
        "as_of": inputs.as_of.isoformat(),
        "target_set": {"version": target_set.version, **target_set.document},
        "regions": [region.model_dump() for region in inputs.regions],
        "stats": {key: fetched.as_dict() for key, fetched in inputs.fetched.items()},
        "reported_values": list(inputs.reported.values()),
        "reported_values_under_review": list(inputs.under_review.values()),
        "reference_values": inputs.references,
    }


async def standings(
    *,
    session: Session,
    fetcher: StatsFetcher,
    year: int,
    as_of: date | None,
    today: date,
    catalogue: Catalogue,
) -> dict[str, Any]:
    """Live standings of every county and of the city."""
    inputs, _ = await gather_inputs(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        catalogue=catalogue,
    )
    return compute(inputs)


async def county_standing(
    *,
    session: Session,
    fetcher: StatsFetcher,
    year: int,
    county_code: str,
    as_of: date | None,
    today: date,
    catalogue: Catalogue,
) -> dict[str, Any]:
    """One county's live standing with every figure explained."""
    check_county_code(county_code, catalogue, configured=False)
    if catalogue.region(county_code) is None:
        raise NotFound(f"{county_code} is not one of the configured counties and districts.")
    result = await standings(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        catalogue=catalogue,
    )
    explained = explain(result, county_code)
    assert explained is not None
    return explained


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
        "provisional": run.as_of < date(run.year, 12, 31),
        "supersedes": run.supersedes,
        "superseded_by": run.superseded_by,
        "publication_reason": run.publication_reason,
    }


def run_read(run: AssessmentRun) -> RunRead:
    return RunRead(**run_summary(run), standings=run.standings, inputs=run.inputs)


def standings_xlsx(standings: dict[str, Any]) -> bytes:
    """Standings (computed now, or a run's) as a workbook with every figure explained."""
    return render_standings_xlsx(standings)


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def run_report_pdf(run: AssessmentRun, *, font: Path | None) -> bytes:
    """The year-end report of a run as PDF, drawn in a worker thread (about half a second for
    eleven counties). It is dated by the run's publication (or creation), so the same run
    gives the same bytes."""
    chosen = find_font(font, setting="ASSESSMENT_REPORT_FONT")
    summary = _history_summary(run)
    return await anyio.to_thread.run_sync(
        lambda: render_run_report(
            run=summary,
            standings=run.standings,
            font=chosen,
            created_at=_as_utc(run.published_at or run.created_at),
        )
    )


def run_etag(run: AssessmentRun) -> str:
    return make_etag(run.id, run.version)


def _history_summary(run: AssessmentRun) -> dict[str, Any]:
    summary = run_summary(run)
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in summary.items()}


async def list_runs(
    *, session: Session, year: int, status: str | None, page: PageParams
) -> Page[RunSummary]:
    rows = await repository.list_runs(session=session, year=year, status=status, page=page)
    return rows.map(lambda run: RunSummary(**run_summary(run)))


async def create_run(
    *,
    session: Session,
    fetcher: StatsFetcher,
    year: int,
    body: RunCreate,
    actor: Actor,
    today: date,
    catalogue: Catalogue,
) -> AssessmentRun:
    """Compute the standings now and store them with their inputs as a draft run."""
    inputs, target_set = await gather_inputs(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=body.as_of,
        today=today,
        catalogue=catalogue,
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
    await record_history(
        session=session,
        entity="run",
        entity_id=run.id,
        action="create",
        year=year,
        actor=actor,
        before=None,
        after=_history_summary(run),
    )
    return run


async def get_run(*, session: Session, year: int, run_id: str) -> AssessmentRun:
    run = await repository.get_run(session=session, year=year, run_id=run_id)
    if run is None:
        raise NotFound(f"There is no run {run_id!r} of {year}.")
    return run


def _check_publishable(run: AssessmentRun) -> None:
    """Only a complete year-end run in which every county was assessed is published."""
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
    if run.as_of < date(run.year, 12, 31):
        raise Conflict(
            f"Run {run.id} is provisional (as of {run.as_of.isoformat()}): only a run as of "
            f"31 December {run.year} is published.",
            as_of=run.as_of.isoformat(),
        )
    under_review = pending_review(run.standings)
    if under_review:
        named = ", ".join(f"{p['county_code']} {p['indicator']}" for p in under_review)
        raise Conflict(
            f"Run {run.id} cannot be published: figures of weighted indicators are pending "
            f"review ({named}). Review them, then start a new run.",
            pending_review=under_review,
        )
    unassessed = not_assessed(run.standings)
    if unassessed:
        why = {
            s["county_code"]: s["outcome_reason"]
            for s in run.standings["items"]
            if s["county_code"] in unassessed
        }
        raise Conflict(
            f"Run {run.id} cannot be published: {', '.join(unassessed)} could not be assessed. "
            + " ".join(f"{code}: {reason}." for code, reason in why.items()),
            not_assessed=unassessed,
        )


async def _superseded(
    *, session: Session, run: AssessmentRun, body: RunPublish
) -> AssessmentRun | None:
    """The year's published run this publication replaces, named with a reason (or None)."""
    current = await repository.current_published_run(session=session, year=run.year)
    if current is None:
        if body.supersedes is not None:
            raise ValidationFailed.single(
                "supersedes", f"{run.year} has no published run to supersede"
            )
        return None
    if body.supersedes is None:
        raise Conflict(
            f"{run.year} is already published (run {current.id}): a second publication names "
            "it in supersedes, with a reason.",
            published_run=current.id,
        )
    if body.supersedes != current.id:
        raise Conflict(
            f"supersedes must name the year's published run {current.id}, not {body.supersedes}.",
            published_run=current.id,
        )
    if not body.reason:
        raise ValidationFailed.single("reason", "superseding a published run needs a reason")
    return current


async def publish_run(
    *,
    session: Session,
    run: AssessmentRun,
    actor: Actor,
    if_match: str | None,
    body: RunPublish | None = None,
) -> AssessmentRun:
    """Freeze a complete, fully assessed year-end run; a year's second publication supersedes
    the first by name and with a reason, and the first then says so."""
    body = body or RunPublish()
    check_if_match(if_match, run_etag(run))
    _check_publishable(run)
    earlier = await _superseded(session=session, run=run, body=body)
    before = _history_summary(run)
    stamp = now()
    if earlier is not None:
        earlier_before = _history_summary(earlier)
        earlier.superseded_by = run.id
        await repository.flush(session=session)
        await record_history(
            session=session,
            entity="run",
            entity_id=earlier.id,
            action="superseded",
            year=earlier.year,
            actor=actor,
            before=earlier_before,
            after=_history_summary(earlier),
            reason=body.reason,
        )
    run.status = PUBLISHED
    run.published_at = stamp
    run.published_by = actor.name
    run.supersedes = earlier.id if earlier else None
    run.publication_reason = body.reason
    await repository.flush(session=session)
    await record_history(
        session=session,
        entity="run",
        entity_id=run.id,
        action="publish",
        year=run.year,
        actor=actor,
        before=before,
        after=_history_summary(run),
        reason=body.reason,
    )
    await emit(
        session,
        source=EVENT_SOURCE,
        type="assessment_run.published",
        subject=f"assessment-runs/{run.id}",
        data={
            "id": run.id,
            "year": run.year,
            "supersedes": run.supersedes,
            "reason": body.reason,
            "item": run_read(run).model_dump(mode="json"),
        },
        county_code=None,
    )
    return run
