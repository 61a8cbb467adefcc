"""A client bound to counties writes only their certificates and reads only theirs (every
county with city:read); an unbound client, a service's own, is unaffected."""

import csv
import io
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx
import pytest

from kit.auth import CITY_WIDE_READ_SCOPE
from kit.testing import Harness

TONGSHAN, XINYI, PIZHOU = "320323", "320381", "320382"
WRITE = ("certificates:read", "certificates:write")
BoundClient = Callable[..., httpx.AsyncClient]
NewCertificate = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def bound(service: Harness) -> BoundClient:
    """Clients carrying a gateway token bound to the given counties."""

    def make(counties: Iterable[str], scopes: Iterable[str] = WRITE) -> httpx.AsyncClient:
        return service.client(scopes, client_id="county-office", county_codes=counties)

    return make


def payload(n: int, credit_code: Callable[[int], str], **fields: Any) -> dict[str, Any]:
    return {
        "certificate_number": f"CB-{n:05d}",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": credit_code(n),
        "enterprise_name": f"徐州第{n}機械有限公司",
        "county_code": TONGSHAN,
        "scope": "工程機械的設計和生產",
        "issued_on": "2024-03-01",
        **fields,
    }


def assert_refused_for_county(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["field"] == "county_code"
    assert problem["errors"][0]["field"] == "county_code"
    return problem


async def test_create_outside_the_binding_is_403_and_inside_201(
    bound: BoundClient, credit_code: Callable[[int], str]
) -> None:
    client = bound([TONGSHAN])
    refused = await client.post(
        "/api/v1/certificates", json=payload(1, credit_code, county_code=XINYI)
    )
    problem = assert_refused_for_county(refused)
    assert problem["allowed_county_codes"] == [TONGSHAN]
    created = await client.post("/api/v1/certificates", json=payload(2, credit_code))
    assert created.status_code == 201, created.text
    assert created.json()["county_code"] == TONGSHAN


async def test_a_patch_may_not_move_a_certificate_out_of_the_binding(
    bound: BoundClient, credit_code: Callable[[int], str]
) -> None:
    client = bound([TONGSHAN])
    created = await client.post("/api/v1/certificates", json=payload(1, credit_code))
    url = f"/api/v1/certificates/{created.json()['id']}"
    etag = created.headers["ETag"]
    moved = await client.patch(url, json={"county_code": XINYI}, headers={"If-Match": etag})
    assert_refused_for_county(moved)
    kept = await client.patch(url, json={"scope": "機械的生產"}, headers={"If-Match": etag})
    assert kept.status_code == 200, kept.text


async def test_writes_on_another_countys_certificate_are_refused(
    service: Harness,
    bound: BoundClient,
    new_certificate: NewCertificate,
    credit_code: Callable[[int], str],
) -> None:
    other = await new_certificate(county_code=XINYI)
    url = f"/api/v1/certificates/{other['id']}"
    etag = (await service.client().get(url)).headers["ETag"]
    status = {"status": "suspended", "reason": "監督審核未通過"}
    # Without city:read the client does not see it; with it, it reads it. Neither may write
    # it, nor move it into its county.
    hidden = bound([TONGSHAN])
    assert (await hidden.get(url)).status_code == 404
    assert (await hidden.get(f"{url}/history")).status_code == 404
    reader = bound([TONGSHAN], scopes=(*WRITE, CITY_WIDE_READ_SCOPE))
    assert (await reader.get(url)).status_code == 200
    for client in (hidden, reader):
        assert_refused_for_county(
            await client.patch(url, json={"scope": "x"}, headers={"If-Match": etag})
        )
        assert_refused_for_county(
            await client.patch(url, json={"county_code": TONGSHAN}, headers={"If-Match": etag})
        )
        assert_refused_for_county(
            await client.post(f"{url}/status", json=status, headers={"If-Match": etag})
        )
    assert (await service.client().get(url)).json()["version"] == other["version"]
    # Its own county's certificate takes the same status change.
    own = await reader.post("/api/v1/certificates", json=payload(9, credit_code))
    changed = await reader.post(
        f"/api/v1/certificates/{own.json()['id']}/status",
        json=status,
        headers={"If-Match": own.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_an_import_with_a_row_outside_the_binding_is_refused_whole(
    service: Harness, bound: BoundClient, credit_code: Callable[[int], str], dry_run: str
) -> None:
    client = bound([TONGSHAN])
    rows = [
        payload(1, credit_code),
        payload(2, credit_code, county_code=XINYI),
        payload(3, credit_code),
        payload(4, credit_code, county_code=PIZHOU),
    ]
    response = await client.post(
        "/api/v1/certificates/import",
        content=_csv(rows),
        params={"dry_run": dry_run},
        headers={"Content-Type": "text/csv"},
    )
    problem = assert_refused_for_county(response)
    assert problem["lines"] == [3, 5]
    assert problem["line_count"] == 2
    listed = await service.client().get("/api/v1/certificates")
    assert listed.json()["items"] == []
    own = await client.post(
        "/api/v1/certificates/import",
        content=_csv([payload(1, credit_code), payload(3, credit_code)]),
        headers={"Content-Type": "text/csv"},
    )
    assert own.status_code == 201, own.text
    assert own.json()["stored"] == 2


async def test_lists_exports_and_stats_show_only_the_bound_counties(
    service: Harness, bound: BoundClient, new_certificate: NewCertificate
) -> None:
    for county in (TONGSHAN, XINYI, PIZHOU):
        await new_certificate(county_code=county, issued_on="2024-03-01")
    two = bound([TONGSHAN, XINYI], scopes=("certificates:read",))

    listed = (await two.get("/api/v1/certificates")).json()["items"]
    assert sorted(item["county_code"] for item in listed) == [TONGSHAN, XINYI]
    other = (await two.get("/api/v1/certificates", params={"county_code": PIZHOU})).json()
    assert other["items"] == []
    exported = (await two.get("/api/v1/certificates/export")).text.lstrip("\ufeff")
    counties = [row["county_code"] for row in csv.DictReader(io.StringIO(exported))]
    assert sorted(counties) == [TONGSHAN, XINYI]
    stats = (await two.get("/api/v1/certificates/stats", params={"year": 2024})).json()
    assert [row["county_code"] for row in stats["by_county"]] == [TONGSHAN, XINYI]
    assert stats["totals"]["in_force"] == 2

    city = bound([TONGSHAN], scopes=("certificates:read", CITY_WIDE_READ_SCOPE))
    assert len((await city.get("/api/v1/certificates")).json()["items"]) == 3
    city_stats = (await city.get("/api/v1/certificates/stats", params={"year": 2024})).json()
    assert city_stats["totals"]["in_force"] == 3
    unbound = await service.client().get("/api/v1/certificates/stats", params={"year": 2024})
    assert unbound.json()["totals"]["in_force"] == 3
