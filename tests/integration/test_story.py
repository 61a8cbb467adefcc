"""A year of the platform's work, end to end through the gateway's public API.

A client is created; brands, certificates and spot-checks are loaded (one brand file by CSV
import); a failing spot-check flags the listing in force of the same enterprise for review; the year's
targets and the provincial reference value are set; the standings are read; a run is created
and published (every county has its weighted figures, or publication is refused), after which
the target set changes only by a version that names the publication it supersedes.
"""

from __future__ import annotations

import secrets
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from kit.identifiers import credit_code_check_char

COUNTY_A, COUNTY_B = "320323", "320382"


def credit_code(county: str) -> str:
    """A valid unified social credit code, unique to this run."""
    body = "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    first17 = "91" + county + body + "0"
    return first17 + credit_code_check_char(first17)


@pytest.fixture(scope="module")
def story(writer: httpx.Client, year: int) -> dict[str, Any]:
    return {"year": year, "e1": credit_code(COUNTY_A), "e2": credit_code(COUNTY_B)}


def _brand(
    story: dict[str, Any], enterprise: str, county: str, product: str, month: int
) -> dict[str, Any]:
    return {
        "product_name": product,
        "brand_name": "淮海",
        "enterprise_credit_code": enterprise,
        "enterprise_name": f"徐州{product}有限公司",
        "county_code": county,
        "tier": "provincial_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": f"{story['year']}-{month:02d}-15",
        "international_standard": True,
        "standard_code": "ISO 9001",
        "batch_code": f"JS-{story['year']}-01",
    }


def test_1_unauthenticated_and_unscoped_calls_are_refused(
    gateway_url: str, admin: httpx.Client
) -> None:
    assert httpx.get(f"{gateway_url}/api/v1/brands").status_code == 401
    created = admin.post(
        "/api/v1/admin/clients",
        json={"name": f"reader-{secrets.token_hex(3)}", "scopes": ["brands:read"]},
    )
    assert created.status_code == 201
    key = created.json()["api_key"]
    headers = {"X-API-Key": key}
    assert httpx.get(f"{gateway_url}/api/v1/brands", headers=headers).status_code == 200
    assert httpx.get(f"{gateway_url}/api/v1/certificates", headers=headers).status_code == 403
    admin.post(f"/api/v1/admin/clients/{created.json()['id']}/revoke")
    assert httpx.get(f"{gateway_url}/api/v1/brands", headers=headers).status_code == 401


def test_2_brands_by_post_and_csv_import(writer: httpx.Client, story: dict[str, Any]) -> None:
    body = _brand(story, story["e1"], COUNTY_A, "電纜", 3)
    key = {"Idempotency-Key": f"brand-{story['e1']}"}
    first = writer.post("/api/v1/brands", json=body, headers=key)
    assert first.status_code == 201, first.text
    # The service stores the answer to replay just after sending it, so a retry sent at once
    # may still find the key in flight (409, as the contract allows) and tries again.
    deadline = time.monotonic() + 10
    again = writer.post("/api/v1/brands", json=body, headers=key)
    while again.status_code == 409 and time.monotonic() < deadline:
        time.sleep(0.2)
        again = writer.post("/api/v1/brands", json=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]

    current = {
        **body,
        "tier": "china_famous",
        "award_kind": "new",
        "awarded_on": (date.today() - timedelta(days=200)).isoformat(),
        "batch_code": "CN-CURRENT",
    }
    in_force = writer.post("/api/v1/brands", json=current)
    assert in_force.status_code == 201, in_force.text
    story["brand_id"] = in_force.json()["id"]

    columns = list(body)
    rows = [
        _brand(story, story["e2"], COUNTY_B, product, 5) for product in ("麵粉", "大蒜", "板材")
    ]
    lines = [",".join(columns)] + [
        ",".join(str(row[c]).lower() if isinstance(row[c], bool) else str(row[c]) for c in columns)
        for row in rows
    ]
    csv_body = ("\ufeff" + "\n".join(lines) + "\n").encode()
    dry = writer.post(
        "/api/v1/brands/import",
        params={"dry_run": "true"},
        content=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    assert dry.status_code == 200, dry.text
    imported = writer.post(
        "/api/v1/brands/import", content=csv_body, headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code in (200, 201), imported.text
    listed = writer.get("/api/v1/brands", params={"enterprise_credit_code": story["e2"]}).json()
    assert len(listed["items"]) == 3


def test_3_certificates(writer: httpx.Client, story: dict[str, Any]) -> None:
    response = writer.post(
        "/api/v1/certificates",
        json={
            "certificate_number": f"IT-{secrets.token_hex(4).upper()}",
            "standard": "ISO 9001:2015",
            "certification_body": "中國質量認證中心",
            "accreditation_body": "CNAS",
            "enterprise_credit_code": story["e1"],
            "enterprise_name": "徐州電纜有限公司",
            "county_code": COUNTY_A,
            "scope": "電線電纜的生產",
            "issued_on": f"{story['year']}-04-01",
        },
    )
    assert response.status_code == 201, response.text
    number = response.json()["certificate_number"]
    verified = writer.get(
        "/api/v1/certificates/verify", params={"number": number, "body": "中國質量認證中心"}
    )
    assert verified.status_code == 200, verified.text


def test_4_a_failed_spot_check_flags_the_brand(writer: httpx.Client, story: dict[str, Any]) -> None:
    base = {
        "plan_code": f"IT-{story['year']}-GJ",
        "level": "provincial",
        "product_name": "電纜",
        "county_code": COUNTY_A,
        "sampled_on": f"{story['year']}-06-01",
        "published_on": f"{story['year']}-07-01",
        "testing_lab": "江蘇省產品質量監督檢驗研究院",
    }
    failed = writer.post(
        "/api/v1/spot-checks",
        json={
            **base,
            "product_category": "electrical_materials",
            "enterprise_credit_code": story["e1"],
            "enterprise_name": "徐州電纜有限公司",
            "sample_code": f"S-{secrets.token_hex(4)}",
            "result": "fail",
            "nonconforming_items": [
                {"item": "導體電阻", "requirement": "≤ 1.83 Ω/km", "measured": "2.10 Ω/km"}
            ],
            "report_number": "R-1",
        },
    )
    assert failed.status_code == 201, failed.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        brand = writer.get(f"/api/v1/brands/{story['brand_id']}").json()
        if brand.get("review_required"):
            break
        time.sleep(0.5)
    assert brand.get("review_required") is True


def test_5_targets_reference_and_reported_values(
    writer: httpx.Client, story: dict[str, Any]
) -> None:
    year = story["year"]
    target_set = {
        "reason": "integration run",
        "indicators": [
            {
                "key": "new_provincial_famous_brands",
                "name": "新增江蘇名牌產品",
                "source": "brands",
                "measure": {"kind": "new_awards", "tier": "provincial_famous"},
                "comparator": "at_least",
                "target": 4,
                "weight": 50,
                "allocations": {COUNTY_A: {"target": 2}, COUNTY_B: {"target": 2}},
            },
            {
                "key": "spot_check_pass_rate",
                "name": "監督抽查合格率高于全省平均水平",
                "source": "spot_checks",
                "measure": {"kind": "pass_rate", "levels": ["national", "provincial"]},
                "comparator": "above_reference",
                "reference": "provincial_spot_check_pass_rate",
                "weight": 30,
            },
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
                "weight": 20,
                "veto": True,
            },
        ],
    }
    put = writer.put(f"/api/v1/target-sets/{year}", json=target_set)
    assert put.status_code in (200, 201), put.text
    reference_path = f"/api/v1/reference-values/{year}/provincial_spot_check_pass_rate"
    existing = writer.get(reference_path)
    reference = writer.put(
        reference_path,
        json={
            "value": 0.9,
            "source": "江蘇省質量技術監督局公告",
            "published_on": f"{year + 1}-01-20",
        },
        headers={"If-Match": existing.headers["ETag"]} if existing.status_code == 200 else {},
    )
    assert reference.status_code in (200, 201), reference.text
    reported = writer.post(
        "/api/v1/reported-values",
        json={
            "county_code": COUNTY_B,
            "year": year,
            "indicator": "major_quality_incidents",
            "value": 1,
            "reported_by": "邳州市質量技術監督局",
            "evidence": {"document": "徐質監〔2007〕12號", "text": "區域性食品安全事件一起"},
        },
    )
    accept(writer, reported)
    _every_other_county_has_its_weighted_figures(writer, story)


def accept(reviewer: httpx.Client, reported: httpx.Response) -> None:
    """A reported value counts once the city's reviewer accepts it."""
    assert reported.status_code == 201, reported.text
    accepted = reviewer.post(
        f"/api/v1/reported-values/{reported.json()['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": reported.headers["ETag"]},
    )
    assert accepted.status_code == 200, accepted.text


def _every_other_county_has_its_weighted_figures(
    writer: httpx.Client, story: dict[str, Any]
) -> None:
    """A county lacking a weighted figure is not assessed and blocks publication, so every
    other county gets one passing provincial spot-check and reports no incident."""
    year = story["year"]
    regions = writer.get("/api/v1/regions", params={"limit": 500})
    assert regions.status_code == 200, regions.text
    for region in regions.json()["items"]:
        county = region["code"]
        if county != COUNTY_A:
            checked = writer.post(
                "/api/v1/spot-checks",
                json={
                    "plan_code": f"IT-{year}-SJ",
                    "level": "provincial",
                    "product_name": "水泥",
                    "product_category": "building_materials",
                    "county_code": county,
                    "enterprise_credit_code": credit_code(county),
                    "enterprise_name": "徐州水泥有限公司",
                    "sample_code": f"S-{secrets.token_hex(4)}",
                    "sampled_on": f"{year}-05-01",
                    "published_on": f"{year}-06-01",
                    "testing_lab": "江蘇省產品質量監督檢驗研究院",
                    "result": "pass",
                    "report_number": f"R-{county}",
                },
            )
            assert checked.status_code == 201, checked.text
        if county != COUNTY_B:
            reported = writer.post(
                "/api/v1/reported-values",
                json={
                    "county_code": county,
                    "year": year,
                    "indicator": "major_quality_incidents",
                    "value": 0,
                    "reported_by": f"{region['name']}質量技術監督局",
                    "evidence": {"document": f"質監〔{year}〕1號", "text": "無重大質量事件"},
                },
            )
            accept(writer, reported)


def test_6_standings_and_a_published_run(writer: httpx.Client, story: dict[str, Any]) -> None:
    year = story["year"]
    standings = writer.get(f"/api/v1/assessments/{year}/standings")
    assert standings.status_code == 200, standings.text
    body = standings.json()
    completeness = body["meta"]["completeness"]
    assert {"brands", "spot_checks"} <= set(completeness)
    assert set(completeness.values()) == {"ok"}
    by_county = {item["county_code"]: item for item in body["items"]}
    county_b = by_county[COUNTY_B]
    assert county_b["outcome"] == "criticized"
    brands_b = next(
        i for i in county_b["indicators"] if i["indicator"] == "new_provincial_famous_brands"
    )
    assert brands_b["actual"] == 3
    assert brands_b["status"] == "met"
    county_a = by_county[COUNTY_A]
    pass_rate_a = next(
        i for i in county_a["indicators"] if i["indicator"] == "spot_check_pass_rate"
    )
    assert pass_rate_a["actual"] == 0
    assert pass_rate_a["status"] == "missed"

    run = writer.post(f"/api/v1/assessments/{year}/runs")
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    published = writer.post(
        f"/api/v1/assessments/{year}/runs/{run_id}/publish",
        headers={"If-Match": run.headers["ETag"]},
    )
    assert published.status_code == 200, published.text
    stored = writer.get(f"/api/v1/assessments/{year}/runs/{run_id}").json()
    assert stored["status"] == "published"

    read = writer.get(f"/api/v1/target-sets/{year}")
    current, if_match = read.json(), {"If-Match": read.headers["ETag"]}
    changed = writer.put(
        f"/api/v1/target-sets/{year}", json={**current, "reason": None}, headers=if_match
    )
    assert changed.status_code in (409, 422)
    plain = writer.put(
        f"/api/v1/target-sets/{year}",
        json={**current, "reason": "revised after publication"},
        headers=if_match,
    )
    assert plain.status_code == 409, plain.text
    versioned = writer.put(
        f"/api/v1/target-sets/{year}",
        json={**current, "reason": "revised after publication", "supersedes_published": True},
        headers=if_match,
    )
    assert versioned.status_code in (200, 201), versioned.text
    assert versioned.json()["version"] == current["version"] + 1
