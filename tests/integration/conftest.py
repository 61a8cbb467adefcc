"""The black-box suite talks to one gateway URL with an admin key, nothing else.

`GATEWAY_URL` and `QRP_ADMIN_KEY` name the deployment (`make integration` starts a local one).
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def year(writer: httpx.Client) -> int:
    """A past year no target set uses yet, so the run can share a deployment."""
    listed = writer.get("/api/v1/target-sets")
    assert listed.status_code == 200, listed.text
    items = listed.json()
    items = items.get("items", items) if isinstance(items, dict) else items
    taken = {entry["year"] for entry in items}
    free = [y for y in range(1990, 2006) if y not in taken]
    if not free:
        pytest.skip("every candidate year already has a target set in this deployment")
    return random.choice(free)
