"""The black-box suite talks to one gateway URL with an admin key, nothing else.

`GATEWAY_URL` and `QRP_ADMIN_KEY` name the deployment (`make integration` starts a local one).
The deployment may be empty or hold data (the demo city, earlier runs): the story uses its own
enterprises and a year it has proven empty, so every count it checks is its own.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

ALL_SCOPES = [
    "brands:read",
    "brands:write",
    "certificates:read",
    "certificates:write",
    "spot-checks:read",
    "spot-checks:write",
    "assessments:read",
    "assessments:write",
    "assessments:publish",
    "assessments:review",
    "events:read",
    "enterprises:read",
]


@pytest.fixture(scope="session")
def gateway_url() -> str:
    url = os.environ.get("GATEWAY_URL")
    if not url:
        pytest.skip("GATEWAY_URL is not set; run `make integration`")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def admin(gateway_url: str) -> Iterator[httpx.Client]:
    key = os.environ.get("QRP_ADMIN_KEY") or os.environ.get("GATEWAY_BOOTSTRAP_ADMIN_KEY", "")
    with httpx.Client(base_url=gateway_url, headers={"X-API-Key": key}, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def writer(gateway_url: str, admin: httpx.Client) -> Iterator[httpx.Client]:
    """A client created for this run with every data scope (and not `admin`)."""
    name = f"integration-{secrets.token_hex(4)}"
    created = admin.post(
        "/api/v1/admin/clients",
        json={"name": name, "scopes": ALL_SCOPES, "rate_limit": "6000/minute"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    with httpx.Client(
        base_url=gateway_url, headers={"X-API-Key": body["api_key"]}, timeout=60
    ) as client:
        yield client
    admin.post(f"/api/v1/admin/clients/{body['id']}/revoke")


FIRST_YEAR = 1990
"""The earliest year every filter of the API accepts."""

DEMO_YEARS = range(1999, 2009)
"""The years the demo city (`make demo`, compose-test's demo phase) fills, 2007 and its history.

The suite may run on an empty deployment that gets the demo afterwards; a year it writes into
must leave the demo's own target set and counts to the demo."""


def free_year_candidates(*, excluding: int | None = None) -> list[int]:
    """Past years the suite may claim, in random order, never one of the demo's."""
    # The story publishes its reference value in January of the next year, so that must be past.
    years = [
        y
        for y in range(FIRST_YEAR, date.today().year - 1)
        if y not in DEMO_YEARS and y != excluding
    ]
    random.shuffle(years)
    return years


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    items: list[dict[str, Any]] = body.get("items", []) if isinstance(body, dict) else body
    return items


def records_in(client: httpx.Client, year: int) -> dict[str, int]:
    """What the deployment already holds for `year`, by kind (lists count their first page)."""
    brands = client.get("/api/v1/brands/stats", params={"year": year})
    spot_checks = client.get(
        "/api/v1/spot-checks/stats",
        params={"year": year, "levels": "national,provincial,city", "include_unpublished": True},
    )
    certificates = client.get("/api/v1/certificates/stats", params={"year": year})
    for response in (brands, spot_checks, certificates):
        assert response.status_code == 200, response.text
    target_set = client.get(f"/api/v1/target-sets/{year}")
    assert target_set.status_code in (200, 404), target_set.text
    return {
        "target sets": int(target_set.status_code == 200),
        "new brand awards": brands.json()["totals"]["new_awards"],
        "spot-checks": spot_checks.json()["totals"]["checked"],
        "newly certified enterprises": certificates.json()["totals"]["new_certified_enterprises"],
        "reported values": len(
            _items(client.get("/api/v1/reported-values", params={"year": year}))
        ),
        "reference values": len(
            _items(client.get("/api/v1/reference-values", params={"year": year}))
        ),
        "runs": len(_items(client.get(f"/api/v1/assessments/{year}/runs"))),
    }


@pytest.fixture(scope="session")
def year(writer: httpx.Client) -> int:
    """A past year that holds nothing yet, proven empty, so the story's counts are its own.

    The deployment may be empty, hold the demo city or earlier runs' records: a candidate
    counts as empty only when it has no target set and the data services' stats and the
    assessment's lists show nothing for it.
    """
    for candidate in free_year_candidates():
        if not any(records_in(writer, candidate).values()):
            return candidate
    pytest.fail(
        f"no year from {FIRST_YEAR} to {date.today().year - 2} outside the demo's is free of "
        "records in this deployment; the story needs one it can count alone"
    )
