"""A client bound to counties writes only their listings and reads only theirs (every
county with city:read); an unbound client, a service's own, is unaffected."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from brand_registry.tests.support import PIZHOU, TONGSHAN, credit_code
from kit.auth import CITY_WIDE_READ_SCOPE
from kit.testing import Harness

XINYI = "320381"
WRITE = ("brands:read", "brands:write")
BoundClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def bound(service: Harness) -> BoundClient:
    """Clients carrying a gateway token bound to the given counties."""

    def make(counties: Iterable[str], scopes: Iterable[str] = WRITE) -> httpx.AsyncClient:
        return service.client(scopes, client_id="county-office", county_codes=counties)

    return make


def listing(number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "product_name": f"產品{number}",
        "brand_name": "徐工",
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": f"徐州第{number}機械廠",
        "county_code": TONGSHAN,
        "tier": "provincial_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": "2024-12-01",
        "valid_until": "2030-12-31",
        **overrides,
    }


def assert_refused_for_county(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["field"] == "county_code"
    assert problem["errors"][0]["field"] == "county_code"
    return problem


async def test_create_outside_the_binding_is_403_and_inside_201(bound: BoundClient) -> None:
    client = bound([TONGSHAN])
    problem = assert_refused_for_county(
        await client.post("/api/v1/brands", json=listing(1, county_code=PIZHOU))
    )
    assert problem["allowed_county_codes"] == [TONGSHAN]
    created = await client.post("/api/v1/brands", json=listing(2))
    assert created.status_code == 201, created.text


async def test_an_edit_may_not_move_a_listing_out_of_the_binding(bound: BoundClient) -> None:
    client = bound([TONGSHAN])
    created = await client.post("/api/v1/brands", json=listing(1))
    url = f"/api/v1/brands/{created.json()['id']}"
    etag = {"If-Match": created.headers["ETag"]}
    assert_refused_for_county(await client.patch(url, json={"county_code": PIZHOU}, headers=etag))
    kept = await client.patch(url, json={"brand_name": "徐工機械"}, headers=etag)
    assert kept.status_code == 200, kept.text


async def test_writes_on_another_countys_listing_are_refused(
    service: Harness, bound: BoundClient
) -> None:
    other = await service.client().post("/api/v1/brands", json=listing(1, county_code=PIZHOU))
    url = f"/api/v1/brands/{other.json()['id']}"
    etag = {"If-Match": other.headers["ETag"]}
    suspend = {"status": "suspended", "reason": "抽查不合格"}
    # Without city:read the client does not see it; with it, it reads it. Neither may write
    # it, nor move it into its county.
    hidden = bound([TONGSHAN])
    assert (await hidden.get(url)).status_code == 404
    assert (await hidden.get(f"{url}/history")).status_code == 404
    reader = bound([TONGSHAN], scopes=(*WRITE, CITY_WIDE_READ_SCOPE))
    assert (await reader.get(url)).status_code == 200
    for client in (hidden, reader):
        assert_refused_for_county(await client.patch(url, json={"brand_name": "x"}, headers=etag))
        moved = {"county_code": TONGSHAN}
        assert_refused_for_county(await client.patch(url, json=moved, headers=etag))
        assert_refused_for_county(await client.post(f"{url}/status", json=suspend, headers=etag))
    unchanged = await service.client().get(url)
    assert unchanged.headers["ETag"] == other.headers["ETag"]
    own = await reader.post("/api/v1/brands", json=listing(2))
    changed = await reader.post(
        f"/api/v1/brands/{own.json()['id']}/status",
        json=suspend,
        headers={"If-Match": own.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text


async def test_a_service_flagging_listings_is_not_bound(
    service: Harness, bound: BoundClient
) -> None:
    await service.client().post("/api/v1/brands", json=listing(1, county_code=PIZHOU))
    flagger = service.client(scopes=("brands:flag",), client_id="inspection")
    flag = {
        "enterprise_credit_code": credit_code(1),
        "source": "inspection",
        "reference": "SC-1",
        "reason": "抽查不合格",
    }
    response = await flagger.post("/api/v1/brands/review-flags", json=flag)
    assert response.status_code == 201, response.text
    assert len(response.json()["flagged_brand_ids"]) == 1


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_an_import_with_a_row_outside_the_binding_is_refused_whole(
    service: Harness, bound: BoundClient, dry_run: str
) -> None:
    client = bound([TONGSHAN])
    rows = [listing(1), listing(2, county_code=PIZHOU), listing(3), listing(4, county_code=XINYI)]
    response = await client.post(
        "/api/v1/brands/import",
        content=csv_bytes(rows),
        params={"dry_run": dry_run},
        headers={"Content-Type": "text/csv"},
    )
    problem = assert_refused_for_county(response)
    assert problem["lines"] == [3, 5]
    assert problem["line_count"] == 2
    assert (await service.client().get("/api/v1/brands")).json()["items"] == []
    own = await client.post(
        "/api/v1/brands/import",
        content=csv_bytes([listing(1), listing(3)]),
        headers={"Content-Type": "text/csv"},
    )
    assert own.status_code == 201, own.text
    assert own.json()["stored"] == 2


async def test_lists_exports_and_stats_show_only_the_bound_counties(
    service: Harness, bound: BoundClient
) -> None:
    for number, county in enumerate((TONGSHAN, XINYI, PIZHOU), start=1):
        created = await service.client().post(
            "/api/v1/brands", json=listing(number, county_code=county)
        )
        assert created.status_code == 201, created.text
    two = bound([TONGSHAN, XINYI], scopes=("brands:read",))

    listed = (await two.get("/api/v1/brands")).json()["items"]
    assert sorted(item["county_code"] for item in listed) == [TONGSHAN, XINYI]
    other = (await two.get("/api/v1/brands", params={"county_code": PIZHOU})).json()
    assert other["items"] == []
    exported = (await two.get("/api/v1/brands/export")).text.lstrip("\ufeff")
    counties = [row["county_code"] for row in csv.DictReader(io.StringIO(exported))]
    assert sorted(counties) == [TONGSHAN, XINYI]
    stats = (await two.get("/api/v1/brands/stats", params={"year": 2024})).json()
    assert [row["county_code"] for row in stats["by_county"]] == [TONGSHAN, XINYI]
    assert stats["totals"]["new_awards"] == 2

    city = bound([TONGSHAN], scopes=("brands:read", CITY_WIDE_READ_SCOPE))
    assert len((await city.get("/api/v1/brands")).json()["items"]) == 3
    city_stats = (await city.get("/api/v1/brands/stats", params={"year": 2024})).json()
    assert city_stats["totals"]["new_awards"] == 3
    unbound = await service.client().get("/api/v1/brands/stats", params={"year": 2024})
    assert unbound.json()["totals"]["new_awards"] == 3
