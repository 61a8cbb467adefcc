"""Hostile callers: forged forwarding headers, guessed keys and secrets, and what the document
promises against what the server enforces. Each attacker speaks from a loopback address of its
own, so the throttling it earns falls on it and not on the rest of the run."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.integration.hostile.support import record


def _from(address: str, gateway_url: str, **kwargs: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=gateway_url, transport=transport, timeout=30, **kwargs)


def test_the_anonymous_limit_cannot_be_dodged_with_forwarded_addresses(gateway_url: str) -> None:
    with _from("127.0.0.71", gateway_url) as attacker:
        statuses = Counter(
            attacker.get(
                "/api/v1/certificates/verify",
                params={"number": "NOPE-1"},
                headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"},
            ).status_code
            for i in range(65)
        )
    record(f"65 anonymous verify calls with rotating X-Forwarded-For: {dict(statuses)}")
    assert statuses[429] >= 1


def test_guessed_api_keys_are_throttled_per_address(gateway_url: str, writer: httpx.Client) -> None:
    with _from("127.0.0.72", gateway_url) as attacker:
        answers = [
            attacker.get(
                "/api/v1/brands", headers={"X-API-Key": "qrp_" + secrets.token_urlsafe(24)}
            )
            for _ in range(400)
        ]
    statuses = Counter(answer.status_code for answer in answers)
    record(f"400 random API keys from one address: {dict(statuses)}")
    assert statuses[429] >= 300
    throttled = next(answer for answer in answers if answer.status_code == 429)
    assert int(throttled.headers["Retry-After"]) > 0
    assert throttled.headers["content-type"].startswith("application/problem+json")
    assert writer.get("/api/v1/brands", params={"limit": 1}).status_code == 200


def test_guessed_client_secrets_are_throttled_per_client(
    gateway_url: str, admin: httpx.Client
) -> None:
    created = admin.post(
        "/api/v1/admin/clients",
        json={"name": f"secret-target-{secrets.token_hex(3)}", "scopes": ["brands:read"]},
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["id"]
    statuses: Counter[int] = Counter()
    for i in range(200):
        # Each guess from another address: only the client id ties them together.
        with _from(f"127.0.{1 + i // 200}.{10 + i % 200}", gateway_url) as attacker:
            statuses[
                attacker.post(
                    "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": client_id,
                        "client_secret": secrets.token_urlsafe(16),
                    },
                ).status_code
            ] += 1
    record(f"200 guessed secrets for one client id from 200 addresses: {dict(statuses)}")
    assert statuses[429] >= 150
    admin.post(f"/api/v1/admin/clients/{client_id}/revoke")


@pytest.fixture(scope="module")
def document(gateway_url: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway_url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_the_document_states_the_shapes_the_server_enforces(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "pattern" in schemas["BrandCreate"]["properties"]["county_code"]
    assert "pattern" in schemas["BrandCreate"]["properties"]["enterprise_credit_code"]
    cursor = next(
        p for p in document["paths"]["/api/v1/brands"]["get"]["parameters"] if p["name"] == "cursor"
    )
    assert "pattern" in str(cursor["schema"])
    titles = Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [title for title, count in titles.items() if count > 1] == []


METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


def test_every_405_allows_what_the_document_lists(
    document: dict[str, Any], writer: httpx.Client
) -> None:
    checked = 0
    for template, operations in document["paths"].items():
        if not template.startswith("/api/v1/") or template.startswith("/api/v1/admin"):
            continue
        path = re.sub(r"\{[^}]+\}", "x", template)
        documented = {m.upper() for m in operations if m.upper() in METHODS}
        for method in METHODS:
            if method in documented:
                continue
            answer = writer.request(method, path)
            if answer.status_code != 405:
                continue
            checked += 1
            allowed = {m.strip() for m in answer.headers["allow"].split(",")} - {"HEAD", "OPTIONS"}
            assert allowed == documented, (method, template, answer.headers["allow"])
    record(f"405 answers whose Allow matched the document: {checked}")
    assert checked > 20
