"""XLSX import (the rows and report of a CSV import, errors naming the column letter), XLSX
export (typed cells, labelled header), the import template, and GBK CSV files."""

import csv
import datetime as dt
import io
import zipfile
from typing import Any

import httpx

from inspection.schemas import LABELS
from inspection.service import RECORDED_FIELDS
from inspection.tests.support import TODAY, spot_check
from inspection.tests.test_bulk import CSV_HEADERS, IMPORT, URL, _csv, _rows
from kit.testing import Harness, xlsx_values, xlsx_workbook
from kit.xlsxio import XLSX_MEDIA_TYPE

EXPORT = f"{URL}/export"
DATES = ("sampled_on", "published_on")


def workbook(header: list[str], rows: list[list[Any]]) -> bytes:
    return xlsx_workbook(header, rows, sheet="抽查")


def labelled(rows: list[dict[str, Any]]) -> bytes:
    """`rows` as a workbook under the Chinese labels, dates as date cells."""
    values = []
    for item in rows:
        cells: list[Any] = []
        for name in RECORDED_FIELDS:
            value = item.get(name)
            if name in DATES and isinstance(value, str) and value:
                value = dt.date.fromisoformat(value)
            cells.append(value)
        values.append(cells)
    return workbook([LABELS[name] for name in RECORDED_FIELDS], values)


async def post_xlsx(client: httpx.AsyncClient, body: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        IMPORT, content=body, params=params, headers={"Content-Type": XLSX_MEDIA_TYPE}
    )


def recorded(body: bytes) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    return sorted(({k: r[k] for k in (*RECORDED_FIELDS, "final_result")} for r in rows), key=str)


async def test_an_xlsx_export_imports_back_to_the_same_rows(service: Harness) -> None:
    client = service.client()
    imported = await client.post(IMPORT, content=_csv(_rows(6)), headers=CSV_HEADERS)
    assert imported.status_code == 201, imported.text
    params = {"include_unpublished": True}
    before = recorded((await client.get(EXPORT, params=params)).content)

    exported = await client.get(EXPORT, params={**params, "format": "xlsx"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == XLSX_MEDIA_TYPE
    assert 'filename="spot-checks.xlsx"' in exported.headers["content-disposition"]
    values = xlsx_values(exported.content)
    assert values[0][:3] == ["编号", "抽查计划编号", "抽查级别"]
    first = dict(zip(values[0], values[1], strict=True))
    assert isinstance(first[LABELS["sampled_on"]], dt.date)
    assert isinstance(first[LABELS["refused"]], bool)
    assert isinstance(first[LABELS["created_at"]], dt.datetime)
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert 'state="frozen"' in xml
    assert "<autoFilter" in xml

    await service.reset()
    again = await post_xlsx(service.client(), exported.content)
    assert again.status_code == 201, again.text
    assert again.json()["stored"] == 6
    assert recorded((await service.client().get(EXPORT, params=params)).content) == before


async def test_a_bad_cell_is_a_422_naming_row_and_column_letter(service: Harness) -> None:
    rows = _rows(3)
    rows[1]["level"] = "county"
    response = await post_xlsx(service.client(), labelled(rows))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (3, "B", "level")
    assert response.json()["stored"] == 0

    rows = _rows(1)
    rows[0]["sampled_on"] = "2024-02-30"
    header = [LABELS[name] for name in RECORDED_FIELDS]
    text_date = workbook(header, [[rows[0].get(name) for name in RECORDED_FIELDS]])
    error = (await post_xlsx(service.client(), text_date)).json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (2, "I", "sampled_on")


async def test_labels_field_names_and_a_multipart_upload_are_accepted(service: Harness) -> None:
    rows = _rows(2)
    mixed = [LABELS[name] if i % 2 else name for i, name in enumerate(RECORDED_FIELDS)]
    body = workbook(mixed, [[row.get(name) for name in RECORDED_FIELDS] for row in rows])
    dry = await post_xlsx(service.client(), body, dry_run="true")
    assert dry.status_code == 200, dry.text
    upload = await service.client().post(
        IMPORT, files={"file": ("抽查.xlsx", labelled(rows), XLSX_MEDIA_TYPE)}
    )
    assert upload.status_code == 201, upload.text
    page = await service.client().get(URL, params={"include_unpublished": True})
    items = page.json()["items"]
    assert {item["sampled_on"] for item in items} == {rows[0]["sampled_on"]}
    failed = next(item for item in items if item["result"] == "fail")
    assert failed["nonconforming_items"][0]["item"] == "鉛含量"


async def test_a_gbk_csv_file_imports_and_says_its_encoding(service: Harness) -> None:
    text = _csv([spot_check(product_name="速冻水饺", enterprise_name="徐州食品厂")]).decode()
    response = await service.client().post(IMPORT, content=text.encode("gbk"), headers=CSV_HEADERS)
    assert response.status_code == 201, response.text
    assert response.json()["encoding"] == "gb18030"
    page = await service.client().get(URL, params={"include_unpublished": True})
    assert page.json()["items"][0]["product_name"] == "速冻水饺"


async def test_the_template_has_the_labelled_header_an_example_and_enum_lists(
    service: Harness,
) -> None:
    response = await service.client().get(f"{URL}/import/template.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    values = xlsx_values(response.content)
    assert values[0] == [LABELS[name] for name in RECORDED_FIELDS]
    assert len(values) == 2
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert xml.count('<dataValidation type="list"') == 7
    assert '"national,provincial,city"' in xml
    assert '"product_quality,metrology,food_safety,special_equipment"' in xml
    imported = await post_xlsx(service.client(), response.content, dry_run="true")
    assert imported.status_code == 200, imported.text


async def test_a_formula_like_name_is_exported_as_text(service: Harness) -> None:
    name = "=cmd|' /C calc'!A0"
    created = await service.client().post(URL, json=spot_check(product_name=name))
    assert created.status_code == 201, created.text
    exported = await service.client().get(
        EXPORT, params={"include_unpublished": True}, headers={"Accept": XLSX_MEDIA_TYPE}
    )
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        assert "<f>" not in zipped.read("xl/worksheets/sheet1.xml").decode()
    values = xlsx_values(exported.content)
    assert values[1][values[0].index(LABELS["product_name"])] == name


async def test_an_xlsx_row_outside_the_binding_refuses_the_file(service: Harness) -> None:
    client = service.client(
        ("spot-checks:read", "spot-checks:write"),
        client_id="county-office",
        county_codes=["320323"],
    )
    rows = _rows(2)
    rows[1]["county_code"] = "320382"
    response = await post_xlsx(client, labelled(rows))
    assert response.status_code == 403, response.text
    assert response.json()["field"] == "county_code"
    assert response.json()["lines"] == [3]


async def test_an_xlsx_date_past_today_is_refused_like_a_csv_one(service: Harness) -> None:
    rows = _rows(2)
    rows[1]["sampled_on"] = (TODAY + dt.timedelta(days=1)).isoformat()
    response = await post_xlsx(service.client(), labelled(rows))
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (3, "I", "sampled_on")
