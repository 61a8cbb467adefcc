"""XLSX import (the rows and report of a CSV import, errors naming the column letter), XLSX
export (typed cells, labelled header), the import template, and GBK CSV files."""

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from certification.schemas import LABELS
from certification.tests.test_import_export import HEADER, _csv, _post, _row
from kit.testing import Harness, xlsx_values, xlsx_workbook
from kit.xlsxio import XLSX_MEDIA_TYPE

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
URL = "/api/v1/certificates/import"
EXPORT = "/api/v1/certificates/export"
KEPT = [
    "certificate_number",
    "standard",
    "certification_body",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "sites",
    "issued_on",
    "expires_on",
    "original_issued_on",
    "confidential",
    "status",
    "status_since",
]


def workbook(header: list[str], rows: list[list[Any]]) -> bytes:
    return xlsx_workbook(header, rows, sheet="证书")


def labelled(rows: list[list[str]]) -> bytes:
    """Rows of `_row` as a workbook under the Chinese labels, issued_on as a date cell."""
    index = HEADER.index("issued_on")
    values: list[list[Any]] = []
    for item in rows:
        cells: list[Any] = list(item)
        cells[index] = dt.date.fromisoformat(item[index])
        values.append(cells)
    return workbook([LABELS[name] for name in HEADER], values)


async def post_xlsx(client: httpx.AsyncClient, body: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        URL, content=body, params=params, headers={"Content-Type": XLSX_MEDIA_TYPE}
    )


def csv_rows(body: bytes) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    return sorted(({k: r[k] for k in KEPT} for r in rows), key=str)


async def test_an_xlsx_export_imports_back_to_the_same_rows(
    service: Harness, new_certificate: NewCertificate
) -> None:
    await new_certificate(county_code="320302", sites=["鼓樓區甲", "鼓樓區乙"])
    await new_certificate(county_code="320302", confidential=True, issued_on="2010-01-01")
    client = service.client()
    before = csv_rows((await client.get(EXPORT)).content)

    exported = await client.get(EXPORT, params={"format": "xlsx"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == XLSX_MEDIA_TYPE
    assert 'filename="certificates.xlsx"' in exported.headers["content-disposition"]
    values = xlsx_values(exported.content)
    assert values[0][:3] == ["编号", "证书编号", "认证标准"]
    first = dict(zip(values[0], values[1], strict=True))
    assert isinstance(first[LABELS["issued_on"]], dt.date)
    assert isinstance(first[LABELS["confidential"]], bool)
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert 'state="frozen"' in xml
    assert "<autoFilter" in xml

    await service.reset()
    imported = await post_xlsx(service.client(), exported.content)
    assert imported.status_code == 201, imported.text
    assert imported.json()["stored"] == 2
    assert csv_rows((await service.client().get(EXPORT)).content) == before


async def test_a_bad_cell_is_a_422_naming_row_and_column_letter(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    rows = [_row(1, credit_code(1)), _row(2, credit_code(2), county_code="999999")]
    response = await post_xlsx(service.client(), labelled(rows))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (3, "F", "county_code")
    text_date = workbook(
        [LABELS[name] for name in HEADER], [_row(1, credit_code(1), issued_on="2023-02-30")]
    )
    error = (await post_xlsx(service.client(), text_date)).json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (2, "H", "issued_on")


async def test_labels_and_a_multipart_upload_are_accepted(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    rows = [_row(1, credit_code(1)), _row(2, credit_code(2))]
    mixed = [LABELS[name] if i % 2 else name for i, name in enumerate(HEADER)]
    dry = await post_xlsx(service.client(), workbook(mixed, rows), dry_run="true")
    assert dry.status_code == 200, dry.text
    upload = await service.client().post(
        URL, files={"file": ("证书.xlsx", labelled(rows), XLSX_MEDIA_TYPE)}
    )
    assert upload.status_code == 201, upload.text
    items = (await service.client().get("/api/v1/certificates")).json()["items"]
    assert {item["issued_on"] for item in items} == {"2023-05-01"}
    assert {tuple(item["sites"]) for item in items} == {("新沂市一號", "新沂市二號")}


async def test_a_gbk_csv_file_imports_and_says_its_encoding(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    text = _csv([_row(1, credit_code(1), certification_body="中国质量认证中心")]).decode()
    response = await _post(service, text.encode("gbk"))
    assert response.status_code == 201, response.text
    assert response.json()["encoding"] == "gb18030"
    items = (await service.client().get("/api/v1/certificates")).json()["items"]
    assert items[0]["certification_body"] == "中国质量认证中心"
    again = await _post(service, _csv([_row(2, credit_code(2))]))
    assert again.json()["encoding"] == "utf-8"


async def test_the_template_has_the_labelled_header_an_example_and_enum_lists(
    service: Harness,
) -> None:
    response = await service.client().get("/api/v1/certificates/import/template.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    values = xlsx_values(response.content)
    assert LABELS["certificate_number"] in values[0]
    assert LABELS["id"] not in values[0]
    assert len(values) == 2
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        xml = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert xml.count('<dataValidation type="list"') == 3
    assert '"valid,suspended,withdrawn,expired"' in xml
    assert '"management_system,food_production_licence,production_licence"' in xml
    imported = await post_xlsx(service.client(), response.content, dry_run="true")
    assert imported.status_code == 200, imported.text


async def test_a_formula_like_scope_is_exported_as_text(
    service: Harness, new_certificate: NewCertificate
) -> None:
    await new_certificate(scope="=cmd|' /C calc'!A0")
    exported = await service.client().get(EXPORT, headers={"Accept": XLSX_MEDIA_TYPE})
    assert exported.headers["content-type"] == XLSX_MEDIA_TYPE
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zipped:
        assert "<f>" not in zipped.read("xl/worksheets/sheet1.xml").decode()
    values = xlsx_values(exported.content)
    assert values[1][values[0].index(LABELS["scope"])] == "=cmd|' /C calc'!A0"


async def test_an_xlsx_row_outside_the_binding_refuses_the_file(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    client = service.client(
        ("certificates:read", "certificates:write"),
        client_id="county-office",
        county_codes=["320323"],
    )
    rows = [_row(1, credit_code(1), county_code="320323"), _row(2, credit_code(2))]
    response = await post_xlsx(client, labelled(rows))
    assert response.status_code == 403, response.text
    assert response.json()["field"] == "county_code"
    assert response.json()["lines"] == [3]


async def test_an_xlsx_date_past_today_is_refused_like_a_csv_one(
    service: Harness, credit_code: Callable[[int], str], today: dt.date
) -> None:
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    rows = [_row(1, credit_code(1)), _row(2, credit_code(2), issued_on=tomorrow)]
    response = await post_xlsx(service.client(), labelled(rows))
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["line"], error["column"], error["field"]) == (3, "H", "issued_on")
