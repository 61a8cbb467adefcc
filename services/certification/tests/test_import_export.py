"""CSV import (all rows or none, with a per-row report) and streamed CSV export."""

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from certification import repository
from certification.repository import CertificateQuery
from certification.settings import Settings
from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
HEADER = [
    "certificate_number",
    "standard",
    "certification_body",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "issued_on",
    "expires_on",
    "sites",
    "confidential",
]
URL = "/api/v1/certificates/import"


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _row(n: int, code: str, **changes: str) -> list[str]:
    values = {
        "certificate_number": f"IMP-{n}",
        "standard": "ISO 14001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": code,
        "enterprise_name": f"徐州第{n}化工有限公司",
        "county_code": "320381",
        "scope": '化工產品的生產, 含 "特種" 產品',
        "issued_on": "2023-05-01",
        "expires_on": "",
        "sites": "新沂市一號; 新沂市二號",
        "confidential": "false",
        **changes,
    }
    return [values[name] for name in HEADER]


async def _total(service: Harness) -> int:
    page = (await service.client().get("/api/v1/certificates", params={"limit": 500})).json()
    return len(page["items"])


def _post(service: Harness, data: bytes, **params: Any) -> Awaitable[Any]:
    return service.client(client_id="provincial-platform").post(
        URL, content=data, params=params, headers={"Content-Type": "text/csv"}
    )


async def test_import_stores_every_row_with_defaults_and_history(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    data = _csv([_row(i, credit_code(i)) for i in range(1, 4)])
    response = await _post(service, b"\xef\xbb\xbf" + data)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["rows"] == report["stored"] == 3
    assert report["error_count"] == 0
    items = (
        await service.client().get("/api/v1/certificates", params={"county_code": "320381"})
    ).json()["items"]
    assert len(items) == 3
    assert items[0]["expires_on"] == "2026-05-01"
    assert items[0]["sites"] == ["新沂市一號", "新沂市二號"]
    assert items[0]["scope"] == '化工產品的生產, 含 "特種" 產品'
    history = (await service.client().get(f"/api/v1/certificates/{items[0]['id']}/history")).json()[
        "items"
    ]
    assert history[0]["kind"] == "imported"
    assert history[0]["actor_id"] == "provincial-platform"


async def test_dry_run_validates_and_stores_nothing(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    response = await _post(service, _csv([_row(1, credit_code(1))]), dry_run="true")
    assert response.status_code == 200
    assert response.json()["dry_run"] is True
    assert response.json()["valid"] == 1
    assert response.json()["stored"] == 0
    assert await _total(service) == 0


async def test_bad_rows_are_reported_by_line_and_field_and_nothing_is_stored(
    service: Harness, new_certificate: NewCertificate, credit_code: Callable[[int], str]
) -> None:
    existing = await new_certificate(
        certificate_number="IMP-7", certification_body="中國質量認證中心"
    )
    rows = [
        _row(1, credit_code(1)),
        _row(2, credit_code(2), standard="ISO 0000"),
        _row(3, "91320303MA1XXXXXX0"),
        _row(4, credit_code(4), expires_on="2020-01-01"),
        _row(1, credit_code(5)),
        _row(6, credit_code(6), county_code="110101"),
        _row(7, credit_code(7)),
        _row(8, credit_code(8), issued_on="2023/05/01"),
    ]
    response = await _post(service, _csv(rows))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["stored"] == 0
    assert problem["rows"] == 8
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [
        (3, "standard"),
        (4, "enterprise_credit_code"),
        (5, "expires_on"),
        (6, "certificate_number"),
        (7, "county_code"),
        (8, "certificate_number"),
        (9, "issued_on"),
    ]
    assert await _total(service) == 1
    assert existing["certificate_number"] == "IMP-7"
    dry = await _post(service, _csv(rows), dry_run="true")
    assert dry.status_code == 422


async def test_bad_files_are_rejected(service: Harness, credit_code: Callable[[int], str]) -> None:
    # Neither UTF-8 nor GB18030 (a GBK file imports: tests/test_xlsx.py).
    neither = _csv([_row(1, credit_code(1))]) + b"\xff\xfe\n"
    response = await _post(service, neither)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"
    assert (await _post(service, b"")).status_code == 422
    assert (await _post(service, _csv([]))).status_code == 422
    unknown = await _post(service, _csv([["x"]], header=["colour"]))
    assert unknown.status_code == 422
    assert "unknown columns: colour" in unknown.json()["detail"]
    short = await _post(service, _csv([["IMP-1", "ISO 9001:2015"]]))
    assert short.status_code == 422
    assert short.json()["errors"][0]["field"] == "row"
    assert await _total(service) == 0


async def test_upload_over_the_limit_is_413(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    settings: Settings = service.app.state.settings
    service.app.state.settings = settings.model_copy(update={"max_upload_bytes": 1024})
    try:
        rows = [_row(i, credit_code(i)) for i in range(1, 30)]
        response = await _post(service, _csv(rows))
    finally:
        service.app.state.settings = settings
    assert response.status_code == 413
    assert await _total(service) == 0


async def test_import_needs_the_write_scope(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    reader = service.client(scopes=["certificates:read"])
    response = await reader.post(URL, content=_csv([_row(1, credit_code(1))]))
    assert response.status_code == 403


async def test_export_streams_filtered_csv_with_bom_that_imports_back(
    service: Harness, new_certificate: NewCertificate
) -> None:
    await new_certificate(
        county_code="320302",
        sites=["鼓樓區甲", "鼓樓區乙"],
        scope='含"引號", 逗號',
        expires_on="2035-12-31",
    )
    await new_certificate(county_code="320302", confidential=True, issued_on="2010-01-01")
    await new_certificate(county_code="320303")
    response = await service.client().get(
        "/api/v1/certificates/export", params={"county_code": "320302"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[0]["scope"] == '含"引號", 逗號'
    assert rows[0]["family"] == "quality"
    assert [row["status"] for row in rows] == ["valid", "expired"]
    await service.reset()
    again = await _post(service, response.content)
    assert again.status_code == 201, again.text
    items = (await service.client().get("/api/v1/certificates")).json()["items"]
    # ids made within one millisecond need not follow the file's order
    by_status = {item["status"]: item for item in items}
    assert by_status["expired"]["confidential"] is True
    assert by_status["valid"]["sites"] == ["鼓樓區甲", "鼓樓區乙"]


async def test_export_reads_every_row_once_across_batches(
    service: Harness, new_certificate: NewCertificate, today: date
) -> None:
    created = sorted([(await new_certificate())["id"] for _ in range(5)])
    query = CertificateQuery(on=today, include_confidential=True)
    for batch_size in (2, 5, 10):
        streamed = [
            certificate.id
            async for certificate, _ in repository.stream_certificates(
                sessionmaker=service.app.state.sessionmaker, query=query, batch_size=batch_size
            )
        ]
        assert streamed == created


async def _stored_counts(service: Harness) -> tuple[int, int, int]:
    """Certificates, history entries and change events in the database."""
    async with service.engine.connect() as connection:
        counts = [
            (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("certificate", "certificate_history", "event")
        ]
    return counts[0], counts[1], counts[2]


@pytest.mark.parametrize("bad_line", [3, 24])
async def test_a_bad_row_after_stored_batches_leaves_nothing_behind(
    service: Harness, credit_code: Callable[[int], str], bad_line: int
) -> None:
    """Rows are stored a batch at a time while the file reads well: a bad row in a later
    batch (or an early one) refuses the file and nothing of the earlier batches stays."""
    settings: Settings = service.app.state.settings
    service.app.state.settings = settings.model_copy(update={"import_batch_size": 10})
    rows = [_row(i, credit_code(i)) for i in range(1, 26)]
    good = rows[bad_line - 2]
    rows[bad_line - 2] = _row(bad_line - 1, credit_code(bad_line - 1), issued_on="someday")
    try:
        refused = await _post(service, _csv(rows))
        assert refused.status_code == 422, refused.text
        assert [(e["line"], e["field"]) for e in refused.json()["errors"]] == [
            (bad_line, "issued_on")
        ]
        assert refused.json()["stored"] == 0
        assert await _stored_counts(service) == (0, 0, 0)
        rows[bad_line - 2] = good
        accepted = await _post(service, _csv(rows))
    finally:
        service.app.state.settings = settings
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["stored"] == 25
    assert await _stored_counts(service) == (25, 25, 25)


async def test_a_repeat_across_batches_is_named_by_its_first_line(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    settings: Settings = service.app.state.settings
    service.app.state.settings = settings.model_copy(update={"import_batch_size": 10})
    rows = [_row(i, credit_code(i)) for i in range(1, 26)]
    rows[21] = _row(4, credit_code(23))
    try:
        refused = await _post(service, _csv(rows))
    finally:
        service.app.state.settings = settings
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["line"], error["field"]) == (23, "certificate_number")
    assert error["message"].startswith("repeats line 5")
    assert await _stored_counts(service) == (0, 0, 0)
