"""The change feed and the enterprise view through the gateway: a reader that keeps its cursor
sees each change once, and the enterprise's records read back as one view."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.integration.records import COUNTY, brand, certificate, spot_check
from tests.integration.test_story import credit_code

PAGE = 1000
FAILED = [{"item": "導體電阻", "requirement": "≤ 1.83 Ω/km", "measured": "2.10 Ω/km"}]


def _drain(client: httpx.Client, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Every event after `cursor`, page by page, and the cursor after the last one."""
    events: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["after"] = cursor
        page = client.get("/api/v1/events", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body["meta"]["completeness"].values()) == {"ok"}, body["meta"]
        events.extend(body["items"])
        cursor = body["next"]
        if len(body["items"]) < PAGE:
            return events, cursor


def test_a_reader_keeping_its_cursor_sees_each_change_once(writer: httpx.Client) -> None:
    _, cursor = _drain(writer, None)
    enterprise = credit_code(COUNTY)
    made = {
        "brand.created": writer.post("/api/v1/brands", json=brand(enterprise)),
        "certificate.created": writer.post("/api/v1/certificates", json=certificate(enterprise)),
        "spot_check.published": writer.post("/api/v1/spot-checks", json=spot_check(enterprise)),
    }
    for kind, response in made.items():
        assert response.status_code == 201, (kind, response.text)
    subjects = {
        "brand.created": f"brands/{made['brand.created'].json()['id']}",
        "certificate.created": f"certificates/{made['certificate.created'].json()['id']}",
        "spot_check.published": f"spot-checks/{made['spot_check.published'].json()['id']}",
    }

    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events, cursor = _drain(writer, cursor)
        seen.extend(e for e in events if e["subject"] in subjects.values())
        if {e["type"] for e in seen} >= set(subjects):
            break
        time.sleep(0.5)

    ours = [(e["type"], e["subject"]) for e in seen if e["type"] in subjects]
    assert sorted(ours) == sorted(subjects.items())
    assert len({e["id"] for e in seen}) == len(seen)
    for event in seen:
        assert event["specversion"] == "1.0"
        assert event["countycode"] == COUNTY
        assert event["data"]["item"]["enterprise_credit_code"] == enterprise
    again, _ = _drain(writer, cursor)
    assert not [e for e in again if e["subject"] in subjects.values()]


def test_the_feed_needs_its_scope(gateway_url: str, admin: httpx.Client) -> None:
    created = admin.post(
        "/api/v1/admin/clients",
        json={"name": "feed-less", "scopes": ["brands:read"], "rate_limit": "600/minute"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    try:
        with httpx.Client(
            base_url=gateway_url, headers={"X-API-Key": body["api_key"]}, timeout=30
        ) as reader:
            refused = reader.get("/api/v1/events")
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        admin.post(f"/api/v1/admin/clients/{body['id']}/revoke")


def test_one_view_of_an_enterprise(writer: httpx.Client) -> None:
    enterprise = credit_code(COUNTY)
    for path, body in (
        ("/api/v1/brands", brand(enterprise)),
        ("/api/v1/certificates", certificate(enterprise)),
        ("/api/v1/spot-checks", spot_check(enterprise, result="fail", nonconforming_items=FAILED)),
    ):
        stored = writer.post(path, json=body)
        assert stored.status_code == 201, stored.text

    view = writer.get(f"/api/v1/enterprises/{enterprise}")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["credit_code"] == enterprise
    assert body["county_codes"] == [COUNTY]
    assert body["brands"]["count"] == 1
    assert body["certificates"]["count"] == 1
    assert body["spot_checks"]["count"] == 1
    assert body["spot_checks"]["failed"] == 1
    assert body["meta"]["complete"] is True, body["meta"]

    found = writer.get("/api/v1/enterprises", params={"q": enterprise[:12]})
    assert found.status_code == 200, found.text
    assert enterprise in {item["credit_code"] for item in found.json()["items"]}

    unknown = writer.get(f"/api/v1/enterprises/{credit_code(COUNTY)}")
    assert unknown.status_code == 404, unknown.text
    invalid = writer.get("/api/v1/enterprises/91320323X")
    assert invalid.status_code == 422, invalid.text
    assert "credit_code" in invalid.text
