"""The suite's date policy on listings: award dates between 1949-10-01 and today, validity
ends up to the configured horizon (10 years) ahead, by JSON and by CSV line alike."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from brand_registry.settings import Settings
from brand_registry.tests.support import credit_code
from kit.dates import add_years
from kit.testing import Harness


@pytest.fixture
def today(service: Harness) -> date:
    settings: Settings = service.app.state.settings
    return settings.today()


def listing(number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "product_name": f"產品{number}",
        "brand_name": "徐工",
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": f"徐州第{number}機械廠",
        "county_code": "320323",
        "tier": "city_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": "2024-12-01",
        **overrides,
    }


def bad_cases(today: date) -> list[tuple[str, str]]:
    """(field, value) pairs the date policy refuses."""
    return [
        ("awarded_on", "9999-12-31"),
        ("awarded_on", "9998-01-01"),
        ("awarded_on", "0001-01-01"),
        ("awarded_on", "1949-09-30"),
        ("awarded_on", (today + timedelta(days=1)).isoformat()),
        ("valid_until", "9999-12-31"),
        ("valid_until", (add_years(today, 10) + timedelta(days=1)).isoformat()),
    ]


async def post_csv(service: Harness, rows: list[dict[str, Any]], **params: str) -> httpx.Response:
    buffer = io.StringIO()
    names = sorted({name for row in rows for name in row})
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    return await service.client().post(
        "/api/v1/brands/import",
        content=buffer.getvalue().encode(),
        params=params,
        headers={"Content-Type": "text/csv"},
    )


def refused_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"] for error in response.json()["errors"]}


async def test_each_date_out_of_range_is_422_naming_the_field_by_json(
    service: Harness, today: date
) -> None:
    for number, (field, value) in enumerate(bad_cases(today), start=1):
        response = await service.client().post(
            "/api/v1/brands", json=listing(number, **{field: value})
        )
        assert field in refused_fields(response), (field, value)
    assert (await service.client().get("/api/v1/brands")).json()["items"] == []


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_each_date_out_of_range_is_a_line_error_of_the_import(
    service: Harness, today: date, dry_run: str
) -> None:
    cases = bad_cases(today)
    rows = [listing(n, **{f: v}) for n, (f, v) in enumerate(cases, start=1)]
    rows.append(listing(99))
    response = await post_csv(service, rows, dry_run=dry_run)
    assert response.status_code == 422, response.text
    assert response.json()["dry_run"] is (dry_run == "true")
    errors = response.json()["errors"]
    found = {(error["line"], error["field"]) for error in errors}
    for line, (field, _) in enumerate(cases, start=2):
        assert (line, field) in found
    assert not any(line == len(cases) + 2 for line, _ in found)
    assert response.json()["stored"] == 0
    assert (await service.client().get("/api/v1/brands")).json()["items"] == []


async def test_the_boundaries_are_accepted(service: Harness, today: date) -> None:
    latest = add_years(today, 10).isoformat()
    first = await service.client().post(
        "/api/v1/brands", json=listing(1, awarded_on="1949-10-01", valid_until="1952-10-01")
    )
    assert first.status_code == 201, first.text
    awarded_today = await service.client().post(
        "/api/v1/brands", json=listing(2, awarded_on=today.isoformat(), valid_until=latest)
    )
    assert awarded_today.status_code == 201, awarded_today.text
    assert awarded_today.json()["valid_until"] == latest
    imported = await post_csv(
        service,
        [
            listing(3, awarded_on="1949-10-01", valid_until="1952-10-01"),
            listing(4, awarded_on=today.isoformat(), valid_until=latest),
        ],
    )
    assert imported.status_code == 201, imported.text


async def test_an_edit_is_held_to_the_same_dates(service: Harness, today: date) -> None:
    created = await service.client().post(
        "/api/v1/brands", json=listing(1, valid_until="2030-12-31")
    )
    url = f"/api/v1/brands/{created.json()['id']}"
    etag = {"If-Match": created.headers["ETag"]}
    for change in (
        {"awarded_on": "9998-01-01"},
        {"awarded_on": "0001-01-01"},
        {"valid_until": "9999-12-31"},
    ):
        response = await service.client().patch(url, json=change, headers=etag)
        assert set(change) <= refused_fields(response), change
    moved = await service.client().patch(url, json={"awarded_on": "2024-11-01"}, headers=etag)
    assert moved.status_code == 200, moved.text


def test_the_horizon_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().validity_horizon_years == 10
    monkeypatch.setenv("BRAND_REGISTRY_VALIDITY_HORIZON_YEARS", "5")
    assert Settings().validity_horizon_years == 5


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/brands?as_of=9999-12-31&status=active",
        "/api/v1/brands?as_of=0001-01-01&status=expired",
        "/api/v1/brands?awarded_from=0001-01-01&awarded_to=9999-12-31",
        "/api/v1/brands/stats?year=2024&as_of=9999-12-31",
        "/api/v1/brands/export?as_of=9999-12-31&status=suspended",
    ],
)
async def test_the_calendars_ends_in_queries_are_answered(service: Harness, path: str) -> None:
    await service.client().post("/api/v1/brands", json=listing(1))
    response = await service.client().get(path)
    assert response.status_code == 200, response.text
