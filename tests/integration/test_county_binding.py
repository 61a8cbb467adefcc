"""A client bound to its county, through the gateway with the real services: it writes only its
own county's records, on every route that writes one, and its lists show only its county."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import free_year_candidates, records_in
from tests.integration.records import brand, certificate, spot_check
from tests.integration.test_story import credit_code

OWN, OTHER = "320322", "320324"
WRITE_SCOPES = [
    "brands:read",
    "brands:write",
    "certificates:read",
    "certificates:write",
    "spot-checks:read",
    "spot-checks:write",
    "assessments:read",
    "assessments:write",
]


@pytest.fixture(scope="module")
def county(gateway_url: str, admin: httpx.Client) -> Iterator[httpx.Client]:
    """A client of 沛縣's office, bound to its county."""
    created = admin.post(
        "/api/v1/admin/clients",
        json={
            "name": f"peixian-{secrets.token_hex(3)}",
            "scopes": WRITE_SCOPES,
            "county_codes": [OWN],
            "rate_limit": "6000/minute",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["county_codes"] == [OWN]
    with httpx.Client(
        base_url=gateway_url, headers={"X-API-Key": created.json()["api_key"]}, timeout=60
    ) as client:
        yield client
    admin.post(f"/api/v1/admin/clients/{created.json()['id']}/revoke")


def test_a_bound_client_cannot_hold_the_review_scope(admin: httpx.Client) -> None:
    refused = admin.post(
        "/api/v1/admin/clients",
        json={"name": "bound-reviewer", "scopes": ["assessments:review"], "county_codes": [OWN]},
    )
    assert refused.status_code == 422, refused.text
    assert "scopes" in {error["field"] for error in refused.json()["errors"]}


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text[:500]
    assert answer.json()["field"] == "county_code"


def _csv(record: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(record))
    writer.writeheader()
    writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in record.items()})
    return buffer.getvalue().encode()


def _change(kind: str, **fields: str) -> dict[str, str]:
    """A PATCH body of the kind: a spot-check's correction gives its reason."""
    return {**fields, "reason": "更正"} if kind == "spot-checks" else fields


KINDS = {"brands": brand, "certificates": certificate, "spot-checks": spot_check}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_write_of_another_county_is_refused_naming_the_field(
    county: httpx.Client, writer: httpx.Client, kind: str
) -> None:
    make = KINDS[kind]
    other = make(credit_code(OTHER), county_code=OTHER)
    _refused(county.post(f"/api/v1/{kind}", json=other))
    for dry_run in ("true", "false"):
        _refused(
            county.post(
                f"/api/v1/{kind}/import",
                params={"dry_run": dry_run},
                content=_csv(other),
                headers={"Content-Type": "text/csv"},
            )
        )
    stored = writer.post(f"/api/v1/{kind}", json=other)
    assert stored.status_code == 201, stored.text
    item = f"/api/v1/{kind}/{stored.json()['id']}"
    etag = stored.headers["ETag"]
    # Another county's record: hidden from the bound client, and never changed by it.
    assert county.get(item).status_code == 404
    edited = county.patch(
        item, json=_change(kind, enterprise_name="改名"), headers={"If-Match": etag}
    )
    assert edited.status_code in (403, 404), edited.text
    if kind == "spot-checks":
        reinspection = county.post(
            "/api/v1/spot-checks",
            json=make(credit_code(OWN), county_code=OWN, reinspection_of=stored.json()["id"]),
        )
        assert reinspection.status_code in (403, 404), reinspection.text
    else:
        status = county.post(
            f"{item}/status",
            json={"status": "suspended", "reason": "試圖暫停"},
            headers={"If-Match": etag},
        )
        assert status.status_code in (403, 404), status.text
    assert writer.get(item).json()["enterprise_name"] == other["enterprise_name"]

    own = county.post(f"/api/v1/{kind}", json=make(credit_code(OWN), county_code=OWN))
    assert own.status_code == 201, own.text
    moved = county.patch(
        f"/api/v1/{kind}/{own.json()['id']}",
        json=_change(kind, county_code=OTHER),
        headers={"If-Match": own.headers["ETag"]},
    )
    _refused(moved)

    listed = county.get(f"/api/v1/{kind}", params={"limit": 500}).json()["items"]
    assert listed
    assert {row["county_code"] for row in listed} == {OWN}
    exported = county.get(f"/api/v1/{kind}/export")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {row["county_code"] for row in rows} == {OWN}


@pytest.fixture(scope="module")
def reporting_year(writer: httpx.Client, year: int) -> int:
    """Another year free of records, given a target set asking every county for its incidents."""
    chosen = next(
        y for y in free_year_candidates(excluding=year) if not any(records_in(writer, y).values())
    )
    target_set = {
        "reason": "county binding",
        "indicators": [
            {
                "key": "major_quality_incidents",
                "name": "不發生重大質量事件",
                "source": "reported",
                "measure": {
                    "kind": "reported_value",
                    "key": "major_quality_incidents",
                    "unit": "count",
                },
                "comparator": "zero",
                "weight": 100,
                "veto": True,
            }
        ],
    }
    put = writer.put(f"/api/v1/target-sets/{chosen}", json=target_set)
    assert put.status_code == 201, put.text
    return chosen


def test_a_bound_county_reports_only_its_own_figures(
    county: httpx.Client, writer: httpx.Client, reporting_year: int
) -> None:
    year = reporting_year
    value = {
        "year": year,
        "indicator": "major_quality_incidents",
        "value": 0,
        "reported_by": "質量技術監督局",
        "evidence": {"document": "質監〔1〕號", "text": "無重大質量事件"},
    }
    _refused(county.post("/api/v1/reported-values", json={**value, "county_code": OTHER}))
    others = writer.post("/api/v1/reported-values", json={**value, "county_code": OTHER})
    assert others.status_code == 201, others.text
    evidence = county.post(
        f"/api/v1/reported-values/{others.json()['id']}/evidence",
        files={"file": ("a.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
    )
    assert evidence.status_code in (403, 404), evidence.text
    own = county.post("/api/v1/reported-values", json={**value, "county_code": OWN})
    assert own.status_code == 201, own.text
    assert own.json()["state"] == "submitted"
    review = county.post(
        f"/api/v1/reported-values/{own.json()['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": own.headers["ETag"]},
    )
    assert review.status_code == 403, review.text
    listed = county.get("/api/v1/reported-values", params={"year": year}).json()["items"]
    assert {row["county_code"] for row in listed} == {OWN}
    worklist = county.get(f"/api/v1/assessments/{year}/worklist")
    assert worklist.status_code == 200, worklist.text
    assert worklist.json()["county_code"] == OWN
    assert [item["state"] for item in worklist.json()["items"]] == ["submitted"]
