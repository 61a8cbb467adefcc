"""Builders shared by the brand_registry tests."""

from __future__ import annotations

from typing import Any

import httpx

from kit.identifiers import credit_code_check_char

TONGSHAN = "320323"
PIZHOU = "320382"


def credit_code(number: int) -> str:
    """A valid unified social credit code, distinct per `number`."""
    first17 = f"91320303{number:09d}"
    return first17 + credit_code_check_char(first17)


def listing(**overrides: Any) -> dict[str, Any]:
    """A valid listing payload; `overrides` replace fields."""
    payload: dict[str, Any] = {
        "product_name": "維維豆奶粉",
        "brand_name": "維維",
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "維維集團股份有限公司",
        "county_code": TONGSHAN,
        "tier": "china_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": "2024-09-01",
        # Far enough ahead that "active today" holds whenever the suite runs.
        "valid_until": "2035-12-31",
        "international_standard": False,
    }
    payload.update(overrides)
    return payload


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Register a listing and return its body, failing loudly otherwise."""
    response = await client.post("/api/v1/brands", json=listing(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_status(
    client: httpx.AsyncClient, brand_id: str, status: str, **extra: Any
) -> httpx.Response:
    """Change a listing's status with its current ETag."""
    etag = (await client.get(f"/api/v1/brands/{brand_id}")).headers["ETag"]
    body = {"status": status, "reason": extra.pop("reason", "test"), **extra}
    return await client.post(
        f"/api/v1/brands/{brand_id}/status", json=body, headers={"If-Match": etag}
    )


async def count(client: httpx.AsyncClient, **params: Any) -> int:
    response = await client.get("/api/v1/brands", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])
