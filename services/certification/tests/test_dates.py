"""The suite's date policy on certificates: issue dates between 1949-10-01 and today, expiry
dates up to the configured horizon (10 years) ahead, by JSON and by CSV line alike."""

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from certification.settings import Settings
from kit.dates import add_years
from kit.testing import Harness

FAR_ISSUE = "9998-01-01"


def payload(n: int, credit_code: Callable[[int], str], **fields: Any) -> dict[str, Any]:
    return {
        "certificate_number": f"DT-{n:05d}",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": credit_code(n),
        "enterprise_name": f"徐州第{n}機械有限公司",
        "county_code": "320323",
        "scope": "工程機械的設計和生產",
        "issued_on": "2024-03-01",
        **fields,
    }


async def post_csv(service: Harness, rows: list[dict[str, Any]], **params: str) -> httpx.Response:
    buffer = io.StringIO()
    names = sorted({name for row in rows for name in row})
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    return await service.client().post(
        "/api/v1/certificates/import",
        content=buffer.getvalue().encode(),
        params=params,
        headers={"Content-Type": "text/csv"},
    )


def refused_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"] for error in response.json()["errors"]}


def bad_cases(today: date) -> list[tuple[str, str]]:
    """(field, value) pairs each date policy refuses."""
    tomorrow = (today + timedelta(days=1)).isoformat()
    beyond = (add_years(today, 10) + timedelta(days=1)).isoformat()
    return [
        ("issued_on", FAR_ISSUE),
        ("issued_on", "9999-12-31"),
        ("issued_on", "0001-01-01"),
        ("issued_on", "1949-09-30"),
        ("issued_on", tomorrow),
        ("original_issued_on", "0001-01-01"),
        ("original_issued_on", tomorrow),
        ("expires_on", "9999-12-31"),
        ("expires_on", beyond),
    ]


async def test_each_date_out_of_range_is_422_naming_the_field_by_json(
    service: Harness, credit_code: Callable[[int], str], today: date
) -> None:
    for n, (field, value) in enumerate(bad_cases(today), start=1):
        response = await service.client().post(
            "/api/v1/certificates", json=payload(n, credit_code, **{field: value})
        )
        assert field in refused_fields(response), (field, value)
    listed = (await service.client().get("/api/v1/certificates")).json()
    assert listed["items"] == []


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_each_date_out_of_range_is_a_line_error_of_the_import(
    service: Harness, credit_code: Callable[[int], str], today: date, dry_run: str
) -> None:
    cases = bad_cases(today)
    rows = [payload(n, credit_code, **{f: v}) for n, (f, v) in enumerate(cases, start=1)]
    rows.append(payload(99, credit_code))
    response = await post_csv(service, rows, dry_run=dry_run)
    assert response.status_code == 422, response.text
    found = {(error["line"], error["field"]) for error in response.json()["errors"]}
    for line, (field, _) in enumerate(cases, start=2):
        assert (line, field) in found
    assert not any(line == len(cases) + 2 for line, _ in found)
    assert response.json()["stored"] == 0


async def test_the_boundaries_are_accepted(
    service: Harness, credit_code: Callable[[int], str], today: date
) -> None:
    first = await service.client().post(
        "/api/v1/certificates",
        json=payload(1, credit_code, issued_on="1949-10-01", original_issued_on="1949-10-01"),
    )
    assert first.status_code == 201, first.text
    latest = add_years(today, 10).isoformat()
    issued_today = await service.client().post(
        "/api/v1/certificates",
        json=payload(2, credit_code, issued_on=today.isoformat(), expires_on=latest),
    )
    assert issued_today.status_code == 201, issued_today.text
    assert issued_today.json()["expires_on"] == latest
    imported = await post_csv(
        service,
        [
            payload(3, credit_code, issued_on="1949-10-01"),
            payload(4, credit_code, issued_on=today.isoformat(), expires_on=latest),
        ],
    )
    assert imported.status_code == 201, imported.text


async def test_an_edit_is_held_to_the_same_dates(
    service: Harness, credit_code: Callable[[int], str], today: date
) -> None:
    created = await service.client().post("/api/v1/certificates", json=payload(1, credit_code))
    url = f"/api/v1/certificates/{created.json()['id']}"
    etag = {"If-Match": created.headers["ETag"]}
    for change in (
        {"issued_on": FAR_ISSUE},
        {"issued_on": "0001-01-01"},
        {"expires_on": "9999-12-31"},
        {"original_issued_on": (today + timedelta(days=1)).isoformat()},
    ):
        response = await service.client().patch(url, json=change, headers=etag)
        assert set(change) <= refused_fields(response), change
    moved = await service.client().patch(url, json={"issued_on": today.isoformat()}, headers=etag)
    assert moved.status_code == 200, moved.text


def test_the_horizon_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().validity_horizon_years == 10
    monkeypatch.setenv("CERTIFICATION_VALIDITY_HORIZON_YEARS", "5")
    assert Settings().validity_horizon_years == 5


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/certificates?as_of=9999-12-31&status=valid&overdue_suspension=true",
        "/api/v1/certificates?as_of=0001-01-01&status=valid",
        "/api/v1/certificates?issued_from=0001-01-01&issued_to=9999-12-31",
        "/api/v1/certificates/stats?year=2024&as_of=9999-12-31",
        "/api/v1/certificates/export?as_of=9999-12-31&status=valid",
    ],
)
async def test_the_calendars_ends_in_queries_are_answered(
    service: Harness, credit_code: Callable[[int], str], path: str
) -> None:
    await service.client().post("/api/v1/certificates", json=payload(1, credit_code))
    response = await service.client().get(path)
    assert response.status_code == 200, response.text
