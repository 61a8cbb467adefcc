import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest
from starlette.requests import Request

from kit.csvio import (
    MAX_HEADER_BYTES,
    MAX_ROW_BYTES,
    RowError,
    _csv_chunks,
    batched,
    batched_in_thread,
    check_utf8,
    csv_encoding,
    drawn_in_thread,
    import_report,
    neutralise_formula,
    read_rows,
    spool_upload,
    unquote_formula,
)
from kit.errors import ValidationFailed


def _rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    spool = io.BytesIO(data)
    check_utf8(spool)
    return list(read_rows(spool, required={"name"}, allowed={"name", "city"}))


def test_rows_with_and_without_bom_and_quoted_newlines() -> None:
    plain = _rows("name,city\n甲,徐州\n".encode())
    with_bom = _rows("\ufeffname,city\r\n甲,徐州\r\n".encode())
    assert plain == with_bom == [(2, {"name": "甲", "city": "徐州"})]
    multi = _rows(b'name,city\n"a\nb",x\nc,y\n')
    assert [line for line, _ in multi] == [3, 4]


def test_blank_lines_skipped_and_short_rows_reported() -> None:
    rows = _rows(b"name,city\n\na\n")
    assert rows == [(3, {"__error__": "expected 2 columns, found 1"})]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"city\nx\n", "missing columns: name"),
        (b"name,colour\nx,y\n", "unknown columns: colour"),
        (b"name,name\nx,y\n", "repeated columns: name"),
        (b"\n\n", "no header"),
    ],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        _rows(data)


def test_non_utf8_file_is_rejected_with_a_line() -> None:
    with pytest.raises(ValidationFailed, match="not UTF-8"):
        _rows("name\n甲\n".encode("gbk"))


def test_batched() -> None:
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]


def test_report_counts_rows_with_errors_once() -> None:
    errors = [RowError(2, "a", "bad"), RowError(2, "b", "bad"), RowError(5, "a", "bad")]
    report = import_report(rows=10, errors=errors, dry_run=True, stored=0)
    assert report["valid"] == 8
    assert report["error_count"] == 3
    assert report["errors"][0] == {"line": 2, "field": "a", "message": "bad"}


async def test_export_starts_with_bom_and_quotes_fields() -> None:
    async def rows() -> AsyncIterator[list[str | None]]:
        yield ["甲", 'say "hi", ok']
        yield ["乙", None]

    chunks = [chunk async for chunk in _csv_chunks(["name", "note"], rows(), rows_per_chunk=1)]
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeffname,note\r\n")
    assert '甲,"say ""hi"", ok"\r\n' in text
    assert text.endswith("乙,\r\n")


def test_a_header_of_many_columns_is_refused_quickly_by_its_count() -> None:
    header = ",".join(f"c{i}" for i in range(5000)).encode()
    started = time.perf_counter()
    with pytest.raises(ValidationFailed, match="5000 columns; the limit is 200"):
        _rows(header + b"\nx\n")
    assert time.perf_counter() - started < 0.5


def test_repeated_columns_are_counted_in_one_pass() -> None:
    columns = ["name"] * 150 + ["city"] * 50
    data = (",".join(columns) + "\nx\n").encode()
    with pytest.raises(ValidationFailed, match="repeated columns: city, name"):
        _rows(data)


def test_a_header_line_over_the_limit_is_refused_before_it_is_parsed() -> None:
    data = b"name," + b"x" * (MAX_HEADER_BYTES + 10) + b"\nx,y\n"
    with pytest.raises(ValidationFailed, match=f"limit of {MAX_HEADER_BYTES} bytes"):
        _rows(data)


def test_a_cell_past_the_csv_modules_default_limit_is_a_row_error_not_a_crash() -> None:
    long_row = _rows(b"name,city\n" + b"a" * 200_000 + b",x\nb,y\n")
    assert long_row[0] == (2, {"name": "a" * 200_000, "city": "x"})
    huge = _rows(b"name,city\n" + b"a" * (MAX_ROW_BYTES + 5) + b",x\nb,y\n")
    assert huge[0][1]["__error__"].startswith("the row cannot be read")


@pytest.mark.parametrize(
    "value",
    ["=cmd|' /C calc'!A0", '=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_formula_text_is_neutralised_on_export_and_restored_on_import(value: str) -> None:
    neutral = neutralise_formula(value)
    assert neutral == "'" + value
    assert unquote_formula(neutral) == value
    assert neutralise_formula("徐州") == "徐州"
    assert neutralise_formula(-3) == -3


async def test_an_export_with_formulas_imports_back_to_the_same_rows() -> None:
    values = ["=1+2", "+x", "-y", "@z", "plain"]

    async def rows() -> AsyncIterator[list[str]]:
        for value in values:
            yield [value, "徐州"]

    exported = b"".join([chunk async for chunk in _csv_chunks(["name", "city"], rows(), 2)])
    text = exported.decode("utf-8-sig")
    assert "\r\n'=1+2,徐州" in text
    assert "\r\n'@z,徐州" in text
    assert [row["name"] for _, row in _rows(exported)] == ["=1+2", "+x", "-y", "@z", "plain"]


async def test_batched_in_thread_draws_the_items_in_a_worker_thread() -> None:
    drawn_in: set[int] = set()

    def items() -> Iterator[int]:
        for number in range(5):
            drawn_in.add(threading.get_ident())
            yield number

    assert [batch async for batch in batched_in_thread(items(), 2)] == [[0, 1], [2, 3], [4]]
    assert drawn_in
    assert threading.get_ident() not in drawn_in


async def test_an_error_while_drawing_comes_after_the_batches_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(3)
        raise ValidationFailed.single("file", "broken at the fourth row")

    batches = batched_in_thread(items(), 2)
    assert await anext(batches) == [0, 1]
    with pytest.raises(ValidationFailed, match="broken at the fourth row"):
        await anext(batches)


async def test_the_loop_serves_others_while_a_batch_is_drawn() -> None:
    """A batch taking 300 ms to draw leaves the loop free: a task ticking every 10 ms goes
    on ticking meanwhile (drawn on the loop, it would tick once)."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    def slow() -> Iterator[int]:
        for number in range(3):
            time.sleep(0.1)
            yield number

    task = asyncio.create_task(ticker())
    try:
        assert [batch async for batch in batched_in_thread(slow(), 3)] == [[0, 1, 2]]
    finally:
        task.cancel()
    assert ticks >= 10


async def test_check_utf8_answers_from_the_verdict_reached_while_spooling() -> None:
    async def spooled(body: bytes) -> Any:
        chunks = [body[:3], body[3:]]

        async def receive() -> dict[str, Any]:
            chunk = chunks.pop(0) if chunks else b""
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        return await spool_upload(request, max_bytes=1024)

    with await spooled("name\n甲\n".encode()) as good:
        check_utf8(good)
        assert good.tell() == 0
        assert csv_encoding(good) == "utf-8"
    with await spooled("name\n甲\n".encode("gbk")) as bad:
        with pytest.raises(ValidationFailed, match="not UTF-8 text"):
            check_utf8(bad)
        assert csv_encoding(bad) == "gb18030"
        assert list(read_rows(bad, required=["name"], allowed=["name"], encoding="gb18030")) == [
            (2, {"name": "甲"})
        ]
    with (
        await spooled(b"name\n\xff\xff\n") as neither,
        pytest.raises(ValidationFailed, match=r"not UTF-8 text .*nor GB18030"),
    ):
        csv_encoding(neither)


def test_a_gbk_file_is_read_as_gb18030_and_reported() -> None:
    data = "name,place\n徐州,铜山区\n".encode("gbk")
    spool = io.BytesIO(data)
    encoding = csv_encoding(spool)
    assert encoding == "gb18030"
    rows = list(read_rows(spool, required=["name"], allowed=["name", "place"], encoding=encoding))
    assert rows == [(2, {"name": "徐州", "place": "铜山区"})]
    report = import_report(rows=1, errors=[], dry_run=True, stored=0, encoding=encoding)
    assert report["encoding"] == "gb18030"


def test_report_names_the_column_of_a_workbook_error() -> None:
    errors = [RowError(3, "awarded_on", "bad date"), RowError(4, "row", "too wide")]
    report = import_report(
        rows=3, errors=errors, dry_run=False, stored=0, columns={"awarded_on": "E"}
    )
    assert report["errors"] == [
        {"line": 3, "column": "E", "field": "awarded_on", "message": "bad date"},
        {"line": 4, "field": "row", "message": "too wide"},
    ]


async def test_drawn_ahead_draws_the_next_item_while_the_consumer_works() -> None:
    """The consumer, holding the first item, sees the second being drawn without asking
    for it (drawn on request, it would wait in vain); the items come in order."""
    second_drawn = threading.Event()

    def items() -> Iterator[int]:
        yield 0
        second_drawn.set()
        yield 1

    seen = []
    async with aclosing(drawn_in_thread(items(), ahead=True)) as drawn:
        async for item in drawn:
            if item == 0:
                assert await asyncio.to_thread(second_drawn.wait, 10)
            seen.append(item)
    assert seen == [0, 1]
    assert [item async for item in drawn_in_thread(range(3))] == [0, 1, 2]


async def test_closing_early_waits_for_the_draw_under_way() -> None:
    """A consumer that stops (a refused row, an error) returns only once the draw it did
    not take has finished, so nothing reads the upload after the request is done."""
    finished: list[int] = []

    def slow() -> Iterator[int]:
        for number in range(3):
            time.sleep(0.1)
            finished.append(number)
            yield number

    async def consume() -> None:
        async with aclosing(drawn_in_thread(slow(), ahead=True)) as items:
            async for _ in items:
                raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await consume()
    assert finished == [0, 1]
