"""Rules of the food-processing rectification (食品加工業集中整頓: 扶持一批、整頓一批、關閉一批):
one current disposition per enterprise, each decision dated so the disposition on any day
follows. Raises the kit's errors; all SQL is in `disposition_repository`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from certification import disposition_repository as repository
from certification.catalogue import Catalogue
from certification.disposition_repository import DispositionQuery
from certification.models import FoodDisposition, FoodDispositionDecision, FoodDispositionHistory
from certification.schemas import (
    DISPOSITION_LABELS,
    CountyDispositionStats,
    Disposition,
    DispositionCounts,
    DispositionCreate,
    DispositionHistoryRead,
    DispositionRead,
    DispositionStats,
    DispositionUpdate,
)
from certification.service import ImportRejected, county_error
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.csvio import RowError
from kit.dates import business_date_errors
from kit.errors import FieldError, NotFound, ValidationFailed, field_name
from kit.events import NewEvent, emit, emit_many
from kit.identifiers import new_id
from kit.pagination import Page, PageParams
from kit.xlsxio import Upload

EVENT_SOURCE = "certification"
EVENT_TYPE = "disposition.changed"
FOOD_LICENCE = "food_production_licence"
"""The kind whose number format a disposition's `licence_number` has."""

CSV_COLUMNS = [
    "id",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "licence_number",
    "disposition",
    "decided_on",
    "deadline",
    "reason",
]
IMPORT_FIELDS = [name for name in CSV_COLUMNS if name != "id"]
IMPORT_REQUIRED = {
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "disposition",
    "decided_on",
    "reason",
}
LABELS = {
    "id": "编号",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "county_code": "县区代码",
    "licence_number": "食品生产许可证编号",
    "disposition": "处置",
    "decided_on": "决定日期",
    "deadline": "整顿期限",
    "reason": "理由",
}
"""The Chinese column label of each column: a workbook export's header, and what an import
workbook's header may say instead of the field name."""
IMPORT_EXAMPLE: dict[str, Any] = {
    "enterprise_credit_code": "91320323134789719R",
    "enterprise_name": "銅山縣某米面加工廠",
    "county_code": "320323",
    "licence_number": "QS320301010001",
    "disposition": "rectifying",
    "decided_on": date(2008, 3, 1),
    "deadline": date(2008, 6, 30),
    "reason": "生產場所衛生條件不達標, 限期整頓",
}
IMPORT_ENUMS = {"disposition": [str(d) for d in Disposition]}
# What a PATCH may set to null.
NULLABLE_ON_EDIT = {"licence_number", "deadline"}


def now() -> datetime:
    return datetime.now(UTC)


def etag_of(item: FoodDisposition | DispositionRead) -> str:
    return make_etag(item.id, item.version)


def subject_of(disposition_id: str) -> str:
    return f"food-dispositions/{disposition_id}"


def to_read(disposition: FoodDisposition) -> DispositionRead:
    kind = Disposition(disposition.disposition)
    return DispositionRead(
        id=disposition.id,
        enterprise_credit_code=disposition.enterprise_credit_code,
        enterprise_name=disposition.enterprise_name,
        county_code=disposition.county_code,
        licence_number=disposition.licence_number,
        disposition=kind,
        disposition_label=DISPOSITION_LABELS[kind],
        decided_on=disposition.decided_on,
        deadline=disposition.deadline,
        reason=disposition.reason,
        version=disposition.version,
        created_at=disposition.created_at,
        updated_at=disposition.updated_at,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _licence_error(number: str | None, catalogue: Catalogue) -> FieldError | None:
    kind = catalogue.kinds.get(FOOD_LICENCE)
    if number is None or kind is None or kind.number_pattern is None:
        return None
    if kind.number_pattern.fullmatch(number):
        return None
    example = f", e.g. {kind.number_example}" if kind.number_example else ""
    return FieldError(
        "licence_number", f"a food production licence number is QS + 12 digits{example}"
    )


def _decision_errors(
    *,
    disposition: str,
    decided_on: date,
    deadline: date | None,
    catalogue: Catalogue,
    today: date,
) -> list[FieldError]:
    """A decision is dated today or before; a rectification has a deadline after that date,
    and only a rectification has one."""
    errors = business_date_errors({"decided_on": decided_on}, today=today)
    errors += business_date_errors(
        {"deadline": deadline}, today=today, horizon_years=catalogue.validity_horizon_years
    )
    if errors:
        return errors
    if disposition == Disposition.rectifying:
        if deadline is None:
            errors.append(FieldError("deadline", "a rectifying decision needs its deadline"))
        elif deadline <= decided_on:
            errors.append(FieldError("deadline", "must be after decided_on"))
    elif deadline is not None:
        errors.append(
            FieldError("deadline", f"only a rectifying decision has one, not {disposition}")
        )
    return errors


def _entry(
    *,
    disposition_id: str,
    action: str,
    actor: Principal,
    at: datetime,
    reason: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> FoodDispositionHistory:
    return FoodDispositionHistory(
        disposition_id=disposition_id,
        action=action,
        actor=actor.client_id,
        actor_name=actor.client_name,
        at=at,
        reason=reason,
        before=before,
        after=after,
    )


def _event_data(item: DispositionRead, *, previous: str | None, reason: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "enterprise_credit_code": item.enterprise_credit_code,
        "from": previous,
        "to": str(item.disposition),
        "decided_on": item.decided_on.isoformat(),
        "reason": reason,
        "item": item.model_dump(mode="json"),
    }


async def _emit(
    session: AsyncSession, item: DispositionRead, *, previous: str | None, reason: str
) -> None:
    await emit(
        session,
        source=EVENT_SOURCE,
        type=EVENT_TYPE,
        subject=subject_of(item.id),
        data=_event_data(item, previous=previous, reason=reason),
        county_code=item.county_code,
    )


def _check_new(data: DispositionCreate, *, catalogue: Catalogue, today: date) -> list[FieldError]:
    """What is wrong with a new disposition, each named by its field."""
    errors = [
        error
        for error in (
            county_error(data.county_code, catalogue),
            _licence_error(data.licence_number, catalogue),
        )
        if error
    ]
    return errors + _decision_errors(
        disposition=data.disposition,
        decided_on=data.decided_on,
        deadline=data.deadline,
        catalogue=catalogue,
        today=today,
    )


def _new_records(
    data: DispositionCreate, *, actor: Principal, at: datetime, reason: str | None = None
) -> tuple[FoodDisposition, FoodDispositionDecision, FoodDispositionHistory]:
    """A new disposition, its first decision and its creation entry in the history."""
    disposition = FoodDisposition(
        id=new_id(),
        created_at=at,
        updated_at=at,
        **(data.model_dump() | {"disposition": str(data.disposition)}),
    )
    decision = FoodDispositionDecision(
        disposition_id=disposition.id,
        disposition=str(data.disposition),
        decided_on=data.decided_on,
        deadline=data.deadline,
    )
    entry = _entry(
        disposition_id=disposition.id,
        action="created" if reason is None else "imported",
        actor=actor,
        at=at,
        reason=reason or data.reason,
        after=data.model_dump(mode="json"),
    )
    return disposition, decision, entry


async def create(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    data: DispositionCreate,
    actor: Principal,
) -> DispositionRead:
    """Record an enterprise's first decision; 409 when it already has a disposition."""
    actor.require_county(data.county_code)
    errors = _check_new(data, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)
    if await repository.disposition_of_enterprise(
        session=session, credit_code=data.enterprise_credit_code
    ):
        raise repository.enterprise_conflict(data.enterprise_credit_code)
    disposition, decision, entry = _new_records(data, actor=actor, at=now())
    await repository.add_disposition(
        session=session, disposition=disposition, decision=decision, entry=entry
    )
    item = to_read(disposition)
    await _emit(session, item, previous=None, reason=data.reason)
    return item


async def get_visible(
    *, session: AsyncSession, disposition_id: str, principal: Principal, for_write: bool = False
) -> FoodDisposition:
    """The disposition, or 404 when absent or (unless it is to be changed, where the county is
    the write's 403) of a county outside the caller's readable counties."""
    found = await repository.get_disposition(session=session, disposition_id=disposition_id)
    if found is None or (not for_write and not principal.reads(found.county_code)):
        raise NotFound(f"No food disposition with id {disposition_id!r}.")
    return found


def _merged(
    disposition: FoodDisposition, given: dict[str, Any], today: date
) -> tuple[dict[str, Any], bool]:
    """The disposition's fields with a PATCH applied, and whether it is a new decision (the
    disposition changes): dated `decided_on` or today, its deadline the one given or none."""
    fields = (
        "enterprise_name",
        "county_code",
        "licence_number",
        "disposition",
        "decided_on",
        "deadline",
    )
    merged = {name: getattr(disposition, name) for name in fields}
    merged.update({name: value for name, value in given.items() if name in fields})
    if merged["disposition"] is not None:
        merged["disposition"] = str(merged["disposition"])
    new_decision = merged["disposition"] != disposition.disposition
    if new_decision:
        merged["decided_on"] = given.get("decided_on") or today
        merged["deadline"] = given.get("deadline")
    return merged, new_decision


async def update(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    disposition: FoodDisposition,
    data: DispositionUpdate,
    if_match: str | None,
    actor: Principal,
) -> DispositionRead:
    """Apply a PATCH under If-Match. A changed `disposition` is a new decision, on or after the
    current one; `decided_on` or `deadline` alone correct the current decision."""
    given = data.model_dump(exclude_unset=True)
    actor.require_county(disposition.county_code)
    if given.get("county_code") is not None:
        actor.require_county(given["county_code"])
    check_if_match(if_match, etag_of(disposition))
    errors = [
        FieldError(name, "cannot be null")
        for name, value in given.items()
        if value is None and name not in NULLABLE_ON_EDIT
    ]
    if errors:
        raise ValidationFailed(errors)
    merged, new_decision = _merged(disposition, given, today)
    errors = [
        error
        for error in (
            county_error(given["county_code"], catalogue) if "county_code" in given else None,
            _licence_error(given.get("licence_number"), catalogue),
        )
        if error
    ]
    errors += _decision_errors(
        disposition=merged["disposition"],
        decided_on=merged["decided_on"],
        deadline=merged["deadline"],
        catalogue=catalogue,
        today=today,
    )
    history = await repository.decisions(session=session, disposition_id=disposition.id)
    earlier = history if new_decision else history[:-1]
    if not errors and earlier and merged["decided_on"] < earlier[-1].decided_on:
        errors.append(
            FieldError(
                "decided_on",
                f"must be on or after {earlier[-1].decided_on.isoformat()}, the date of the "
                "decision before",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    if new_decision:
        merged["reason"] = data.reason
    changed = [name for name, value in merged.items() if getattr(disposition, name) != value]
    if not changed:
        return to_read(disposition)
    before = {name: _jsonable(getattr(disposition, name)) for name in changed}
    after = {name: _jsonable(merged[name]) for name in changed}
    previous = disposition.disposition
    at = now()
    for name, value in merged.items():
        setattr(disposition, name, value)
    disposition.updated_at = at
    if new_decision:
        decision = FoodDispositionDecision(
            disposition_id=disposition.id,
            disposition=merged["disposition"],
            decided_on=merged["decided_on"],
            deadline=merged["deadline"],
        )
    else:
        decision = history[-1]
        decision.decided_on = merged["decided_on"]
        decision.deadline = merged["deadline"]
    entry = _entry(
        disposition_id=disposition.id,
        action="decided" if new_decision else "updated",
        actor=actor,
        at=at,
        reason=data.reason,
        before=before,
        after=after,
    )
    await repository.save_change(session=session, entry=entry, decision=decision)
    item = to_read(disposition)
    if new_decision:
        await _emit(session, item, previous=previous, reason=data.reason)
    return item


def history_read(entry: FoodDispositionHistory) -> DispositionHistoryRead:
    assert entry.id is not None
    return DispositionHistoryRead(
        id=entry.id,
        action=entry.action,
        actor=entry.actor,
        actor_name=entry.actor_name,
        at=entry.at,
        reason=entry.reason,
        before=entry.before,
        after=entry.after,
    )


async def history(
    *, session: AsyncSession, disposition_id: str, page: PageParams
) -> Page[DispositionHistoryRead]:
    entries = await repository.history(session=session, disposition_id=disposition_id, page=page)
    return entries.map(history_read)


def resolve_query(
    *,
    catalogue: Catalogue,
    principal: Principal,
    county_code: str | None = None,
    disposition: Disposition | None = None,
    enterprise_credit_code: str | None = None,
    q: str | None = None,
) -> DispositionQuery:
    if county_code is not None and (error := county_error(county_code, catalogue)):
        raise ValidationFailed([error])
    return DispositionQuery(
        county_code=county_code,
        county_codes=principal.readable_counties(),
        disposition=str(disposition) if disposition else None,
        enterprise_credit_code=enterprise_credit_code,
        text=q or None,
    )


async def list_dispositions(
    *, session: AsyncSession, query: DispositionQuery, page: PageParams
) -> Page[DispositionRead]:
    rows = await repository.list_dispositions(session=session, query=query, page=page)
    return rows.map(to_read)


async def export_rows(
    *,
    sessionmaker: Callable[[], AsyncSession],
    query: DispositionQuery,
    typed: bool = False,
) -> AsyncIterator[list[Any]]:
    """The rows of every matching disposition: text for CSV, dates for a workbook."""
    async for row in repository.stream_dispositions(sessionmaker=sessionmaker, query=query):
        dates = [row.decided_on, row.deadline]
        yield [
            row.id,
            row.enterprise_credit_code,
            row.enterprise_name,
            row.county_code,
            row.licence_number,
            row.disposition,
            *(dates if typed else [d.isoformat() if d else None for d in dates]),
            row.reason,
        ]


async def stats(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    year: int,
    as_of: date | None,
    county_code: str | None,
    counties: frozenset[str] | None = None,
) -> DispositionStats:
    """Per county, the enterprises supported, rectifying and closed on `as_of` (default the
    end of `year`): each enterprise's latest decision by then."""
    if county_code is not None and (error := county_error(county_code, catalogue)):
        raise ValidationFailed([error])
    on = as_of or date(year, 12, 31)
    if on < date(year, 1, 1):
        raise ValidationFailed.single("as_of", f"must not be before the start of {year}")
    counted = await repository.counts_on(
        session=session, on=on, county_code=county_code, county_codes=counties
    )
    shown = {county_code} if county_code else set(catalogue.region_codes)
    if counties is not None:
        shown &= counties
    shown |= {row[0] for row in counted}
    by_county: dict[str, dict[str, int]] = {
        county: dict.fromkeys([str(d) for d in Disposition], 0) for county in shown
    }
    for county, kind, count in counted:
        by_county[county][kind] = count
    rows = [
        CountyDispositionStats(county_code=county, total=sum(counts.values()), **counts)
        for county, counts in sorted(by_county.items())
    ]
    totals = {str(d): sum(getattr(row, str(d)) for row in rows) for d in Disposition}
    return DispositionStats(
        year=year,
        as_of=on,
        by_county=rows,
        totals=DispositionCounts(total=sum(totals.values()), **totals),
    )


def _parse_row(
    line: int, raw: dict[str, str], catalogue: Catalogue, today: date
) -> tuple[DispositionCreate | None, list[RowError]]:
    if "__error__" in raw:
        return None, [RowError(line, "row", raw["__error__"])]
    try:
        data = DispositionCreate.model_validate(
            {name: value for name, value in raw.items() if value != "" and name != "id"}
        )
    except ValidationError as exc:
        return None, [
            RowError(line, field_name(error["loc"]), error["msg"]) for error in exc.errors()
        ]
    errors = _check_new(data, catalogue=catalogue, today=today)
    if errors:
        return None, [RowError(line, e.field, e.message) for e in errors]
    return data, []


async def import_file(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    upload: Upload,
    dry_run: bool,
    actor: Principal,
) -> dict[str, Any]:
    """Validate every row (one enterprise once in the file, none that has a disposition
    already), then store all of them or none. A row of a county outside the actor's binding
    refuses the whole file (403)."""
    errors: list[RowError] = []
    parsed: list[tuple[int, DispositionCreate]] = []
    lines: dict[str, int] = {}
    outside: list[int] = []
    rows = 0
    for line, raw in upload.rows(required=IMPORT_REQUIRED, allowed=set(CSV_COLUMNS), labels=LABELS):
        rows += 1
        county = (raw.get("county_code") or "").strip()
        if county and not actor.covers(county):
            outside.append(line)
        data, row_errors = _parse_row(line, raw, catalogue, today)
        errors += row_errors
        if data is None:
            continue
        code = data.enterprise_credit_code
        if code in lines:
            errors.append(RowError(line, "enterprise_credit_code", f"repeats line {lines[code]}"))
            continue
        lines[code] = line
        parsed.append((line, data))
    actor.require_rows_in_binding(outside)
    if rows == 0:
        raise ValidationFailed.single("file", "The file has a header but no data rows.")
    taken = await repository.enterprises_with_dispositions(session=session, credit_codes=lines)
    errors += [
        RowError(lines[code], "enterprise_credit_code", f"{code} already has a disposition")
        for code in sorted(taken)
    ]
    if errors:
        errors.sort(key=lambda e: e.line)
        report = upload.report(rows=rows, errors=errors, dry_run=dry_run, stored=0)
        raise ImportRejected(
            f"{len({e.line for e in errors})} of {rows} rows have errors; nothing was stored.",
            title="Import rejected",
            **report,
        )
    if dry_run:
        return upload.report(rows=rows, errors=[], dry_run=True, stored=0)
    at = now()
    records = [
        _new_records(data, actor=actor, at=at, reason=f"{upload.kind.upper()} import, line {line}")
        for line, data in parsed
    ]
    await repository.add_many(
        session=session,
        dispositions=[r[0] for r in records],
        decisions=[r[1] for r in records],
        entries=[r[2] for r in records],
    )
    await emit_many(
        session,
        source=EVENT_SOURCE,
        events=[
            NewEvent(
                type=EVENT_TYPE,
                subject=subject_of(disposition.id),
                data=_event_data(to_read(disposition), previous=None, reason=disposition.reason),
                county_code=disposition.county_code,
            )
            for disposition, _, _ in records
        ],
    )
    return upload.report(rows=rows, errors=[], dry_run=False, stored=len(records))
