"""Rules of incidents: what a valid incident is, its status lifecycle with history, the
stats the veto counts, and the counterfeit notice to the brand registry.

    reported ──► confirmed ──► closed
        │            │
        └────────────┴──► dismissed   (with a reason)

A confirmed or closed incident happened; a dismissed one never counts. When a
counterfeiting case against a listed brand is confirmed, the brand registry gets one
counterfeit notice through the outbox. Dismissing the case later sends nothing further: the
registry keeps the notice as the record of a case reported to it (a notice not yet sent when
the case is dismissed is withdrawn).
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from inspection import incident_repository as repository
from inspection.catalogue import Catalogue
from inspection.incident_schemas import (
    LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
    ConfirmedMajorIncident,
    IncidentCounts,
    IncidentCountyStats,
    IncidentCreate,
    IncidentFilters,
    IncidentHistoryList,
    IncidentHistoryRead,
    IncidentKind,
    IncidentRead,
    IncidentStats,
    IncidentStatsRow,
    IncidentStatus,
    IncidentStatusChange,
    IncidentUpdate,
    Severity,
)
from inspection.models import Incident, IncidentHistory, OutboxMessage
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.csvio import RowError
from kit.dates import business_date_errors
from kit.db import as_utc
from kit.errors import Conflict, FieldError, NotFound, ValidationFailed, field_name
from kit.events import NewEvent, emit, emit_many
from kit.identifiers import new_id
from kit.outbox import PENDING, WITHDRAWN, Send, Withdraw
from kit.pagination import Page, PageParams
from kit.xlsxio import Upload

EVENT_SOURCE = "inspection"
REPORTED, STATUS_CHANGED = "incident.reported", "incident.status_changed"
COUNTERFEIT_NOTICE = "counterfeit_notice"
"""The outbox kind of a counterfeit notice to the brand registry."""
NOTICE_SOURCE = "inspection"

TRANSITIONS: Mapping[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.reported: frozenset({IncidentStatus.confirmed, IncidentStatus.dismissed}),
    IncidentStatus.confirmed: frozenset({IncidentStatus.closed, IncidentStatus.dismissed}),
    IncidentStatus.closed: frozenset(),
    IncidentStatus.dismissed: frozenset(),
}
HAPPENED = (IncidentStatus.confirmed, IncidentStatus.closed)
"""The statuses of an incident that happened: the ones the veto counts."""

RECORDED_FIELDS = (
    "kind",
    "county_code",
    "occurred_on",
    "reported_on",
    "title",
    "description",
    "severity",
    "severity_criterion",
    "source_system",
    "source_reference",
    "enterprise_credit_code",
    "enterprise_name",
    "counterfeits_brand_id",
)
NULLABLE_ON_CORRECTION = frozenset(
    {"severity_criterion", "enterprise_credit_code", "enterprise_name", "counterfeits_brand_id"}
)
EXPORT_COLUMNS = (
    "id",
    *RECORDED_FIELDS,
    "status",
    "status_on",
    "status_reason",
    "created_by",
    "created_at",
    "updated_at",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def etag_of(incident: Incident) -> str:
    return make_etag(incident.id, incident.version)


def subject_of(incident_id: str) -> str:
    """The subject of an incident's change events."""
    return f"incidents/{incident_id}"


def to_read(incident: Incident, *, catalogue: Catalogue) -> IncidentRead:
    """The served shape of an incident, with labels beside the codes."""
    kinds = catalogue.incidents
    return IncidentRead(
        id=incident.id,
        kind=IncidentKind(incident.kind),
        kind_label=kinds.kind_label(incident.kind),
        county_code=incident.county_code,
        occurred_on=incident.occurred_on,
        reported_on=incident.reported_on,
        title=incident.title,
        description=incident.description,
        severity=Severity(incident.severity),
        severity_label=SEVERITY_LABELS[Severity(incident.severity)],
        severity_criterion=incident.severity_criterion,
        severity_criterion_label=kinds.criterion_label(incident.severity_criterion),
        source_system=incident.source_system,
        source_reference=incident.source_reference,
        enterprise_credit_code=incident.enterprise_credit_code,
        enterprise_name=incident.enterprise_name,
        counterfeits_brand_id=incident.counterfeits_brand_id,
        status=IncidentStatus(incident.status),
        status_label=STATUS_LABELS[IncidentStatus(incident.status)],
        status_on=incident.status_on,
        status_reason=incident.status_reason,
        created_by=incident.created_by,
        created_at=as_utc(incident.created_at),
        updated_at=as_utc(incident.updated_at),
        version=incident.version,
    )


async def visible_incident(
    *, session: AsyncSession, incident_id: str, principal: Principal | None = None
) -> Incident:
    """The incident with this id; one of a county outside the principal's readable counties
    exists for no one (a write there is the 403 naming `county_code` instead)."""
    incident = await repository.get_incident(session=session, incident_id=incident_id)
    if incident is None or (principal is not None and not principal.reads(incident.county_code)):
        raise NotFound(f"No incident with id {incident_id!r}.")
    return incident


async def list_incidents(
    *, session: AsyncSession, filters: IncidentFilters, page: PageParams, catalogue: Catalogue
) -> Page[IncidentRead]:
    """One page of the filtered incidents, oldest first."""
    rows = await repository.list_incidents(session=session, filters=filters, page=page)
    return rows.map(lambda row: to_read(row, catalogue=catalogue))


def filter_errors(
    *,
    county_code: str | None,
    occurred_from: date | None,
    occurred_to: date | None,
    catalogue: Catalogue,
) -> list[FieldError]:
    """What is wrong with the list filters, each named by its parameter."""
    errors = []
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        errors.append(FieldError("county_code", error))
    if occurred_from and occurred_to and occurred_from > occurred_to:
        errors.append(FieldError("occurred_to", "must not be before occurred_from"))
    return errors


def rule_errors(
    values: Mapping[str, Any], *, catalogue: Catalogue, today: date
) -> list[FieldError]:
    """What makes an incident invalid beyond its fields' own shapes: the county, the date
    policy, the criterion a major incident names, and a counterfeited brand only on a
    counterfeiting case."""
    errors = []
    if county_error := catalogue.county_code_error(values["county_code"]):
        errors.append(FieldError("county_code", county_error))
    occurred_on, reported_on = values["occurred_on"], values["reported_on"]
    errors += business_date_errors(
        {"occurred_on": occurred_on, "reported_on": reported_on}, today=today
    )
    if reported_on < occurred_on:
        errors.append(FieldError("reported_on", "an incident is reported after it occurred"))
    kind, criterion = str(values["kind"]), values["severity_criterion"]
    if values["severity"] == Severity.major:
        if criterion is None:
            errors.append(
                FieldError("severity_criterion", "a major incident names the criterion applied")
            )
        elif criterion_error := catalogue.incidents.criterion_error(kind, criterion):
            errors.append(FieldError("severity_criterion", criterion_error))
    elif criterion is not None:
        errors.append(FieldError("severity_criterion", "only a major incident names a criterion"))
    if values["counterfeits_brand_id"] is not None and kind != IncidentKind.counterfeiting_case:
        errors.append(
            FieldError("counterfeits_brand_id", "only a counterfeiting_case counterfeits a brand")
        )
    if values["enterprise_name"] is not None and values["enterprise_credit_code"] is None:
        errors.append(
            FieldError("enterprise_credit_code", "an enterprise named is named by its credit code")
        )
    return errors


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _stored(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value.value if isinstance(value, IncidentKind | Severity) else value
        for name, value in values.items()
    }


def _history(
    incident: Incident,
    *,
    action: str,
    actor: Principal,
    at: datetime,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    effective_on: date | None = None,
) -> IncidentHistory:
    return IncidentHistory(
        id=new_id(),
        incident_id=incident.id,
        version=incident.version,
        action=action,
        actor=actor.client_id,
        reason=reason,
        at=at,
        before=before,
        after=after or {},
        from_status=from_status,
        to_status=to_status,
        effective_on=effective_on,
    )


async def _check_source_free(
    *, session: AsyncSession, source_system: str, source_reference: str, except_id: str | None
) -> None:
    """409 naming `source_reference` when the source system already reported it."""
    found = await repository.find_by_source(
        session=session, source_system=source_system, source_reference=source_reference
    )
    if found is not None and found.id != except_id:
        raise repository.source_conflict(source_system, source_reference, found.id)


async def create_incident(
    *,
    session: AsyncSession,
    body: IncidentCreate,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
) -> Incident:
    """Record a reported incident, its history entry and `incident.reported`."""
    principal.require_county(body.county_code)
    values = body.model_dump(mode="python")
    values["reported_on"] = body.reported_on or today
    errors = rule_errors(values, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)
    await _check_source_free(
        session=session,
        source_system=body.source_system,
        source_reference=body.source_reference,
        except_id=None,
    )
    incident, entry = _reported(values, principal=principal, at=utcnow(), action="reported")
    await repository.add(session=session, rows=[incident, entry])
    await emit_many(
        session, source=EVENT_SOURCE, events=[_reported_event(incident, catalogue=catalogue)]
    )
    return incident


def _reported(
    values: Mapping[str, Any],
    *,
    principal: Principal,
    at: datetime,
    action: str,
    reason: str | None = None,
) -> tuple[Incident, IncidentHistory]:
    """A new incident of checked `values`, `reported` from its report day, and its first
    history entry."""
    incident = Incident(
        id=new_id(),
        **_stored(values),
        status=IncidentStatus.reported.value,
        status_on=values["reported_on"],
        created_by=principal.client_id,
        created_at=at,
        updated_at=at,
    )
    entry = _history(
        incident,
        action=action,
        actor=principal,
        at=at,
        reason=reason,
        after={name: _jsonable(getattr(incident, name)) for name in RECORDED_FIELDS},
        to_status=incident.status,
        effective_on=incident.status_on,
    )
    return incident, entry


def _reported_event(incident: Incident, *, catalogue: Catalogue) -> NewEvent:
    return NewEvent(
        type=REPORTED,
        subject=subject_of(incident.id),
        data={
            "id": incident.id,
            "item": to_read(incident, catalogue=catalogue).model_dump(mode="json"),
        },
        county_code=incident.county_code,
    )


def _notice_row(incident: Incident, *, catalogue: Catalogue, request_id: str | None) -> Any:
    """The outbox entry telling the brand registry of a confirmed counterfeiting case."""
    assert incident.counterfeits_brand_id is not None
    now = utcnow()
    kind = catalogue.incidents.kind_label(incident.kind)
    return OutboxMessage(
        id=new_id(),
        kind=COUNTERFEIT_NOTICE,
        # The outbox's column names the record a notice is about: here the incident.
        spot_check_id=incident.id,
        payload={
            "source": NOTICE_SOURCE,
            "reference": incident.id,
            "brand_id": incident.counterfeits_brand_id,
            "case_kind": incident.kind,
            "occurred_on": incident.occurred_on.isoformat(),
            "county_code": incident.county_code,
            "summary": f"{kind}：{incident.title}",
        },
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        request_id=request_id,
    )


async def _notices_owed(
    *, session: AsyncSession, incident: Incident, catalogue: Catalogue, request_id: str | None
) -> list[Any]:
    """The counterfeit notice a confirmed case against a listed brand owes, unless one was
    written already."""
    if incident.counterfeits_brand_id is None or incident.status not in HAPPENED:
        return []
    notices = await repository.notices_of(session=session, incident_id=incident.id)
    if any(n.kind == COUNTERFEIT_NOTICE and n.status != WITHDRAWN for n in notices):
        return []
    return [_notice_row(incident, catalogue=catalogue, request_id=request_id)]


def _merge(
    incident: Incident, body: IncidentUpdate, *, catalogue: Catalogue, today: date
) -> dict[str, Any]:
    """The recorded fields with a correction applied, checked as a whole (422 naming each
    bad field)."""
    given = body.changes()
    errors = [
        FieldError(name, "cannot be null")
        for name, value in given.items()
        if value is None and name not in NULLABLE_ON_CORRECTION
    ]
    if errors:
        raise ValidationFailed(errors)
    merged = {name: getattr(incident, name) for name in RECORDED_FIELDS}
    merged.update(_stored(given))
    errors = rule_errors(merged, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)
    return merged


async def correct_incident(
    *,
    session: AsyncSession,
    incident: Incident,
    body: IncidentUpdate,
    if_match: str | None,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
    request_id: str | None,
) -> Incident:
    """Correct recorded fields under If-Match, keeping old and new values in the history. A
    counterfeited brand the registry was told of stays: correct it by a new incident."""
    principal.require_county(incident.county_code)
    if body.county_code is not None:
        principal.require_county(body.county_code)
    check_if_match(if_match, etag_of(incident))
    merged = _merge(incident, body, catalogue=catalogue, today=today)
    changed = [name for name, value in merged.items() if getattr(incident, name) != value]
    if not changed:
        return incident
    if "counterfeits_brand_id" in changed:
        notices = await repository.notices_of(session=session, incident_id=incident.id)
        if any(n.kind == COUNTERFEIT_NOTICE and n.status != WITHDRAWN for n in notices):
            raise Conflict(
                "The brand registry was notified of the counterfeited brand; it cannot change.",
                field="counterfeits_brand_id",
            )
    if {"source_system", "source_reference"} & set(changed):
        await _check_source_free(
            session=session,
            source_system=merged["source_system"],
            source_reference=merged["source_reference"],
            except_id=incident.id,
        )
    before = {name: _jsonable(getattr(incident, name)) for name in changed}
    now = utcnow()
    for name in changed:
        setattr(incident, name, merged[name])
    incident.updated_at = now
    # Written first: the history entry carries the version this change makes.
    await repository.flush(session=session)
    entry = _history(
        incident,
        action="corrected",
        actor=principal,
        at=now,
        reason=body.reason,
        before=before,
        after={name: _jsonable(merged[name]) for name in changed},
    )
    notices = await _notices_owed(
        session=session, incident=incident, catalogue=catalogue, request_id=request_id
    )
    await repository.add(session=session, rows=[entry, *notices])
    return incident


def _check_transition(current: IncidentStatus, requested: IncidentStatus) -> None:
    """409 naming both statuses unless `current` may become `requested`."""
    if requested in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
    raise Conflict(
        f"Illegal status change from {current} to {requested} (allowed: {allowed}).",
        field="status",
        current_status=current.value,
        requested_status=requested.value,
    )


def _effective_on(change: IncidentStatusChange, incident: Incident, today: date) -> date:
    """The day a status change takes effect: today unless back-dated, never in the future
    and never before the current status took effect."""
    effective_on = change.effective_on or today
    errors = business_date_errors({"effective_on": effective_on}, today=today)
    if not errors and effective_on < incident.status_on:
        errors.append(
            FieldError(
                "effective_on",
                f"must be on or after {incident.status_on}, when the current status took effect",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    return effective_on


async def change_status(
    *,
    session: AsyncSession,
    incident: Incident,
    change: IncidentStatusChange,
    if_match: str | None,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
    request_id: str | None,
) -> Incident:
    """Move an incident along its lifecycle under If-Match, with history and
    `incident.status_changed`; confirming a counterfeiting case against a listed brand
    notifies the brand registry."""
    principal.require_county(incident.county_code)
    check_if_match(if_match, etag_of(incident))
    current = IncidentStatus(incident.status)
    _check_transition(current, change.status)
    if change.status == IncidentStatus.dismissed and change.reason is None:
        raise ValidationFailed.single("reason", "dismissing an incident needs a reason")
    effective_on = _effective_on(change, incident, today)
    now = utcnow()
    incident.status = change.status.value
    incident.status_on = effective_on
    incident.status_reason = change.reason
    incident.updated_at = now
    # Written first: the history entry carries the version this change makes.
    await repository.flush(session=session)
    entry = _history(
        incident,
        action="status",
        actor=principal,
        at=now,
        reason=change.reason,
        from_status=current.value,
        to_status=change.status.value,
        effective_on=effective_on,
    )
    notices = await _notices_owed(
        session=session, incident=incident, catalogue=catalogue, request_id=request_id
    )
    await repository.add(session=session, rows=[entry, *notices])
    await emit(
        session,
        source=EVENT_SOURCE,
        type=STATUS_CHANGED,
        subject=subject_of(incident.id),
        data={
            "id": incident.id,
            "from": current.value,
            "to": change.status.value,
            "effective_on": effective_on.isoformat(),
            "reason": change.reason,
            "item": to_read(incident, catalogue=catalogue).model_dump(mode="json"),
        },
        county_code=incident.county_code,
    )
    return incident


def _history_read(entry: IncidentHistory) -> IncidentHistoryRead:
    before = entry.before or {}
    changes = (
        {name: [before.get(name), value] for name, value in entry.after.items()}
        if entry.before is not None
        else dict(entry.after)
    )
    return IncidentHistoryRead(
        id=entry.id,
        version=entry.version,
        action=entry.action,
        actor=entry.actor,
        at=as_utc(entry.at),
        reason=entry.reason,
        from_status=IncidentStatus(entry.from_status) if entry.from_status else None,
        to_status=IncidentStatus(entry.to_status) if entry.to_status else None,
        effective_on=entry.effective_on,
        changes=changes,
    )


async def incident_history(*, session: AsyncSession, incident: Incident) -> IncidentHistoryList:
    entries = await repository.history_of(session=session, incident_id=incident.id)
    return IncidentHistoryList(incident_id=incident.id, items=[_history_read(e) for e in entries])


# Stats


def _counts(rows: Iterable[IncidentStatsRow], *, kinds: Iterable[str]) -> IncidentCounts:
    counts = IncidentCounts(by_kind=dict.fromkeys(kinds, 0))
    for row in rows:
        if row.status == IncidentStatus.dismissed:
            counts.dismissed += row.count
            continue
        counts.reported += row.count
        if row.status in HAPPENED:
            counts.confirmed += row.count
            if row.severity == Severity.major:
                counts.confirmed_major += row.count
                counts.by_kind[row.kind] = counts.by_kind.get(row.kind, 0) + row.count
    return counts


async def incident_stats(
    *,
    session: AsyncSession,
    year: int,
    as_of: date | None,
    county_code: str | None,
    catalogue: Catalogue,
    counties: frozenset[str] | None = None,
) -> IncidentStats:
    """Incidents that occurred in `year` by `as_of` (default 31 December), per county, by
    their status on `as_of`; of `counties` only (None: all) for a county-bound reader."""
    start, year_end = date(year, 1, 1), date(year, 12, 31)
    as_of = as_of or year_end
    errors = []
    if as_of < start:
        errors.append(FieldError("as_of", f"must not be before the start of {year}"))
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        errors.append(FieldError("county_code", error))
    if errors:
        raise ValidationFailed(errors)
    end = min(as_of, year_end)
    rows = await repository.stats_rows(
        session=session,
        start=start,
        end=end,
        as_of=as_of,
        county_code=county_code,
        county_codes=counties,
    )
    majors = await repository.incidents_with_status(
        session=session,
        start=start,
        end=end,
        as_of=as_of,
        statuses=[status.value for status in HAPPENED],
        severity=Severity.major.value,
        county_code=county_code,
        county_codes=counties,
    )
    shown = {county_code} if county_code else set(catalogue.regions)
    if counties is not None:
        shown &= counties
    kinds = [kind.value for kind in IncidentKind]
    by_county = []
    for county in sorted(shown | {row.county_code for row in rows}):
        counts = _counts((r for r in rows if r.county_code == county), kinds=kinds)
        ids = [incident.id for incident, _ in majors if incident.county_code == county]
        by_county.append(
            IncidentCountyStats(county_code=county, confirmed_major_ids=ids, **counts.model_dump())
        )
    records = [
        ConfirmedMajorIncident(
            id=incident.id,
            county_code=incident.county_code,
            kind=IncidentKind(incident.kind),
            kind_label=catalogue.incidents.kind_label(incident.kind),
            title=incident.title,
            occurred_on=incident.occurred_on,
            severity_criterion=incident.severity_criterion,
            severity_criterion_label=catalogue.incidents.criterion_label(
                incident.severity_criterion
            ),
            status=IncidentStatus(status),
            source_system=incident.source_system,
            source_reference=incident.source_reference,
        )
        for incident, status in majors
    ]
    return IncidentStats(
        year=year,
        as_of=as_of,
        by_county=by_county,
        totals=_counts(rows, kinds=kinds),
        confirmed_major_records=records,
    )


# The counterfeit notice's delivery


async def notice_step(*, session: AsyncSession, notice: OutboxMessage) -> Send | Withdraw:
    """What the outbox does with a due counterfeit notice: send it, unless the case was
    dismissed (or its brand corrected) before it went out."""
    incident = await repository.get_incident(session=session, incident_id=notice.spot_check_id)
    if incident is None:
        return Withdraw(f"no incident {notice.spot_check_id!r}")
    if incident.status == IncidentStatus.dismissed:
        return Withdraw("the incident was dismissed before its notice went out")
    if incident.counterfeits_brand_id != notice.payload["brand_id"]:
        return Withdraw("the incident no longer names this brand")
    return Send(dict(notice.payload))


# Import and export

IMPORT_REQUIRED = frozenset(
    {
        "kind",
        "county_code",
        "occurred_on",
        "title",
        "severity",
        "source_system",
        "source_reference",
    }
)


def _import_row(
    line: int, raw: Mapping[str, str], *, catalogue: Catalogue, today: date
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """A row's checked values, or what is wrong with it (each error named by its field)."""
    if "__error__" in raw:
        return None, [RowError(line, "row", raw["__error__"])]
    try:
        body = IncidentCreate.model_validate({k: v for k, v in raw.items() if v != ""})
    except ValidationError as exc:
        return None, [
            RowError(line, field_name(error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
    values = body.model_dump(mode="python")
    values["reported_on"] = body.reported_on or today
    errors = rule_errors(values, catalogue=catalogue, today=today)
    return (None, [RowError(line, e.field, e.message) for e in errors]) if errors else (values, [])


async def import_incidents(
    *,
    session: AsyncSession,
    upload: Upload,
    principal: Principal,
    catalogue: Catalogue,
    today: date,
    dry_run: bool,
) -> dict[str, Any]:
    """Check every row of a CSV or XLSX upload, then store all of them (each `reported`, with
    its `incident.reported`) or none: the per-row report. A row of a county outside the
    caller's binding refuses the whole file (403)."""
    rows, errors, outside = 0, [], []
    checked: list[tuple[int, dict[str, Any]]] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, raw in upload.rows(
        required=IMPORT_REQUIRED, allowed=set(RECORDED_FIELDS), labels=LABELS
    ):
        rows += 1
        county = (raw.get("county_code") or "").strip()
        if county and not principal.covers(county):
            outside.append(line)
        values, problems = _import_row(line, raw, catalogue=catalogue, today=today)
        errors += problems
        if values is None:
            continue
        key = (values["source_system"], values["source_reference"])
        if key in first_line:
            errors.append(RowError(line, "source_reference", f"repeats line {first_line[key]}"))
            continue
        first_line[key] = line
        checked.append((line, values))
    principal.require_rows_in_binding(outside)
    for system, reference in await repository.taken_sources(session=session, keys=list(first_line)):
        errors.append(
            RowError(
                first_line[(system, reference)],
                "source_reference",
                f"{system} already reported an incident under {reference!r}",
            )
        )
    if errors:
        errors.sort(key=lambda e: e.line)
        report = upload.report(rows=rows, errors=errors, dry_run=dry_run, stored=0)
        problem = ValidationFailed(
            [FieldError(e.field, e.message) for e in errors[:1]],
            detail=f"{report['error_count']} problem(s) in {rows} row(s); nothing was stored.",
        )
        problem.extra.update(report)
        raise problem
    if rows == 0:
        raise ValidationFailed.single("file", "The file has a header but no rows.")
    if not dry_run:
        at = utcnow()
        reported = [
            _reported(
                values,
                principal=principal,
                at=at,
                action="imported",
                reason=f"{upload.kind.upper()} import, line {line}",
            )
            for line, values in checked
        ]
        await repository.add(session=session, rows=[row for pair in reported for row in pair])
        await emit_many(
            session,
            source=EVENT_SOURCE,
            events=[_reported_event(incident, catalogue=catalogue) for incident, _ in reported],
        )
    return upload.report(rows=rows, errors=[], dry_run=dry_run, stored=0 if dry_run else rows)


IMPORT_EXAMPLE: dict[str, Any] = {
    "kind": "counterfeiting_case",
    "county_code": "320323",
    "occurred_on": date(2007, 5, 20),
    "reported_on": date(2007, 5, 22),
    "title": "假冒「彭城」牌速凍水餃案",
    "description": "某加工點使用「彭城」註冊商標生產速凍水餃",
    "severity": "major",
    "severity_criterion": "famous_brand_counterfeit",
    "source_system": "12365",
    "source_reference": "TS-2007-031",
    "enterprise_credit_code": "91320300134789719F",
    "enterprise_name": "徐州市某某食品加工點",
    "counterfeits_brand_id": "",
}
IMPORT_ENUMS: dict[str, list[str]] = {
    "kind": [kind.value for kind in IncidentKind],
    "severity": [severity.value for severity in Severity],
}


def export_cell(value: Any, *, typed: bool) -> Any:
    """A CSV cell (text) or, when `typed`, a workbook cell (dates as dates)."""
    if isinstance(value, datetime):
        return as_utc(value) if typed else as_utc(value).isoformat()
    if isinstance(value, date) and not typed:
        return value.isoformat()
    return value


async def export_rows(
    *, sessionmaker: repository.Sessionmaker, filters: IncidentFilters, typed: bool
) -> AsyncIterator[list[Any]]:
    """The cells of every filtered incident, in id order."""
    async for incident in repository.export_incidents(sessionmaker=sessionmaker, filters=filters):
        yield [export_cell(getattr(incident, name), typed=typed) for name in EXPORT_COLUMNS]
