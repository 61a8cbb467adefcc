"""XLSX import (the rows and report of a CSV import, errors naming the column letter), XLSX
export (typed cells, labelled header), the import template, and GBK CSV files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from typing import Any

import httpx

from brand_registry.schemas import IMPORT_FIELDS, LABELS
from brand_registry.tests.support import PIZHOU, TONGSHAN
from brand_registry.tests.test_import_export import csv_bytes, post_csv, row
from kit.testing import Harness, xlsx_values, xlsx_workbook
from kit.xlsxio import XLSX_MEDIA_TYPE

IMPORT = "/api/v1/brands/import"
EXPORT = "/api/v1/brands/export"


def workbook(header: list[str], rows: list[list[Any]]) -> bytes:
    return xlsx_workbook(header, rows, sheet="名牌")


def labelled(rows: list[dict[str, Any]], fields: tuple[str, ...] = IMPORT_FIELDS) -> bytes:
    """`rows` as a workbook under the Chinese labels, awarded_on as a date cell."""
    values = []
    for item in rows:
        cells: list[Any] = [item.get(name) for name in fields]
        if "awarded_on" in fields and isinstance(item.get("awarded_on"), str):
            index = fields.index("awarded_on")
            cells[index] = dt.date.fromisoformat(item["awarded_on"])
        values.append(cells)
    return workbook([LABELS[name] for name in fields], values)


async def post_xlsx(client: httpx.AsyncClient, body: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        IMPORT, content=body, params=params, headers={"Content-Type": XLSX_MEDIA_TYPE}
    )


def csv_export(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_an_xlsx_export_imports_back_to_the_same_rows(service: Harness) -> None:
    client = service.client()
    rows = [row(n) for n in range(1, 4)]
    rows[1]["international_standard"] = "true"
    rows[1]["standard_code"] = "GB/T 1"
    assert (await post_csv(service, csv_bytes(rows))).status_code == 201
    before = csv_export((await client.get(EXPORT)).content)

    exported = await client.get(EXPORT, params={"format": "xlsx"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == XLSX_MEDIA_TYPE
    assert 'filename="brands.xlsx"' in exported.headers["content-disposition"]
    values = xlsx_values(exported.content)
    header = values[0]
    assert header[:3] == ["编号", "产品名称", "品牌"]
    first = dict(zip(header, values[1], strict=True))
    assert first[LABELS["awarded_on"]] == dt.date(2024, 12, 1)
    assert first[LABELS["international_standard"]] in (True, False)
    assert isinstance(first[LABELS["created_at"]], dt.datetime)
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert 'state="frozen"' in xml
    assert "<autoFilter" in xml
    by_accept = await client.get(EXPORT, headers={"Accept": XLSX_MEDIA_TYPE})
    assert by_accept.headers["content-type"] == XLSX_MEDIA_TYPE

    await service.reset()
    client = service.client()
    imported = await post_xlsx(client, exported.content)
    assert imported.status_code == 201, imported.text
    assert imported.json()["stored"] == 3
    assert imported.json()["encoding"] is None
    after = csv_export((await client.get(EXPORT)).content)
    kept = [*IMPORT_FIELDS, "status"]
    assert sorted([{k: r[k] for k in kept} for r in after], key=str) == sorted(
        [{k: r[k] for k in kept} for r in before], key=str
    )


async def test_a_bad_cell_is_a_422_naming_row_and_column_letter(service: Harness) -> None:
    fields = ("awarded_on", *[name for name in IMPORT_FIELDS if name != "awarded_on"])
    rows = [row(1), row(2, tier="gold"), row(3)]
    body = labelled(rows, fields)
    response = await post_xlsx(service.client(), body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert {k: errors[0][k] for k in ("line", "column", "field")} == {
        "line": 3,
        "column": "G",
        "field": "tier",
    }
    assert response.json()["stored"] == 0

    text_date = workbook(
        [LABELS[name] for name in IMPORT_FIELDS],
        [[row(1, awarded_on="2024-02-30").get(name) for name in IMPORT_FIELDS]],
    )
    problem = (await post_xlsx(service.client(), text_date)).json()
    assert problem["errors"][0]["line"] == 2
    assert problem["errors"][0]["column"] == "I"
    assert problem["errors"][0]["field"] == "awarded_on"
    assert (await service.client().get("/api/v1/brands")).json()["items"] == []


async def test_chinese_labels_field_names_and_iso_dates_are_accepted(service: Harness) -> None:
    rows = [row(1), row(2)]
    mixed_header = [LABELS[name] if i % 2 else name for i, name in enumerate(IMPORT_FIELDS)]
    body = workbook(mixed_header, [[item.get(name) for name in IMPORT_FIELDS] for item in rows])
    response = await post_xlsx(service.client(), body, dry_run="true")
    assert response.status_code == 200, response.text
    assert (response.json()["rows"], response.json()["valid"]) == (2, 2)

    upload = await service.client().post(
        IMPORT, files={"file": ("名牌.xlsx", labelled(rows), "application/octet-stream")}
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["stored"] == 2
    listed = (await service.client().get("/api/v1/brands")).json()["items"]
    assert {item["awarded_on"] for item in listed} == {"2024-12-01"}


async def test_a_named_sheet_is_read_and_an_unknown_one_is_a_422(service: Harness) -> None:
    body = labelled([row(1)])
    ok = await post_xlsx(service.client(), body, sheet="名牌", dry_run="true")
    assert ok.status_code == 200, ok.text
    missing = await post_xlsx(service.client(), body, sheet="其他")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "sheet"
    not_a_workbook = await post_xlsx(service.client(), b"PK\x03\x04 not really")
    assert not_a_workbook.status_code == 422
    assert not_a_workbook.headers["content-type"] == "application/problem+json"


async def test_a_gbk_csv_file_imports_and_says_its_encoding(service: Harness) -> None:
    body = csv_bytes([row(1), row(2)], bom=False).decode().encode("gbk", errors="replace")
    gbk = csv_bytes([row(1, product_name="铜山羊肉"), row(2)], bom=False).decode()
    response = await post_csv(service, gbk.encode("gb18030"))
    assert response.status_code == 201, response.text
    assert response.json()["encoding"] == "gb18030"
    listed = (await service.client().get("/api/v1/brands", params={"q": "铜山羊肉"})).json()
    assert len(listed["items"]) == 1
    utf8 = await post_csv(service, csv_bytes([row(3)]))
    assert utf8.json()["encoding"] == "utf-8"
    neither = await post_csv(service, body[:20] + b"\xff\xfe\xff" + body[20:])
    assert neither.status_code == 422
    assert "not UTF-8" in neither.json()["errors"][0]["message"]


async def test_the_template_has_the_labelled_header_an_example_and_enum_lists(
    service: Harness,
) -> None:
    response = await service.client().get("/api/v1/brands/import/template.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    assert "attachment" in response.headers["content-disposition"]
    values = xlsx_values(response.content)
    assert values[0] == [LABELS[name] for name in IMPORT_FIELDS]
    assert len(values) == 2
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert xml.count('<dataValidation type="list"') == 4
    tiers = ",".join(
        [
            "china_famous",
            "national_inspection_exempt",
            "provincial_famous",
            "city_famous",
            "geographical_indication",
        ]
    )
    assert f'"{tiers}"' in xml
    # The template's example row imports as it is.
    imported = await post_xlsx(service.client(), response.content, dry_run="true")
    assert imported.status_code == 200, imported.text


async def test_a_formula_like_name_is_exported_as_text(service: Harness) -> None:
    name = "=cmd|' /C calc'!A0"
    assert (await post_csv(service, csv_bytes([row(1, product_name=name)]))).status_code == 201
    exported = await service.client().get(EXPORT, params={"format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml
    assert xlsx_values(exported.content)[1][1] == name


async def test_an_xlsx_row_outside_the_binding_refuses_the_file(service: Harness) -> None:
    client = service.client(
        ("brands:read", "brands:write"), client_id="county-office", county_codes=[TONGSHAN]
    )
    body = labelled([row(1, county_code=TONGSHAN), row(2, county_code=PIZHOU)])
    response = await post_xlsx(client, body)
    assert response.status_code == 403, response.text
    assert response.json()["field"] == "county_code"
    assert response.json()["lines"] == [3]
    assert (await service.client().get("/api/v1/brands")).json()["items"] == []


async def test_an_xlsx_date_past_today_is_refused_like_a_csv_one(service: Harness) -> None:
    tomorrow = service.app.state.settings.today() + dt.timedelta(days=1)
    body = labelled([row(1), row(2, awarded_on=tomorrow.isoformat(), valid_until="")])
    response = await post_xlsx(service.client(), body)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (3, "I", "awarded_on")


async def test_a_multipart_csv_file_and_bad_multipart_bodies(service: Harness) -> None:
    text = csv_bytes([row(1)], bom=False).decode()
    csv_part = await service.client().post(
        IMPORT, files={"file": ("名牌.csv", text.encode("gbk"), "text/csv")}
    )
    assert csv_part.status_code == 201, csv_part.text
    assert csv_part.json()["encoding"] == "gb18030"
    no_file = await service.client().post(
        IMPORT,
        content=b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nabc\r\n--x--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert no_file.status_code == 422, no_file.text
    assert "no file part" in no_file.json()["errors"][0]["message"]
    broken = await service.client().post(
        IMPORT,
        content=b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 422, broken.text
    assert broken.headers["content-type"] == "application/problem+json"
    no_boundary = await service.client().post(
        IMPORT, content=b"abc", headers={"Content-Type": "multipart/form-data"}
    )
    assert no_boundary.status_code == 422, no_boundary.text
