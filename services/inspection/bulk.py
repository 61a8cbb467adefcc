"""CSV and XLSX import and export of spot-checks.

An import is read once from its spooled file, a batch at a time: every row is validated
(shape, rules, sample codes unique in the file and against the database), and while no row so
far has failed each batch is inserted with its history and outbox entries, all in the
request's transaction; a failed row stops the inserts, the rest is still checked for the
report, and the 422 rolls everything back. Batches are read, checked and made ready in a
worker thread, the next one while this one is looked up and stored. Nonconforming items travel as a JSON array in one column. A
workbook (kit.xlsxio) yields the same rows, its header naming fields or their `LABELS`.
"""

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inspection import repository
from inspection.catalogue import Catalogue
from inspection.models import SpotCheck
from inspection.schemas import LABELS, Result, SpotCheckFields, SpotCheckFilters
from inspection.service import (
    EVENT_SOURCE,
    RECORDED_FIELDS,
    Embargo,
    flags_brand_review,
    history_row,
    outbox_row,
    published_event,
    pydantic_errors,
    rule_errors,
    snapshot,
    stored_values,
    utcnow,
)
from kit.auth import Principal
from kit.csvio import RowError, batched, drawn_in_thread
from kit.db import as_utc, dialect_of, plan_each_statement
from kit.errors import FieldError, ValidationFailed
from kit.events import PreparedEvents, emit_prepared, prepare_events
from kit.identifiers import new_id
from kit.xlsxio import Upload

# A programme's own fields (config/programmes.json) are required row by row.
REQUIRED_COLUMNS = (
    "plan_code",
    "level",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "sampled_on",
    "result",
)
EXPORT_COLUMNS = (
    "id",
    *RECORDED_FIELDS,
    "reinspection_of",
    "root_id",
    "final_result",
    "created_by",
    "created_at",
    "updated_at",
)
# Export-only columns an import accepts and ignores, so an export can be loaded elsewhere.
IGNORED_ON_IMPORT = frozenset(
    {"id", "root_id", "final_result", "created_by", "created_at", "updated_at"}
)
ALLOWED_COLUMNS = frozenset({*EXPORT_COLUMNS, "inspected_on"})
PARSED_COLUMNS = frozenset({*RECORDED_FIELDS, "inspected_on"})
FINAL_RESULT_CELL = EXPORT_COLUMNS.index("final_result")
DECIMAL_CELLS = tuple(
    EXPORT_COLUMNS.index(name)
    for name in ("nominal_quantity", "measured_shortfall", "tolerated_deficiency")
)


def _parse_row(
    values: dict[str, str], *, catalogue: Catalogue, today: date
) -> tuple[SpotCheckFields | None, list[tuple[str, str]]]:
    if "__error__" in values:
        return None, [("row", values["__error__"])]
    if values.get("reinspection_of"):
        return None, [
            (
                "reinspection_of",
                "re-inspections are recorded one at a time with POST /api/v1/spot-checks",
            )
        ]
    data: dict[str, Any] = {
        name: value for name, value in values.items() if value != "" and name in PARSED_COLUMNS
    }
    if "nonconforming_items" in data:
        try:
            data["nonconforming_items"] = json.loads(data["nonconforming_items"])
        except json.JSONDecodeError as exc:
            return None, [("nonconforming_items", f"not a JSON array of items: {exc.msg}")]
    try:
        record = SpotCheckFields.model_validate(data)
    except ValidationError as exc:
        return None, [(e.field, e.message) for e in pydantic_errors(exc)]
    errors = rule_errors(record, catalogue=catalogue, today=today)
    return record, [(e.field, e.message) for e in errors]


def _rows(upload: Upload) -> Iterator[tuple[int, dict[str, str]]]:
    return upload.rows(required=REQUIRED_COLUMNS, allowed=ALLOWED_COLUMNS, labels=LABELS)


def _repeat_error(line: int, record: SpotCheckFields, first_line: int) -> RowError:
    return RowError(
        line,
        "sample_code",
        f"sample {record.sample_code!r} of plan {record.plan_code!r} repeats line {first_line}",
    )


async def _stored_sample_errors(
    *, session: AsyncSession, keyed: dict[tuple[str, str], int]
) -> list[RowError]:
    """Rows whose sample is already recorded in the database."""
    stored = await repository.existing_originals(session=session, keys=list(keyed))
    return [
        RowError(
            keyed[key], "sample_code", f"sample {key[1]!r} is already recorded in plan {key[0]!r}"
        )
        for key in stored
    ]


async def _stored_inspection_errors(
    *, session: AsyncSession, keyed: dict[tuple[str, date], int]
) -> list[RowError]:
    """Rows inspecting an item on a day it already has an inspection."""
    stored = await repository.existing_inspections(session=session, keys=list(keyed))
    return [
        RowError(
            keyed[key], "equipment_code", f"equipment {key[0]!r} has an inspection on {key[1]}"
        )
        for key in stored
    ]


class _Keys:
    """The unique keys of an upload's rows seen so far (samples of a plan, items' days),
    and those of the batch being checked, each with its first line."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], int] = {}
        self.items: dict[tuple[str, date], int] = {}
        self.batch_samples: dict[tuple[str, str], int] = {}
        self.batch_items: dict[tuple[str, date], int] = {}

    def repeats(self, line: int, record: SpotCheckFields) -> list[RowError]:
        """The row's keys an earlier row of the file holds; the others are kept."""
        errors = []
        if record.sample_code is not None:
            sample = (record.plan_code, record.sample_code)
            if sample in self.samples:
                errors.append(_repeat_error(line, record, self.samples[sample]))
            else:
                self.samples[sample] = self.batch_samples[sample] = line
        if record.equipment_code is not None:
            item = (record.equipment_code, record.sampled_on)
            if item in self.items:
                errors.append(
                    RowError(
                        line,
                        "equipment_code",
                        f"equipment {item[0]!r} inspected on {item[1]} repeats line "
                        f"{self.items[item]}",
                    )
                )
            else:
                self.items[item] = self.batch_items[item] = line
        return errors

    def take_batch(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, date], int]]:
        """The batch's keys, for the database to be asked about; then the next batch begins."""
        taken = self.batch_samples, self.batch_items
        self.batch_samples, self.batch_items = {}, {}
        return taken


class _ImportBatch:
    """The rows of one insert batch: spot-checks with their history and outbox entries."""

    def __init__(
        self,
        *,
        principal: Principal,
        now: datetime,
        request_id: str | None,
        catalogue: Catalogue,
        kind: str = "csv",
    ) -> None:
        self.kind = kind
        self.catalogue = catalogue
        self.principal = principal
        self.now = now
        self.request_id = request_id
        self.spot_checks: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []

    def add(self, record: SpotCheckFields) -> None:
        """An imported original check, its history entry, and its notice when it failed."""
        spot_check_id = new_id()
        row = {
            "id": spot_check_id,
            **stored_values(record),
            "reinspection_of": None,
            "root_id": spot_check_id,
            "final_result": record.result.value,
            "overturned_on": None,
            "created_by": self.principal.client_id,
            "created_at": self.now,
            "updated_at": self.now,
            "version": 1,
        }
        self.spot_checks.append(row)
        self.history.append(
            history_row(
                spot_check_id=spot_check_id,
                version=1,
                action="imported",
                principal=self.principal,
                reason=f"{self.kind.upper()} import",
                before=None,
                after=snapshot(row),
                now=self.now,
            )
        )
        if record.result is Result.failed and flags_brand_review(
            record.programme.value, self.catalogue
        ):
            self.outbox.append(
                outbox_row(
                    row,
                    spot_check_id=spot_check_id,
                    reference=spot_check_id,
                    now=self.now,
                    request_id=self.request_id,
                )
            )


@dataclass
class _CheckedBatch:
    """One batch of an import as checked (and, while the file reads well, made ready to
    store) in a worker thread: the keys still to look up in the database, each by its line."""

    rows: int
    errors: list[RowError]
    samples: dict[tuple[str, str], int]
    items: dict[tuple[str, date], int]
    ready: _ImportBatch | None
    events: PreparedEvents | None


def _checked_batches(
    upload: Upload,
    *,
    catalogue: Catalogue,
    today: date,
    principal: Principal,
    outside: list[int],
    store: bool,
    batch_size: int,
    request_id: str | None,
    timezone: str,
    dialect: str,
) -> Iterator[_CheckedBatch]:
    """The upload's batches, each checked on its own and against the earlier rows; while
    no row so far has failed and `store`, with the rows to insert and the
    `spot_check.published` event of each row that has a bulletin day. Safe to advance from
    a worker thread: it reads the spooled file and the catalogue, nothing of a session."""
    keys = _Keys()
    now = utcnow()
    bad = False
    for lines in batched(_rows(upload), batch_size):
        errors: list[RowError] = []
        records = []
        for line, values in lines:
            # A row without a county is refused for its missing field instead.
            county = (values.get("county_code") or "").strip()
            if county and not principal.covers(county):
                outside.append(line)
            record, problems = _parse_row(values, catalogue=catalogue, today=today)
            errors.extend(RowError(line, field, message) for field, message in problems)
            if record is not None:
                errors.extend(keys.repeats(line, record))
                records.append(record)
        samples, items = keys.take_batch()
        bad = bad or bool(errors)
        if not store or bad:
            yield _CheckedBatch(len(lines), errors, samples, items, None, None)
            continue
        ready = _ImportBatch(
            principal=principal,
            now=now,
            request_id=request_id,
            catalogue=catalogue,
            kind=upload.kind,
        )
        for record in records:
            ready.add(record)
        # The rows' values read as attributes: ORM objects would cost more than the rest.
        published = (
            published_event(
                cast(SpotCheck, SimpleNamespace(**row)),
                catalogue=catalogue,
                today=today,
                timezone=timezone,
            )
            for row in ready.spot_checks
        )
        events = prepare_events(
            EVENT_SOURCE, [event for event in published if event], dialect=dialect
        )
        yield _CheckedBatch(len(lines), errors, samples, items, ready, events)


async def import_spot_checks(
    *,
    session: AsyncSession,
    upload: Upload,
    catalogue: Catalogue,
    today: date,
    principal: Principal,
    dry_run: bool,
    batch_size: int,
    request_id: str | None,
    timezone: str,
) -> dict[str, Any]:
    """Validate an upload and store all of it or none: the per-row report. A row of a
    county outside the principal's binding refuses the whole file (403)."""
    await plan_each_statement(session)
    errors: list[RowError] = []
    outside: list[int] = []
    rows = stored = 0
    checked_batches = _checked_batches(
        upload,
        catalogue=catalogue,
        today=today,
        principal=principal,
        outside=outside,
        store=not dry_run,
        batch_size=batch_size,
        request_id=request_id,
        timezone=timezone,
        dialect=dialect_of(session),
    )
    async with aclosing(drawn_in_thread(checked_batches, ahead=True)) as batches:
        async for batch in batches:
            rows += batch.rows
            errors += batch.errors
            errors += await _stored_sample_errors(session=session, keyed=batch.samples)
            errors += await _stored_inspection_errors(session=session, keyed=batch.items)
            if errors or outside or batch.ready is None or batch.events is None:
                continue
            await repository.insert_many(
                session=session,
                spot_checks=batch.ready.spot_checks,
                history=batch.ready.history,
                outbox=batch.ready.outbox,
            )
            await emit_prepared(session, batch.events)
            stored += len(batch.ready.spot_checks)
    principal.require_rows_in_binding(outside)
    errors.sort(key=lambda error: error.line)
    if errors:
        report = upload.report(rows=rows, errors=errors, dry_run=dry_run, stored=0)
        problem = ValidationFailed(
            [FieldError(e.field, e.message) for e in errors[:1]],
            detail=f"{report['error_count']} problem(s) in {rows} row(s); nothing was stored.",
        )
        problem.extra.update(report)
        raise problem
    if rows == 0:
        raise ValidationFailed.single("file", "The file has a header but no rows.")
    return upload.report(rows=rows, errors=[], dry_run=dry_run, stored=stored)


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _typed_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return as_utc(value)
    return value


def _export_row(spot_check: SpotCheck, embargo: Embargo, *, typed: bool = False) -> list[Any]:
    """One spot-check's cells, its final result as the embargo lets it out (empty on a
    re-inspection, as the API serves it): text for CSV, or dates, booleans and numbers for
    a workbook when `typed`."""
    cell = _typed_cell if typed else _cell
    cells = [cell(getattr(spot_check, name)) for name in EXPORT_COLUMNS]
    final_result = embargo.final_result(spot_check)
    cells[FINAL_RESULT_CELL] = final_result.value if final_result else None
    if typed:
        for index in DECIMAL_CELLS:
            cells[index] = Decimal(cells[index]) if cells[index] is not None else None
    return cells


async def export_rows(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    filters: SpotCheckFilters,
    today: date,
    batch_size: int = 1000,
    typed: bool = False,
) -> AsyncIterator[Sequence[Any]]:
    """Rows of an export, read in id order batch by batch on a session of its own."""
    async with (
        sessionmaker() as session,
        aclosing(
            repository.export_batches(
                session=session, filters=filters, today=today, size=batch_size
            )
        ) as batches,
    ):
        embargo = Embargo(today=today, lifted=filters.include_unpublished)
        async for batch in batches:
            for spot_check in batch:
                yield _export_row(spot_check, embargo, typed=typed)
