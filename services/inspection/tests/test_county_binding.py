"""A client bound to counties records, re-inspects, corrects and imports only its counties'
spot-checks and reads only theirs (every county with city:read)."""

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from inspection.tests.support import PAST, credit_code, spot_check
from kit.auth import CITY_WIDE_READ_SCOPE
from kit.testing import Harness

TONGSHAN, XINYI, PIZHOU = "320323", "320381", "320382"
WRITE = ("spot-checks:read", "spot-checks:write")
URL = "/api/v1/spot-checks"
BoundClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def bound(service: Harness) -> BoundClient:
    """Clients carrying a gateway token bound to the given counties."""

    def make(counties: Iterable[str], scopes: Iterable[str] = WRITE) -> httpx.AsyncClient:
        return service.client(scopes, client_id="county-office", county_codes=counties)

    return make


def check(number: int, **overrides: Any) -> dict[str, Any]:
    return spot_check(
        sample_code=f"CB-{number:03d}", enterprise_credit_code=credit_code(number), **overrides
    )


def reinspection(original: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    fields = {
        "sample_code": original["sample_code"],
        "enterprise_credit_code": original["enterprise_credit_code"],
        "county_code": original["county_code"],
        "result": "pass",
        "sampled_on": PAST.isoformat(),
        "reinspection_of": original["id"],
    }
    return spot_check(**(fields | overrides))


def assert_refused_for_county(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["field"] == "county_code"
    assert problem["errors"][0]["field"] == "county_code"
    return problem


async def test_recording_outside_the_binding_is_403_and_inside_201(bound: BoundClient) -> None:
    client = bound([TONGSHAN])
    problem = assert_refused_for_county(await client.post(URL, json=check(1, county_code=XINYI)))
    assert problem["allowed_county_codes"] == [TONGSHAN]
    created = await client.post(URL, json=check(2))
    assert created.status_code == 201, created.text


async def test_reinspections_stay_in_the_binding(service: Harness, bound: BoundClient) -> None:
    client = bound([TONGSHAN])
    own = (await client.post(URL, json=check(1))).json()
    assert_refused_for_county(await client.post(URL, json=reinspection(own, county_code=XINYI)))
    other = (await service.client().post(URL, json=check(2, county_code=XINYI))).json()
    reader = bound([TONGSHAN], scopes=(*WRITE, CITY_WIDE_READ_SCOPE))
    for writer in (client, reader):
        assert_refused_for_county(await writer.post(URL, json=reinspection(other)))
        assert_refused_for_county(
            await writer.post(URL, json=reinspection(other, county_code=TONGSHAN))
        )
    done = await client.post(URL, json=reinspection(own))
    assert done.status_code == 201, done.text


async def test_corrections_stay_in_the_binding(service: Harness, bound: BoundClient) -> None:
    client = bound([TONGSHAN])
    own = await client.post(URL, json=check(1))
    own_url = f"{URL}/{own.json()['id']}"
    own_etag = {"If-Match": own.headers["ETag"]}
    moved = {"county_code": XINYI, "reason": "縣區錄入錯誤"}
    assert_refused_for_county(await client.patch(own_url, json=moved, headers=own_etag))

    other = await service.client().post(URL, json=check(2, county_code=XINYI))
    url = f"{URL}/{other.json()['id']}"
    etag = {"If-Match": other.headers["ETag"]}
    fix = {"product_name": "速凍湯圓", "reason": "產品名稱錄入錯誤"}
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"{url}/history")).status_code == 404
    reader = bound([TONGSHAN], scopes=(*WRITE, CITY_WIDE_READ_SCOPE))
    assert (await reader.get(url)).status_code == 200
    back = {"county_code": TONGSHAN, "reason": "縣區錄入錯誤"}
    for writer in (client, reader):
        assert_refused_for_county(await writer.patch(url, json=fix, headers=etag))
        assert_refused_for_county(await writer.patch(url, json=back, headers=etag))
    assert (await service.client().get(url)).headers["ETag"] == other.headers["ETag"]

    fixed = await client.patch(own_url, json=fix, headers=own_etag)
    assert fixed.status_code == 200, fixed.text


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


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_an_import_with_a_row_outside_the_binding_is_refused_whole(
    service: Harness, bound: BoundClient, dry_run: str
) -> None:
    client = bound([TONGSHAN])
    rows = [check(1), check(2, county_code=PIZHOU), check(3), check(4, county_code=XINYI)]
    response = await client.post(
        f"{URL}/import",
        content=csv_bytes(rows),
        params={"dry_run": dry_run},
        headers={"Content-Type": "text/csv"},
    )
    problem = assert_refused_for_county(response)
    assert problem["lines"] == [3, 5]
    assert problem["line_count"] == 2
    assert (await service.client().get(URL)).json()["items"] == []
    own = await client.post(
        f"{URL}/import",
        content=csv_bytes([check(1), check(3)]),
        headers={"Content-Type": "text/csv"},
    )
    assert own.status_code == 201, own.text
    assert own.json()["stored"] == 2


async def test_lists_exports_and_stats_show_only_the_bound_counties(
    service: Harness, bound: BoundClient
) -> None:
    for number, county in enumerate((TONGSHAN, XINYI, PIZHOU), start=1):
        created = await service.client().post(URL, json=check(number, county_code=county))
        assert created.status_code == 201, created.text
    two = bound([TONGSHAN, XINYI], scopes=("spot-checks:read",))
    year = {"year": int(PAST.isoformat()[:4])}

    listed = (await two.get(URL)).json()["items"]
    assert sorted(item["county_code"] for item in listed) == [TONGSHAN, XINYI]
    assert (await two.get(URL, params={"county_code": PIZHOU})).json()["items"] == []
    exported = (await two.get(f"{URL}/export")).text.lstrip("\ufeff")
    counties = [row["county_code"] for row in csv.DictReader(io.StringIO(exported))]
    assert sorted(counties) == [TONGSHAN, XINYI]
    stats = (await two.get(f"{URL}/stats", params=year)).json()
    assert [row["county_code"] for row in stats["by_county"]] == [TONGSHAN, XINYI]
    assert stats["totals"]["checked"] == 2
    assert {record["county_code"] for record in stats["finding_records"]} == {TONGSHAN, XINYI}

    city = bound([TONGSHAN], scopes=("spot-checks:read", CITY_WIDE_READ_SCOPE))
    assert len((await city.get(URL)).json()["items"]) == 3
    assert (await city.get(f"{URL}/stats", params=year)).json()["totals"]["checked"] == 3
    unbound = await service.client().get(f"{URL}/stats", params=year)
    assert unbound.json()["totals"]["checked"] == 3
