import io
from collections.abc import AsyncIterator

import pytest

from kit.csvio import RowError, _csv_chunks, batched, check_utf8, import_report, read_rows
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
