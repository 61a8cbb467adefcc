"""CSV import (all rows or none, with a per-row report) and streamed CSV export."""

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from inspection.tests.support import TODAY, credit_code, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"
IMPORT = f"{URL}/import"
CSV_HEADERS = {"Content-Type": "text/csv"}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
                for key, value in row.items()
            }
        )
    return buffer.getvalue().encode()


def _rows(count: int) -> list[dict[str, Any]]:
    rows = []
    for index in range(count):
        row = spot_check(
            sample_code=f"CSV-{index:03d}",
            enterprise_credit_code=credit_code(100 + index),
            result="fail" if index % 4 == 0 else "pass",
        )
        row["mandatory_standard_violation"] = "true" if index % 4 == 0 else "false"
        row["published_on"] = row["published_on"] if index % 2 == 0 else ""
        rows.append(row)
    return rows


async def _count(service: Harness) -> int:
    response = await service.client().get(URL, params={"limit": 500, "include_unpublished": True})
    return len(response.json()["items"])


async def test_import_stores_every_row_in_batches(service: Harness) -> None:
    client = service.client(client_id="provincial-platform")
    response = await client.post(IMPORT, content=_csv(_rows(20)), headers=CSV_HEADERS)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["rows"] == report["stored"] == report["valid"] == 20
    assert report["error_count"] == 0
    assert await _count(service) == 20
    page = await client.get(URL, params={"q": "CSV-004", "include_unpublished": True})
    (item,) = page.json()["items"]
    assert item["result"] == "fail"
    assert item["nonconforming_items"][0]["item"] == "鉛含量"
    assert item["mandatory_standard_violation"] is True
    assert item["created_by"] == "provincial-platform"
    history = (await client.get(f"{URL}/{item['id']}/history")).json()["items"]
    assert history[0]["action"] == "imported"


async def test_dry_run_validates_and_stores_nothing(service: Harness) -> None:
    response = await service.client().post(
        IMPORT, params={"dry_run": True}, content=_csv(_rows(5)), headers=CSV_HEADERS
    )
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert response.json()["stored"] == 0
    assert await _count(service) == 0


async def test_one_bad_row_rejects_the_file_with_a_report(service: Harness) -> None:
    client = service.client()
    existing = await client.post(URL, json=spot_check(sample_code="TAKEN"))
    assert existing.status_code == 201
    rows = _rows(12)
    rows[2]["nonconforming_items"] = "[not json"
    rows[3]["sampled_on"] = (TODAY + timedelta(days=2)).isoformat()
    rows[5]["sample_code"] = rows[4]["sample_code"]
    rows[6]["sample_code"] = "TAKEN"
    rows[7]["level"] = "county"
    rows[8]["enterprise_credit_code"] = "91320303MA00000"
    rows[9]["county_code"] = "110101"
    response = await client.post(IMPORT, content=_csv(rows), headers=CSV_HEADERS)
    assert response.status_code == 422, response.text
    report = response.json()
    assert report["stored"] == 0
    found = {(error["line"], error["field"]) for error in report["errors"]}
    assert found == {
        (4, "nonconforming_items"),
        (5, "sampled_on"),
        (7, "sample_code"),
        (8, "sample_code"),
        (9, "level"),
        (10, "enterprise_credit_code"),
        (11, "county_code"),
    }
    assert await _count(service) == 1


async def test_a_malformed_file_is_a_422_naming_it(service: Harness) -> None:
    client = service.client()
    good = _csv(_rows(2))
    cases = {
        b"": "file",
        b"plan_code,colour\r\nX,red\r\n": "header",
        good.replace("速凍".encode(), "速凍".encode("gb18030")): "file",
        good.splitlines()[0] + b"\r\n": "file",
    }
    for content, field in cases.items():
        response = await client.post(IMPORT, content=content, headers=CSV_HEADERS)
        assert response.status_code == 422, (content[:40], response.text)
        assert response.json()["errors"][0]["field"] == field
    assert await _count(service) == 0


async def test_export_streams_csv_that_imports_again(service: Harness) -> None:
    client = service.client()
    await client.post(IMPORT, content=_csv(_rows(6)), headers=CSV_HEADERS)
    export = await client.get(f"{URL}/export", params={"include_unpublished": True})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    text = export.content.decode("utf-8")
    assert text.startswith("\ufeffid,plan_code,level")
    records = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(records) == 6
    failed = next(record for record in records if record["result"] == "fail")
    assert json.loads(failed["nonconforming_items"])[0]["item"] == "鉛含量"
    failed_only = await client.get(f"{URL}/export", params={"result": "fail"})
    assert failed_only.text.count("\r\n") == 1 + 2

    await service.reset()
    again = await service.client().post(IMPORT, content=export.content, headers=CSV_HEADERS)
    assert again.status_code == 201, again.text
    assert again.json()["stored"] == 6


async def _stored_counts(service: Harness) -> dict[str, int]:
    """Rows of every table an import writes."""
    tables = ("spot_check", "spot_check_history", "outbox_message", "event")
    async with service.engine.connect() as connection:
        return {
            table: (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in tables
        }


@pytest.mark.parametrize("bad_index", [1, 17])
async def test_a_bad_row_after_stored_batches_leaves_nothing_behind(
    service: Harness, bad_index: int
) -> None:
    """Batches are stored while the file reads well: a bad row in a later batch (or in the
    first) refuses the file, and nothing of the batches before it stays, events and
    brand-review notices included; a repeat across batches is named by its first line."""
    settings = service.app.state.settings
    service.app.state.settings = settings.model_copy(update={"import_batch_size": 5})
    rows = _rows(20)
    rows[bad_index]["sample_code"] = rows[0]["sample_code"]
    try:
        refused = await service.client().post(IMPORT, content=_csv(rows), headers=CSV_HEADERS)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert (error["line"], error["field"]) == (bad_index + 2, "sample_code")
        assert "repeats line 2" in error["message"]
        assert set((await _stored_counts(service)).values()) == {0}
        rows[bad_index]["sample_code"] = "CSV-NEW"
        accepted = await service.client().post(IMPORT, content=_csv(rows), headers=CSV_HEADERS)
    finally:
        service.app.state.settings = settings
    assert accepted.status_code == 201, accepted.text
    counts = await _stored_counts(service)
    assert counts["spot_check"] == counts["spot_check_history"] == 20
    assert counts["outbox_message"] > 0
    assert counts["event"] > 0
