import datetime as dt
import io
import zipfile
from typing import Any

import pytest
import python_calamine
import xlsxwriter

from kit.errors import ValidationFailed
from kit.xlsxio import (
    Column,
    Table,
    cell_text,
    check_workbook,
    column_letter,
    read_xlsx_rows,
    write_tables,
    write_workbook,
)

LABELS = {"name": "名称", "awarded_on": "认定日期", "count": "数量", "flag": "标志", "id": "编号"}


def workbook(rows: list[list[Any]], **options: Any) -> io.BytesIO:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, **options})
    sheet = book.add_worksheet("名单")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time(0)), date_format)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    buffer.seek(0)
    return buffer


def read(data: io.BytesIO, **options: Any) -> list[tuple[int, dict[str, str]]]:
    check_workbook(data)
    return list(
        read_xlsx_rows(
            data,
            required=options.pop("required", ["name"]),
            allowed=["name", "awarded_on", "count", "flag"],
            labels=LABELS,
            **options,
        )
    )


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 4, 25, 26, 51, 52, 199)] == [
        "A",
        "E",
        "Z",
        "AA",
        "AZ",
        "BA",
        "GR",
    ]


def test_cells_become_the_text_a_csv_file_holds() -> None:
    assert cell_text(dt.date(2024, 12, 1)) == "2024-12-01"
    assert cell_text(dt.datetime(2024, 12, 1)) == "2024-12-01"
    assert cell_text(dt.datetime(2024, 12, 1, 8, 30)) == "2024-12-01T08:30:00"
    assert cell_text(3.0) == "3"
    assert cell_text(2.5) == "2.5"
    assert cell_text(True) == "true"
    assert cell_text(None) == ""
    assert cell_text("  甲 ") == "甲"


def test_labels_dates_and_column_letters() -> None:
    data = workbook(
        [
            ["认定日期", "名称", "数量", "flag"],
            [dt.date(2024, 12, 1), "徐工", 3, True],
            [None, None, None, None],
            ["2024-12-02", "=cmd|' /C calc'!A0", 2.5, False],
        ]
    )
    columns: dict[str, str] = {}
    rows = read(data, columns=columns)
    assert rows == [
        (2, {"awarded_on": "2024-12-01", "name": "徐工", "count": "3", "flag": "true"}),
        (
            4,
            {
                "awarded_on": "2024-12-02",
                "name": "=cmd|' /C calc'!A0",
                "count": "2.5",
                "flag": "false",
            },
        ),
    ]
    assert columns == {"awarded_on": "A", "name": "B", "count": "C", "flag": "D"}


def test_ignored_columns_are_skipped_and_unknown_ones_refused() -> None:
    data = workbook([["编号", "名称"], ["b-1", "徐工"]])
    assert read(data, ignored=["id"]) == [(2, {"name": "徐工"})]
    with pytest.raises(ValidationFailed) as caught:
        read(workbook([["编号", "名称", "颜色"], ["b-1", "徐工", "红"]]))
    assert "unknown columns: 编号, 颜色" in str(caught.value.errors)


def test_missing_and_repeated_columns_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        read(workbook([["数量", "count"], [1, 2]]))
    messages = str(caught.value.errors)
    assert "repeated columns: count" in messages
    assert "missing columns: name" in messages


def test_a_value_past_the_header_is_reported_for_its_row() -> None:
    rows = read(workbook([["名称"], ["甲"], ["乙", "多余"]]))
    assert rows[0] == (2, {"name": "甲"})
    assert rows[1][0] == 3
    assert "__error__" in rows[1][1]


def test_a_named_sheet_is_read_and_an_unknown_one_named() -> None:
    assert read(workbook([["名称"], ["甲"]]), sheet="名单") == [(2, {"name": "甲"})]
    with pytest.raises(ValidationFailed) as caught:
        read(workbook([["名称"], ["甲"]]), sheet="其他")
    assert caught.value.errors[0].field == "sheet"
    assert "名单" in caught.value.errors[0].message


def test_not_a_workbook() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(io.BytesIO("name\n甲\n".encode()))
    assert "not a zip" in caught.value.errors[0].message
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hello.txt", "hi")
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(archive)
    assert "no worksheet" in caught.value.errors[0].message


def test_a_sheet_wider_than_the_column_limit_is_refused() -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_string(0, 0, "name")
    sheet.write_string(0, 250, "far")
    book.close()
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(buffer)
    assert "column IQ" in caught.value.errors[0].message


def test_a_sparse_sheet_claiming_a_huge_grid_is_refused_before_it_is_read() -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_string(0, 0, "name")
    sheet.write_string(1_048_575, 150, "far")
    book.close()
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(buffer)
    assert "spans 1048576 rows by 151 columns" in caught.value.errors[0].message


def test_the_writer_types_cells_and_keeps_formula_text_as_text() -> None:
    buffer = io.BytesIO()
    columns = [Column("name", "名称"), Column("awarded_on", "认定日期"), Column("count", "数量")]
    rows = [
        ["=cmd|' /C calc'!A0", dt.date(2024, 12, 1), 3],
        ["+SUM(A1)", dt.datetime(2024, 12, 1, 8, 0, tzinfo=dt.UTC), True],
    ]
    write_workbook(buffer, columns, rows, enums={"name": ["a", "b"]}, validation_rows=10)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml
    assert "=cmd|' /C calc'!A0</t>" in xml
    assert 'state="frozen"' in xml
    assert "<autoFilter" in xml
    assert '<dataValidation type="list"' in xml
    assert 'sqref="A2:A11"' in xml
    buffer.seek(0)
    book = python_calamine.CalamineWorkbook.from_filelike(buffer)
    values = book.get_sheet_by_index(0).to_python()
    assert values[0] == ["名称", "认定日期", "数量"]
    assert values[1] == ["=cmd|' /C calc'!A0", dt.date(2024, 12, 1), 3]
    assert values[2][0] == "+SUM(A1)"
    assert values[2][1] == dt.datetime(2024, 12, 1, 8, 0)
    assert values[2][2] is True


def _raw_workbook(sheet_xml: str, strings: str | None = None) -> io.BytesIO:
    """A workbook zip around the given sheet XML (what a hand-made file may hold)."""
    buffer = io.BytesIO()
    base = workbook([["name"], ["甲"]])
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            if strings is not None and item.filename == "xl/sharedStrings.xml":
                continue
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml.encode()
            target.writestr(item, data)
        if strings is not None:
            target.writestr("xl/sharedStrings.xml", strings)
    buffer.seek(0)
    return buffer


SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?><worksheet '
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{}'
    "</sheetData></worksheet>"
)


def test_cells_without_references_are_counted_by_position() -> None:
    wide = '<row r="1">' + "<c><v>1</v></c>" * 250 + "</row>"
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(_raw_workbook(SHEET.format(wide)))
    assert "column GS" in caught.value.errors[0].message
    tall = '<row r="1"><c t="inlineStr"><is><t>name</t></is></c></row>' + (
        '<row r="1048576">' + "<c><v>1</v></c>" * 3 + "</row>"
    )
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(_raw_workbook(SHEET.format(tall)))
    assert "spans 1048576 rows by 3 columns" in caught.value.errors[0].message
    plain = '<row><c t="inlineStr"><is><t>name</t></is></c></row><row><c><v>7</v></c></row>'
    data = _raw_workbook(SHEET.format(plain))
    assert read(data) == [(2, {"name": "7"})]


def test_a_giant_cell_or_shared_string_is_refused_before_it_is_read() -> None:
    huge = '<row r="1"><c t="inlineStr"><is><t>' + "x" * (5 * 1024 * 1024) + "</t></is></c></row>"
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(_raw_workbook(SHEET.format(huge)))
    assert "a cell longer than the limit" in caught.value.errors[0].message
    strings = "<sst><si><t>" + "x" * (5 * 1024 * 1024) + "</t></si><si><t>y</t></si></sst>"
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(_raw_workbook(SHEET.format('<row r="1"><c><v>1</v></c></row>'), strings))
    assert "a cell longer than the limit" in caught.value.errors[0].message


def test_a_sheet_stored_outside_the_usual_folder_is_checked_too() -> None:
    buffer = io.BytesIO()
    base = workbook([["name"], ["甲"]])
    wide = '<row r="1">' + "<c><v>1</v></c>" * 250 + "</row>"
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"worksheets/sheet1.xml", b"elsewhere/data.xml")
            if item.filename == "xl/worksheets/sheet1.xml":
                target.writestr("xl/elsewhere/data.xml", SHEET.format(wide))
                continue
            target.writestr(item, data)
    buffer.seek(0)
    with pytest.raises(ValidationFailed) as caught:
        check_workbook(buffer)
    assert "column GS" in caught.value.errors[0].message


def test_tables_become_sheets_named_as_excel_allows_with_typed_cells() -> None:
    columns = [Column("a", "甲"), Column("b", "乙")]
    day = dt.datetime(2008, 1, 20, tzinfo=dt.UTC)
    tables = [
        Table("排名", columns, [(1, "=cmd|' /C calc'!A0"), (2.5, None)]),
        Table("a/b:c[d]", columns, [("x", dt.date(2007, 12, 31))]),
        Table("排名", columns, []),
    ]
    body = write_tables(tables, created=day)
    assert write_tables(tables, created=day) == body
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(body))
    assert book.sheet_names == ["排名", "a_b_c_d_", "排名_2"]
    ranking = book.get_sheet_by_name("排名").to_python()
    assert ranking[0] == ["甲", "乙"]
    assert ranking[1] == [1.0, "=cmd|' /C calc'!A0"]
    assert ranking[2][0] == 2.5
    assert book.get_sheet_by_name("a_b_c_d_").to_python()[1][1] == dt.date(2007, 12, 31)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")
