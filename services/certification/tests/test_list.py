"""Listing certificates: every filter, text search and cursor pagination."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
FUTURE = "2035-12-31"


@pytest.fixture
async def catalogue(
    new_certificate: NewCertificate, credit_code: Callable[[int], str]
) -> dict[str, dict[str, Any]]:
    return {
        "quality": await new_certificate(
            certificate_number="Q-1",
            county_code="320323",
            issued_on="2019-05-01",
            expires_on=FUTURE,
            enterprise_name="徐州重型機械有限公司",
            enterprise_credit_code=credit_code(500),
        ),
        "environment": await new_certificate(
            certificate_number="E-1",
            standard="GB/T 24001-2016",
            county_code="320302",
            issued_on="2021-07-15",
            expires_on=FUTURE,
            certification_body="方圓標志認證集團",
            scope="輪胎_生產 100%",
        ),
        "food": await new_certificate(
            certificate_number="F-1",
            standard="HACCP",
            county_code="320321",
            issued_on="2022-01-01",
        ),
    }


async def _numbers(service: Harness, **params: Any) -> list[str]:
    response = await service.client().get("/api/v1/certificates", params=params)
    assert response.status_code == 200, response.text
    return sorted(item["certificate_number"] for item in response.json()["items"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["E-1", "F-1", "Q-1"]),
        ({"county_code": "320323"}, ["Q-1"]),
        ({"standard": "HACCP"}, ["F-1"]),
        ({"family": "environment"}, ["E-1"]),
        ({"family": "food_safety", "standard": "ISO 9001:2015"}, []),
        ({"certification_body": "方圓標志認證集團"}, ["E-1"]),
        ({"issued_from": "2021-01-01"}, ["E-1", "F-1"]),
        ({"issued_to": "2021-07-15"}, ["E-1", "Q-1"]),
        ({"issued_from": "2020-01-01", "issued_to": "2021-12-31"}, ["E-1"]),
        ({"status": "valid"}, ["E-1", "Q-1"]),
        ({"status": "expired"}, ["F-1"]),
        ({"status": "valid", "as_of": "2020-01-01"}, ["Q-1"]),
        ({"q": "重型"}, ["Q-1"]),
        ({"q": "_生產 100%"}, ["E-1"]),
        ({"q": "q-1"}, ["Q-1"]),
        ({"q": "%"}, ["E-1"]),
    ],
)
async def test_filters(
    service: Harness,
    catalogue: dict[str, dict[str, Any]],
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert await _numbers(service, **params) == expected


async def test_filter_by_credit_code(
    service: Harness, catalogue: dict[str, dict[str, Any]], credit_code: Callable[[int], str]
) -> None:
    assert await _numbers(service, enterprise_credit_code=credit_code(500)) == ["Q-1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"county_code": "999999"}, "county_code"),
        ({"standard": "ISO 0"}, "standard"),
        ({"family": "energy"}, "family"),
        ({"status": "revoked"}, "status"),
        ({"issued_from": "2022-01-01", "issued_to": "2021-01-01"}, "issued_to"),
        ({"enterprise_credit_code": "123"}, "enterprise_credit_code"),
        ({"limit": "501"}, "limit"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    service: Harness, params: dict[str, str], field: str
) -> None:
    response = await service.client().get("/api/v1/certificates", params=params)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]


async def test_cursor_pagination_walks_every_item_once(
    service: Harness, new_certificate: NewCertificate
) -> None:
    created = [(await new_certificate(county_code="320382"))["id"] for _ in range(7)]
    client = service.client()
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3, "county_code": "320382"}
    while True:
        page = (await client.get("/api/v1/certificates", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == created
    tampered = params["cursor"][:-2] + ("AA" if not params["cursor"].endswith("AA") else "BB")
    response = await client.get("/api/v1/certificates", params={**params, "cursor": tampered})
    assert response.status_code == 400
    other_query = await client.get(
        "/api/v1/certificates", params={"limit": 3, "cursor": params["cursor"]}
    )
    assert other_query.status_code == 400


async def test_standards_catalogue_is_published(service: Harness) -> None:
    response = await service.client(scopes=[]).get("/api/v1/certificates/standards")
    body = response.json()
    assert body["counted_families"] == ["environment", "quality"]
    families = {s["code"]: s["family"] for s in body["standards"]}
    assert families["ISO 45001:2018"] == "occupational_health_safety"
    assert families["GB/T 19001-2016"] == "quality"
