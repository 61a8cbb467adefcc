"""The suite's date policy on spot-checks: a sampling between 1949-10-01 and today, a
bulletin at most the configured horizon (1 year) ahead, by JSON and by CSV line alike."""

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from inspection.settings import Settings
from inspection.tests.support import credit_code, spot_check
from kit.dates import add_years
from kit.testing import Harness

URL = "/api/v1/spot-checks"


@pytest.fixture
def today(service: Harness) -> date:
    settings: Settings = service.app.state.settings
    return settings.today()


def check(number: int, **overrides: Any) -> dict[str, Any]:
    return spot_check(
        sample_code=f"DT-{number:03d}", enterprise_credit_code=credit_code(number), **overrides
    )


def bad_cases(today: date) -> list[dict[str, str]]:
    """Field values the date policy refuses; the first key names the field refused."""
    tomorrow = (today + timedelta(days=1)).isoformat()
    return [
        {"sampled_on": "9999-12-31", "published_on": "9999-12-31"},
        {"sampled_on": "9998-01-01"},
        {"sampled_on": "0001-01-01"},
        {"sampled_on": "1949-09-30"},
        {"sampled_on": tomorrow, "published_on": tomorrow},
        {"published_on": "9999-12-31"},
        {"published_on": (add_years(today, 1) + timedelta(days=1)).isoformat()},
    ]


def refused_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"] for error in response.json()["errors"]}


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: json.dumps(value, ensure_ascii=False)
                if isinstance(value, list)
                else str(value).lower()
                if isinstance(value, bool)
                else value
                for key, value in row.items()
            }
        )
    return buffer.getvalue().encode()


async def post_csv(service: Harness, rows: list[dict[str, Any]], **params: str) -> httpx.Response:
    return await service.client().post(
        f"{URL}/import",
        content=csv_bytes(rows),
        params=params,
        headers={"Content-Type": "text/csv"},
    )


async def test_each_date_out_of_range_is_422_naming_the_field_by_json(
    service: Harness, today: date
) -> None:
    for number, case in enumerate(bad_cases(today), start=1):
        response = await service.client().post(URL, json=check(number, **case))
        assert next(iter(case)) in refused_fields(response), case
    assert (await service.client().get(URL)).json()["items"] == []


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_each_date_out_of_range_is_a_line_error_of_the_import(
    service: Harness, today: date, dry_run: str
) -> None:
    cases = bad_cases(today)
    rows = [check(number, **case) for number, case in enumerate(cases, start=1)]
    rows.append(check(99))
    response = await post_csv(service, rows, dry_run=dry_run)
    assert response.status_code == 422, response.text
    found = {(error["line"], error["field"]) for error in response.json()["errors"]}
    for line, case in enumerate(cases, start=2):
        assert (line, next(iter(case))) in found
    assert not any(line == len(cases) + 2 for line, _ in found)
    assert (await service.client().get(URL)).json()["items"] == []


async def test_the_boundaries_are_accepted(service: Harness, today: date) -> None:
    latest_bulletin = add_years(today, 1).isoformat()
    accepted = [
        {"sampled_on": "1949-10-01", "published_on": "1949-10-01"},
        {"sampled_on": today.isoformat(), "published_on": today.isoformat()},
        {"sampled_on": today.isoformat(), "published_on": latest_bulletin},
    ]
    for number, case in enumerate(accepted, start=1):
        response = await service.client().post(URL, json=check(number, **case))
        assert response.status_code == 201, response.text
    imported = await post_csv(
        service, [check(10 + number, **case) for number, case in enumerate(accepted)]
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["stored"] == 3


async def test_a_correction_is_held_to_the_same_dates(service: Harness, today: date) -> None:
    created = await service.client().post(URL, json=check(1))
    url = f"{URL}/{created.json()['id']}"
    etag = {"If-Match": created.headers["ETag"]}
    for change in (
        {"sampled_on": "0001-01-01"},
        {"sampled_on": (today + timedelta(days=1)).isoformat()},
        {"published_on": "9999-12-31"},
    ):
        response = await service.client().patch(
            url, json={**change, "reason": "日期錄入錯誤"}, headers=etag
        )
        assert set(change) <= refused_fields(response), change
    fixed = await service.client().patch(
        url, json={"published_on": today.isoformat(), "reason": "公告日期更正"}, headers=etag
    )
    assert fixed.status_code == 200, fixed.text


def test_the_bulletin_horizon_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().bulletin_horizon_years == 1
    monkeypatch.setenv("INSPECTION_BULLETIN_HORIZON_YEARS", "2")
    assert Settings().bulletin_horizon_years == 2


@pytest.mark.parametrize(
    "path",
    [
        f"{URL}?sampled_from=0001-01-01&sampled_to=9999-12-31",
        f"{URL}/stats?year=2024&as_of=9999-12-31",
        f"{URL}/stats?year=2100&as_of=9999-12-31&include_unpublished=true",
        f"{URL}/export?sampled_from=0001-01-01",
    ],
)
async def test_the_calendars_ends_in_queries_are_answered(service: Harness, path: str) -> None:
    await service.client().post(URL, json=check(1))
    response = await service.client().get(path)
    assert response.status_code == 200, response.text
