"""CSV import (all rows or none, with a per-row report) and streamed CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from brand_registry.tests.support import PIZHOU, count, credit_code
from kit.testing import Harness

IMPORT = "/api/v1/brands/import"
EXPORT = "/api/v1/brands/export"
HEADER = [
    "product_name",
    "brand_name",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "tier",
    "sector",
    "award_kind",
    "awarded_on",
    "valid_until",
    "international_standard",
    "standard_code",
    "batch_code",
]


def row(number: int, **overrides: Any) -> dict[str, Any]:
    values = {
        "product_name": f"產品{number}",
        "brand_name": "徐工",
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": f"徐州第{number}機械廠",
        "county_code": "320323",
        "tier": "provincial_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": "2024-12-01",
        "valid_until": "2035-12-31",
        "international_standard": "false",
        "standard_code": "",
        "batch_code": "蘇名牌〔2024〕1號",
    }
    values.update(overrides)
    return values


def csv_bytes(rows: list[dict[str, Any]], *, bom: bool = True, header: list[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode()


async def post_csv(service: Harness, body: bytes, **params: Any) -> Any:
    return await service.client().post(
        IMPORT, content=body, params=params, headers={"Content-Type": "text/csv"}
    )


@pytest.mark.parametrize("bom", [True, False])
async def test_a_clean_file_is_stored_whole(service: Harness, bom: bool) -> None:
    rows = [row(n) for n in range(1, 6)]
    rows.append(row(1, award_kind="renewal", awarded_on="2026-12-01", valid_until=""))
    response = await post_csv(service, csv_bytes(rows, bom=bom))
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["rows"], report["valid"], report["stored"], report["error_count"]) == (
        6,
        6,
        6,
        0,
    )
    client = service.client()
    assert await count(client) == 6
    assert await count(client, q="第3機械") == 1
    renewal = (await client.get("/api/v1/brands", params={"award_kind": "renewal"})).json()
    (renewed,) = renewal["items"]
    assert renewed["valid_until"] == "2028-12-01"
    assert renewed["renewal_of"] is not None
    history = (await client.get(f"/api/v1/brands/{renewed['id']}/history")).json()["items"]
    assert history[0]["reason"] == "CSV import"


async def test_a_dry_run_reports_and_stores_nothing(service: Harness) -> None:
    response = await post_csv(service, csv_bytes([row(1), row(2)]), dry_run="true")
    assert response.status_code == 200
    assert response.json()["dry_run"] is True
    assert response.json()["stored"] == 0
    assert response.json()["valid"] == 2
    assert await count(service.client()) == 0
    bad = await post_csv(service, csv_bytes([row(1), row(2, tier="x")]), dry_run="true")
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"line": 3, "field": "tier", "message": bad.json()["errors"][0]["message"]}
    ]


async def test_one_bad_row_stores_nothing_and_every_bad_row_is_reported(service: Harness) -> None:
    rows = [
        row(1),
        row(2, county_code="320399"),
        row(3, enterprise_credit_code=credit_code(3)[:-1] + "0"),
        row(4, awarded_on="2024-13-01"),
        row(5, tier="national_inspection_exempt", awarded_on="2009-01-01"),
        row(6, valid_until="2020-01-01"),
        row(1, awarded_on="2025-01-01"),
        row(7, award_kind="renewal"),
        row(8, product_name=""),
        row(9),
    ]
    response = await post_csv(service, csv_bytes(rows))
    assert response.status_code == 422
    problem = response.json()
    assert problem["stored"] == 0
    found = {(e["line"], e["field"]) for e in problem["errors"]}
    assert found == {
        (3, "county_code"),
        (4, "enterprise_credit_code"),
        (5, "awarded_on"),
        (6, "tier"),
        (7, "valid_until"),
        (8, "product_name"),
        (9, "award_kind"),
        (10, "product_name"),
    }
    assert problem["error_count"] == 8
    assert await count(service.client()) == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"", 422, "file"),
        ("\ufeff".encode() + ",".join(HEADER).encode() + b"\r\n", 422, "file"),
        (csv_bytes([row(1)]).replace("徐工".encode(), "徐工".encode("gb18030")), 422, "file"),
        (csv_bytes([row(1)], header=[*HEADER, "colour"]).replace(b"\r\n", b",\r\n"), 422, "header"),
        (csv_bytes([row(1)], header=HEADER[1:]), 422, "header"),
    ],
    ids=["empty", "header-only", "gb18030", "unknown-column", "missing-column"],
)
async def test_unusable_files_are_refused(
    service: Harness, body: bytes, status: int, field: str
) -> None:
    response = await post_csv(service, body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field
    assert await count(service.client()) == 0


async def test_an_upload_over_the_limit_is_a_413(service: Harness) -> None:
    settings = service.app.state.settings
    limit = settings.max_upload_bytes
    settings.max_upload_bytes = 2048
    try:
        response = await post_csv(service, csv_bytes([row(n) for n in range(1, 40)]))
    finally:
        settings.max_upload_bytes = limit
    assert response.status_code == 413
    assert await count(service.client()) == 0


async def test_the_default_limit_admits_100000_rows() -> None:
    from brand_registry.settings import Settings

    one_row = len(csv_bytes([row(1, product_name="很長的產品名稱" * 10)]))
    assert Settings().max_upload_bytes > 100_000 * one_row


async def test_export_streams_the_filtered_list_with_a_bom(service: Harness) -> None:
    rows = [row(n) for n in range(1, 4)] + [row(9, county_code=PIZHOU, brand_name="邳州")]
    assert (await post_csv(service, csv_bytes(rows))).status_code == 201
    client = service.client()
    response = await client.get(EXPORT, params={"county_code": PIZHOU})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    exported = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["brand_name"] for r in exported] == ["邳州"]
    assert exported[0]["tier_label"] == "江蘇名牌產品"
    assert exported[0]["status"] == "active"
    everything = await client.get(EXPORT)
    assert len(list(csv.DictReader(io.StringIO(everything.content.decode("utf-8-sig"))))) == 4
    bad = await client.get(EXPORT, params={"county_code": "320399"})
    assert bad.status_code == 422


async def test_an_import_refuses_a_new_award_of_a_listing_still_renewable(service: Harness) -> None:
    rows = [
        row(30, awarded_on="2016-03-01", valid_until=""),
        row(30, awarded_on="2018-04-01", valid_until=""),
        row(31, awarded_on="2014-03-01", valid_until=""),
        row(31, award_kind="renewal", awarded_on="2017-03-01", valid_until=""),
    ]
    response = await post_csv(service, csv_bytes(rows))
    assert response.status_code == 422
    errors = {(e["line"], e["field"]): e["message"] for e in response.json()["errors"]}
    # Provincial listings last 2 years: 30 lapsed on 2018-03-01, 31 on 2016-03-01.
    assert set(errors) == {(3, "award_kind"), (5, "award_kind")}
    assert errors[(3, "award_kind")].startswith("new award of a lapsed listing")
    assert errors[(5, "award_kind")].startswith("renewal after the grace period")
