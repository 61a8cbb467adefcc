"""XLSX in and out, beside CSV: an uploaded workbook yields the rows a CSV file would.

An import route receives its body with `receive_upload`: a CSV file (UTF-8 or GB18030),
an .xlsx workbook (`Content-Type` `XLSX_MEDIA_TYPE`), or either as the file of a
`multipart/form-data` upload (a workbook when the part's type or name says so). The
service reads `Upload.rows`, which are (line, {field: text}) like `kit.csvio.read_rows`, so
its own row validation and report run unchanged; `Upload.report` adds what the kind of
file adds: a CSV file's encoding, and the column letter of each error of a workbook.

A workbook's header row holds the API field names or their labels (one mapping per
resource, field -> label, e.g. "awarded_on" -> "授予日期"); columns an export has but an
import does not take (`ignored`, e.g. the id) are skipped, so an export imports back. Cells
become the text a CSV file would hold: a date cell its ISO date, a whole number without
".0", a boolean "true" / "false"; text is taken as it is (a workbook needs no formula
prefix, see below).

Memory stays bounded: python-calamine holds the sheet's cells while the service iterates its
rows, so the zip is checked first, in a worker thread: its expanded size at most
`MAX_EXPANDED_BYTES`, each sheet at most `MAX_COLUMNS` columns and `MAX_SHEET_CELLS` cells
of extent (read from its row and cell tags, so a small file cannot claim a grid of billions
of cells), no cell or shared string over `MAX_CELL_XML_BYTES`; then the sheet is read, in
the same worker thread, so the event loop keeps serving other requests meanwhile. Exports
are written by XlsxWriter in `constant_memory` mode (one row in memory) to a temporary file,
then streamed; every text cell is written with `write_string`, so a value such as `=cmd|...`
stays text and is never a formula. `bench/xlsx_bench.py` (brand registry, SQLite,
2026-12-02): a 100,000-row workbook (13 columns, 5.2 MiB) imports in 12.3-16.0 s with the
service's RSS peaking at 229-233 MiB (107-111 MiB before) and `/health/live`, polled every
10 ms meanwhile, answering at a p99 of 10-31 ms; the 100,000-row workbook export (10.1 MiB)
takes 12.7-17.4 s and peaks at 156-159 MiB, 3 MiB above its RSS when it started, with a
`/health/live` p99 of 29 ms (287 ms before its rows were written in a worker thread, 250 at
a time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import posixpath
import re
import tempfile
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import IO, Annotated, Any, Literal

import python_calamine
import xlsxwriter
from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from kit.csvio import (
    MAX_COLUMNS,
    MAX_ROW_BYTES,
    RowError,
    _check_header,
    csv_encoding,
    import_report,
    read_rows,
    remember_encoding,
    spool_upload,
)
from kit.downloads import content_disposition
from kit.errors import ValidationFailed

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SheetQuery = Annotated[
    str | None,
    Query(max_length=100, description="A workbook's sheet to read (default: the first)."),
]
"""The `?sheet=` of an import."""
FormatQuery = Annotated[
    Literal["csv", "xlsx"] | None,
    Query(description="`xlsx` for a workbook (or `Accept` the xlsx type); default CSV."),
]
"""The `?format=` of an export."""
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
MAX_SHEET_CELLS = 2_000_000
"""A sheet's extent (rows x columns, empty cells included) may be at most this: python-calamine
holds a sheet's cells while its rows are iterated (about 90 bytes a cell), so this bounds the
memory of an import whatever the upload's size; 100,000 rows of 20 columns fit."""
CHUNK = 64 * 1024
EXPORT_BATCH = 250
"""Rows of an export written per worker-thread call."""
MAX_CELL_XML_BYTES = 4 * 1024 * 1024
"""The most XML one cell (or one shared string) may take: a CSV row may hold 1 MiB."""
_TAG = re.compile(rb"<(?:\w+:)?(row|c|si)\b([^>]*)>")
_REF = re.compile(rb'\br="([A-Z]{0,3})([0-9]{0,7})"')


def column_letter(index: int) -> str:
    """The spreadsheet letter of the 0-based column `index` (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: bytes) -> int:
    number = 0
    for char in letters:
        number = number * 26 + char - 64
    return number - 1


@dataclass
class Upload:
    """A received import body: the spooled file, what kind it is and how to read it."""

    file: IO[bytes]
    kind: str
    sheet: str | None = None
    encoding: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    _loaded: Any = None

    def load(self) -> None:
        """Check a workbook's zip and read its sheet (synchronous: run it in a thread)."""
        check_workbook(self.file)
        self._loaded = load_sheet(self.file, self.sheet)

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self._loaded = None

    def rows(
        self,
        *,
        required: Iterable[str],
        allowed: Iterable[str],
        labels: Mapping[str, str] | None = None,
        ignored: Iterable[str] = (),
    ) -> Iterator[tuple[int, dict[str, str]]]:
        """Each data row as (line, {field: text}), the header checked first: a CSV file's
        (header of field names, as `read_rows`), or a workbook sheet's (`read_xlsx_rows`)."""
        if self.kind == "xlsx":
            return read_xlsx_rows(
                self.file,
                required=required,
                allowed=allowed,
                labels=labels or {},
                ignored=ignored,
                sheet=self.sheet,
                columns=self.columns,
                loaded=self._loaded,
            )
        self.encoding = csv_encoding(self.file)
        return read_rows(self.file, required=required, allowed=allowed, encoding=self.encoding)

    def report(
        self, *, rows: int, errors: Sequence[RowError], dry_run: bool, stored: int
    ) -> dict[str, Any]:
        """`kit.csvio.import_report`, with the encoding or the errors' column letters."""
        return import_report(
            rows=rows,
            errors=errors,
            dry_run=dry_run,
            stored=stored,
            encoding=self.encoding,
            columns=self.columns,
        )


def _is_xlsx(content_type: str | None, filename: str | None = None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == XLSX_MEDIA_TYPE or (filename or "").lower().endswith(".xlsx")


async def receive_upload(request: Request, *, max_bytes: int, sheet: str | None = None) -> Upload:
    """The import body spooled (413 past `max_bytes`): a CSV file, a workbook, or either as
    the file of a multipart upload. A CSV file's encoding is found, a workbook's zip checked
    and its sheet read, in a worker thread, so the event loop serves other requests."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/form-data":
        raw = await spool_upload(request, max_bytes=max_bytes, check_encoding=False)
        try:
            part, part_type, filename = await _file_part(raw, request.headers)
        finally:
            raw.close()
        if _is_xlsx(part_type, filename):
            upload = Upload(part, "xlsx", sheet=sheet)
        else:
            await remember_encoding(part)
            return Upload(part, "csv")
    elif _is_xlsx(media):
        upload = Upload(
            await spool_upload(request, max_bytes=max_bytes, check_encoding=False),
            "xlsx",
            sheet=sheet,
        )
    else:
        return Upload(await spool_upload(request, max_bytes=max_bytes), "csv")
    try:
        await asyncio.to_thread(upload.load)
    except BaseException:
        upload.close()
        raise
    return upload


async def _file_part(raw: IO[bytes], headers: Headers) -> tuple[IO[bytes], str | None, str]:
    async def stream() -> AsyncGenerator[bytes, None]:
        while chunk := await asyncio.to_thread(raw.read, CHUNK):
            yield chunk

    parser = MultiPartParser(headers, stream(), max_files=1, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ValidationFailed.single(
            "file", f"The multipart upload cannot be read: {error}"
        ) from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise ValidationFailed.single("file", "The multipart upload has no file part.")
    upload = files[0]
    upload.file.seek(0, 2)
    if upload.file.tell() == 0:
        upload.file.close()
        raise ValidationFailed.single("file", "The uploaded file is empty.")
    upload.file.seek(0)
    return upload.file, upload.content_type, upload.filename or ""


def check_workbook(spool: IO[bytes]) -> None:
    """422 unless `spool` is an .xlsx zip whose expansion and sheets' extents are bounded.

    Every sheet's XML is read once here (in a worker thread) for its cell references, so a
    sheet with a cell at XFD1048576 is refused before python-calamine would allocate it."""
    spool.seek(0)
    try:
        archive = zipfile.ZipFile(spool)
    except zipfile.BadZipFile:
        raise ValidationFailed.single(
            "file", "The upload is not an .xlsx workbook (not a zip file)."
        ) from None
    try:
        members = archive.infolist()
        if sum(member.file_size for member in members) > MAX_EXPANDED_BYTES:
            raise ValidationFailed.single(
                "file", f"The workbook expands past the limit of {MAX_EXPANDED_BYTES} bytes."
            )
        sheets, strings = _sheet_parts(archive)
        if not sheets:
            raise ValidationFailed.single("file", "The workbook has no worksheet.")
        by_name = {member.filename: member for member in members}
        for name in sorted(sheets | strings):
            if name in by_name:
                _check_extent(archive, by_name[name])
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValidationFailed.single("file", f"The workbook cannot be read: {error}.") from None
    finally:
        archive.close()
        spool.seek(0)


def _sheet_parts(archive: zipfile.ZipFile) -> tuple[set[str], set[str]]:
    """The zip's worksheet parts and shared-string parts: those the workbook's relationships
    name (wherever they are) and every part under xl/worksheets/."""
    names = set(archive.namelist())
    sheets = {n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")}
    strings = {n for n in names if n == "xl/sharedStrings.xml"}
    if "xl/_rels/workbook.xml.rels" in names:
        rels = archive.read("xl/_rels/workbook.xml.rels")
        for tag in re.finditer(rb"<(?:\w+:)?Relationship\b[^>]*>", rels):
            kind = re.search(rb'\bType="[^"]*/(worksheet|sharedStrings)"', tag.group(0))
            target = re.search(rb'\bTarget="([^"]+)"', tag.group(0))
            if kind and target:
                path = target.group(1).decode(errors="replace")
                path = path[1:] if path.startswith("/") else posixpath.normpath("xl/" + path)
                (sheets if kind.group(1) == b"worksheet" else strings).add(path)
    return sheets, strings


def _check_extent(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """The sheet's rows, columns and longest cell, from its `<row>` and `<c>` tags (whose
    `r` attribute is optional: without it a row or cell follows the one before)."""
    max_row = max_column = cells = 0
    row = 0
    column = -1
    last = 0
    offset = 0
    tail = b""
    with archive.open(member) as xml:
        while chunk := xml.read(CHUNK):
            data = tail + chunk
            cut = data.rfind(b"<")
            body, tail = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            for match in _TAG.finditer(body):
                at = offset + match.start()
                if at - last > MAX_CELL_XML_BYTES:
                    raise ValidationFailed.single(
                        "file",
                        f"The sheet has a cell longer than the limit of {MAX_CELL_XML_BYTES} "
                        "bytes.",
                    )
                last = at
                if match.group(1) == b"si":
                    continue
                ref = _REF.search(match.group(2))
                if match.group(1) == b"row":
                    row = int(ref.group(2)) if ref and ref.group(2) else row + 1
                    column = -1
                    max_row = max(max_row, row)
                    continue
                cells += 1
                if ref and ref.group(1):
                    column = _column_index(ref.group(1))
                    row = int(ref.group(2)) if ref.group(2) else row
                else:
                    column += 1
                if column >= MAX_COLUMNS:
                    raise ValidationFailed.single(
                        "header",
                        f"The sheet has a cell in column {column_letter(column)}; "
                        f"the limit is {MAX_COLUMNS} columns.",
                    )
                max_column = max(max_column, column + 1)
                max_row = max(max_row, row)
            offset += len(body)
    if offset + len(tail) - last > MAX_CELL_XML_BYTES:
        raise ValidationFailed.single(
            "file", f"The sheet has a cell longer than the limit of {MAX_CELL_XML_BYTES} bytes."
        )
    if max_row * max_column > MAX_SHEET_CELLS:
        raise ValidationFailed.single(
            "file",
            f"The sheet spans {max_row} rows by {max_column} columns ({cells} cells hold a "
            f"value); the limit is {MAX_SHEET_CELLS:,} cells: split it into several files.",
        )


def cell_text(value: Any) -> str:
    """A workbook cell as the text a CSV file would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()


def read_xlsx_rows(
    spool: IO[bytes],
    *,
    required: Iterable[str],
    allowed: Iterable[str],
    labels: Mapping[str, str],
    ignored: Iterable[str] = (),
    sheet: str | None = None,
    columns: dict[str, str] | None = None,
    loaded: Any = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row of the first sheet (or `sheet`) as (row number, {field: text}).

    The header row (the sheet's first) names fields or their `labels`; `columns`, when
    given, is filled with each field's column letter once the header is read. A row over
    `MAX_ROW_BYTES` or wider than the header is reported for its line (`__error__`).
    `loaded` is the sheet `load_sheet` read already (then `spool` is not read again).
    """
    opened = loaded if loaded is not None else load_sheet(spool, sheet)
    yield from _sheet_rows(opened, set(required), set(allowed), labels, set(ignored), columns)


def load_sheet(spool: IO[bytes], sheet: str | None = None) -> Any:
    """The first sheet (or `sheet`) read by python-calamine, which reads it whole: seconds
    for 100,000 rows, so an upload's is read in a worker thread by `receive_upload`."""
    spool.seek(0)
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(spool)
    except Exception as error:  # calamine's errors share no base class
        raise ValidationFailed.single("file", f"The workbook cannot be read: {error}.") from None
    try:
        return _open_sheet(workbook, sheet)
    finally:
        workbook.close()
        spool.seek(0)


def _open_sheet(workbook: Any, sheet: str | None) -> Any:
    try:
        if sheet is None:
            return workbook.get_sheet_by_index(0)
        return workbook.get_sheet_by_name(sheet)
    except python_calamine.WorksheetNotFound:
        names = ", ".join(workbook.sheet_names)
        raise ValidationFailed.single(
            "sheet", f"The workbook has no sheet {sheet!r}; its sheets: {names}."
        ) from None
    except Exception as error:
        raise ValidationFailed.single("file", f"The sheet cannot be read: {error}.") from None


def _sheet_rows(
    opened: Any,
    required: set[str],
    allowed: set[str],
    labels: Mapping[str, str],
    ignored: set[str],
    columns: dict[str, str] | None,
) -> Iterator[tuple[int, dict[str, str]]]:
    start = opened.start or (0, 0)
    first_row, first_column = start
    by_label = {label: name for name, label in labels.items()}
    rows = opened.iter_rows()
    header_cells = next(rows, None)
    if header_cells is None or not any(cell_text(cell) for cell in header_cells):
        raise ValidationFailed.single("file", "The sheet has no header row.")
    header = [cell_text(cell) for cell in header_cells]
    while header and not header[-1]:
        header.pop()
    if len(header) > MAX_COLUMNS:
        raise ValidationFailed.single(
            "header", f"The header has {len(header)} columns; the limit is {MAX_COLUMNS}."
        )
    known = allowed | ignored
    names = [
        name if name in allowed or by_label.get(name) not in known else by_label[name]
        for name in header
    ]
    kept = [(i, name) for i, name in enumerate(names) if name not in ignored or name in allowed]
    _check_header([name for _, name in kept], required, allowed)
    letters = {name: column_letter(first_column + i) for i, name in kept}
    if columns is not None:
        columns.update(letters)
    width = len(header)
    for offset, cells in enumerate(rows, start=1):
        line = first_row + offset + 1
        texts = [cell_text(cell) for cell in cells]
        if not any(texts):
            continue
        if any(texts[width:]):
            yield line, {"__error__": f"expected {width} columns, found a value past them"}
            continue
        if sum(len(text) for text in texts) > MAX_ROW_BYTES:
            yield line, {"__error__": f"the row is longer than the limit of {MAX_ROW_BYTES} bytes"}
            continue
        yield line, {name: texts[i] if i < len(texts) else "" for i, name in kept}


# Export --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of an export: the field, its header label and its width in characters."""

    name: str
    label: str
    width: float = 16


def write_workbook(
    target: IO[bytes] | str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    sheet: str = "Sheet1",
    enums: Mapping[str, Sequence[str]] | None = None,
    validation_rows: int = 0,
) -> None:
    """A workbook of `rows` under a header of labels (synchronous; see `xlsx_response`)."""
    workbook, worksheet, formats = _open_workbook(target, columns, sheet)
    count = 0
    for count, values in enumerate(rows, start=1):
        write_row(worksheet, count, values, formats)
    _finish(worksheet, columns, count, enums, validation_rows)
    workbook.close()


def _open_workbook(
    target: IO[bytes] | str, columns: Sequence[Column], sheet: str
) -> tuple[Any, Any, dict[str, Any]]:
    workbook, formats = _new_workbook(target)
    return workbook, _add_sheet(workbook, formats, columns, sheet), formats


def _new_workbook(
    target: IO[bytes] | str, *, created: dt.datetime | None = None
) -> tuple[Any, dict[str, Any]]:
    workbook = xlsxwriter.Workbook(
        target,
        {
            "constant_memory": True,
            "remove_timezone": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "tmpdir": tempfile.gettempdir(),
        },
    )
    if created is not None:
        workbook.set_properties({"created": created})
    formats = {
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "header": workbook.add_format({"bold": True}),
    }
    return workbook, formats


def _add_sheet(
    workbook: Any, formats: Mapping[str, Any], columns: Sequence[Column], sheet: str
) -> Any:
    worksheet = workbook.add_worksheet(sheet)
    for index, column in enumerate(columns):
        worksheet.set_column(index, index, column.width)
    for index, column in enumerate(columns):
        worksheet.write_string(0, index, column.label, formats["header"])
    worksheet.freeze_panes(1, 0)
    return worksheet


_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_name(text: str, taken: set[str]) -> str:
    """An Excel sheet name for `text` (at most 31 characters, none of []:*?/\\), unique among
    `taken`, which it joins."""
    base = _SHEET_FORBIDDEN.sub("_", text)[:28] or "sheet"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


@dataclass(frozen=True)
class Table:
    """One sheet of a workbook: its name, its columns and its rows of values."""

    sheet: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]]


def write_tables(tables: Iterable[Table], *, created: dt.datetime | None = None) -> bytes:
    """A workbook of several sheets, each a header of labels over typed cells (text never a
    formula), frozen, with a filter; `created` dates it, so the same tables give the same bytes."""
    buffer = io.BytesIO()
    workbook, formats = _new_workbook(buffer, created=created)
    taken: set[str] = set()
    for table in tables:
        worksheet = _add_sheet(workbook, formats, table.columns, sheet_name(table.sheet, taken))
        count = 0
        for count, values in enumerate(table.rows, start=1):
            write_row(worksheet, count, values, formats)
        _finish(worksheet, table.columns, count, None, 0)
    workbook.close()
    return buffer.getvalue()


def _finish(
    worksheet: Any,
    columns: Sequence[Column],
    count: int,
    enums: Mapping[str, Sequence[str]] | None,
    validation_rows: int,
) -> None:
    worksheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
    last = max(count, validation_rows)
    for index, column in enumerate(columns):
        choices = (enums or {}).get(column.name)
        if choices and last:
            worksheet.data_validation(
                1,
                index,
                last,
                index,
                {
                    "validate": "list",
                    "source": list(choices),
                    "error_title": column.label,
                    "error_message": "One of: " + ", ".join(choices),
                },
            )


def write_row(worksheet: Any, row: int, values: Sequence[Any], formats: Mapping[str, Any]) -> None:
    """One row of typed cells; text always through `write_string` (never a formula)."""
    for column, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, bool):
            worksheet.write_boolean(row, column, value)
        elif isinstance(value, Enum):
            worksheet.write_string(row, column, str(value.value))
        elif isinstance(value, (int, float, Decimal)):
            worksheet.write_number(row, column, float(value))
        elif isinstance(value, dt.datetime):
            worksheet.write_datetime(row, column, value, formats["datetime"])
        elif isinstance(value, dt.date):
            worksheet.write_datetime(
                row, column, dt.datetime.combine(value, dt.time(0)), formats["date"]
            )
        else:
            worksheet.write_string(row, column, str(value))


async def _written(
    columns: Sequence[Column], rows: AsyncIterator[Sequence[Any]], sheet: str
) -> IO[bytes]:
    target = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        workbook, worksheet, formats = _open_workbook(target, columns, sheet)
        count = 0
        pending: list[Sequence[Any]] = []

        def write(batch: list[Sequence[Any]], first: int) -> None:
            for offset, values in enumerate(batch):
                write_row(worksheet, first + offset, values, formats)

        async for values in rows:
            pending.append(values)
            if len(pending) >= EXPORT_BATCH:
                # Written in a worker thread, the loop serving other requests meanwhile.
                await asyncio.to_thread(write, pending, count + 1)
                count += len(pending)
                pending = []
        write(pending, count + 1)
        count += len(pending)
        _finish(worksheet, columns, count, None, 0)
        await asyncio.to_thread(workbook.close)
    except BaseException:
        target.close()
        raise
    target.seek(0)
    return target


async def _file_chunks(
    columns: Sequence[Column], rows: AsyncIterator[Sequence[Any]], sheet: str
) -> AsyncIterator[bytes]:
    written = await _written(columns, rows, sheet)
    with written:
        while chunk := await asyncio.to_thread(written.read, CHUNK):
            yield chunk


def xlsx_response(
    filename: str,
    columns: Sequence[Column],
    rows: AsyncIterator[Sequence[Any]],
    *,
    sheet: str = "Sheet1",
) -> StreamingResponse:
    """A workbook download: `rows` (typed values, in `columns` order) written in constant
    memory to a temporary file, then streamed. `rows` must open its own session."""
    return StreamingResponse(
        _file_chunks(columns, rows, sheet),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def template_response(
    filename: str,
    columns: Sequence[Column],
    example: Sequence[Any],
    *,
    enums: Mapping[str, Sequence[str]],
    sheet: str = "Sheet1",
    validation_rows: int = 10_000,
) -> StreamingResponse:
    """An import template: the header of labels, one example row and, for each enum field,
    a list validation over the first `validation_rows` rows."""
    target = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    write_workbook(
        target,
        columns,
        [example],
        sheet=sheet,
        enums=enums,
        validation_rows=validation_rows,
    )
    target.seek(0)

    def chunks() -> Iterator[bytes]:
        with target:
            while chunk := target.read(CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def wants_xlsx(request: Request, format: str | None) -> bool:
    """An export asked for as a workbook: `?format=xlsx`, or `Accept` naming the type."""
    if format is not None:
        return format.lower() == "xlsx"
    return XLSX_MEDIA_TYPE in request.headers.get("accept", "")


XLSX_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV (UTF-8 with BOM, header of API field names) or, with "
        "`?format=xlsx` or `Accept` the xlsx type, a workbook (typed cells, header of labels)",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
"""OpenAPI `responses` for an export route serving CSV or a workbook."""

TEMPLATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An .xlsx import template: header of labels, an example row, "
        "list validations for the enum columns",
        "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
