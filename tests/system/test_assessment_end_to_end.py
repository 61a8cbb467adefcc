"""The assessment service against the real brand registry, certification and inspection
services, each a uvicorn process on its own migrated SQLite database.

Hand-built data for 2007 (reference: provincial pass rate 0.75):

| county        | brands (in force at year end)                       | certificates             | spot-checks (nat.+prov.) | reported             |
|---------------|-----------------------------------------------------|--------------------------|--------------------------|----------------------|
| 銅山縣 320323 | china_famous new 2007, intl; city_famous 2006        | 2 firms first ISO 9001 in 2007 | 4 of 4 pass (+1 city-level fail, not counted) | coverage 0.96, incidents 0 |
| 邳州市 320382 | china_famous renewal 2007 of a 2004 award, not intl  | 1 firm, first in 2006    | 3 of 4 pass              | coverage 0.95, incidents 1 |
| 鼓樓區 320302 | two city_famous 2007, both intl                      | none                     | 1 of 2 pass              | coverage 0.76, incidents 0 |
| 8 others      | none                                                 | none                     | none                     | none                 |

Target set: new china_famous ≥ 2 (Tongshan 1, Pizhou 1; weight 20); international share ≥ 0.5
(10); new certified enterprises ≥ 3 (Tongshan 2, Pizhou 1; 20); pass rate above the reference
(30); industrial coverage ≥ 0.95 (10); incidents zero, veto (10).

By hand (attainment: below a floor actual/target, above a ceiling ceiling/actual):
- 銅山縣: every indicator met: 1·20 + 1·10 + 1·20 + 1·30 + 1·10 + 1·10 = 100 → 100.00, 優秀,
  rank 1, commended.
- 鼓樓區: assessed on share, pass rate, coverage, incidents (weights 60):
  share 2/2 = 1 → 10; pass rate 0.5 vs (0.75, ∞) → 0.5/0.75 = 0.666667 → 20.00;
  coverage 0.76/0.95 = 0.8 → 8; incidents 0 → 10. 48/60 → 80.00, 良好, rank 2, none.
- 邳州市: new brands 0/1 → 0; share 0/1 = 0 → 0; new enterprises 0/1 → 0;
  pass rate 3/4 = 0.75 = reference: missed (strictly above needed) but attainment 1 → 30;
  coverage 0.95 met → 10; incidents 1 → missed, 0. 40/100 → 40.00, 不合格, rank 3,
  criticized (the incident vetoes in any case).
- the 8 others: assessed on share, pass rate, coverage, incidents, all no_data (no listings,
  no samples, nothing reported) → 0.00, 不合格, rank 4 (shared), criticized.
- city: new brands 1 of 2 → 0.5·20 = 10; share 3/5 = 0.6 → 10; new enterprises 2 of 3 →
  0.666667·20 = 13.33; pass rate 8/10 = 0.8 > 0.75 → 30; coverage mean 0.89 → 0.936842·10 =
  9.37; incidents 1 → 0. Total 72.70 → 合格.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.identifiers import credit_code_check_char
from tests.system.assessment_processes import Stack, start_stack

TONGSHAN, PIZHOU, GULOU = "320323", "320382", "320302"
DEADLINE = 2.0
STANDINGS = "/api/v1/assessments/2007/standings"


def credit_code(county: str, number: int) -> str:
    first17 = f"91{county}{number:09d}"
    return first17 + credit_code_check_char(first17)


def target_set() -> dict[str, Any]:
    def indicator(key: str, source: str, measure: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {"key": key, "name": key, "source": source, "measure": measure, **rest}

    return {
        "indicators": [
            indicator(
                "new_china_famous_brands",
                "brands",
                {"kind": "new_awards", "tier": "china_famous"},
                comparator="at_least",
                target=2,
                weight=20,
                allocations={TONGSHAN: {"target": 1}, PIZHOU: {"target": 1}},
            ),
            indicator(
                "international_standard_share",
                "brands",
                {"kind": "international_share"},
                comparator="at_least",
                target=0.5,
                weight=10,
            ),
            indicator(
                "new_certified_enterprises",
                "certificates",
                {"kind": "new_certified_enterprises"},
                comparator="at_least",
                target=3,
                weight=20,
                allocations={TONGSHAN: {"target": 2}, PIZHOU: {"target": 1}},
            ),
            indicator(
                "spot_check_pass_rate",
                "spot_checks",
                {"kind": "pass_rate", "levels": ["national", "provincial"]},
                comparator="above_reference",
                reference="provincial_spot_check_pass_rate",
                weight=30,
            ),
            indicator(
                "industrial_standard_coverage",
                "reported",
                {"kind": "reported_value", "unit": "rate"},
                comparator="at_least",
                target=0.95,
                weight=10,
            ),
            indicator(
                "major_quality_incidents",
                "reported",
                {"kind": "reported_value", "unit": "count"},
                comparator="zero",
                weight=10,
                veto=True,
            ),
        ]
    }


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def load_brands(client: httpx.Client) -> None:
    rows = [
        (TONGSHAN, 1, "china_famous", "new", "2007-05-10", True),
        (TONGSHAN, 2, "city_famous", "new", "2006-03-01", False),
        (PIZHOU, 3, "china_famous", "new", "2004-04-01", False),
        (PIZHOU, 3, "china_famous", "renewal", "2007-04-01", False),
        (GULOU, 4, "city_famous", "new", "2007-02-01", True),
        (GULOU, 5, "city_famous", "new", "2007-03-01", True),
    ]
    for county, number, tier, kind, awarded_on, international in rows:
        _created(
            client.post(
                "/api/v1/brands",
                json={
                    "product_name": f"產品{number}",
                    "brand_name": f"品牌{number}",
                    "enterprise_credit_code": credit_code(county, number),
                    "enterprise_name": f"企業{number}",
                    "county_code": county,
                    "tier": tier,
                    "sector": "industry",
                    "award_kind": kind,
                    "awarded_on": awarded_on,
                    "international_standard": international,
                    "standard_code": "IEC 60335-1" if international else None,
                },
            )
        )


def load_certificates(client: httpx.Client) -> None:
    rows = [(TONGSHAN, 11, "2007-03-01"), (TONGSHAN, 12, "2007-09-15"), (PIZHOU, 13, "2006-06-01")]
    for county, number, issued_on in rows:
        _created(
            client.post(
                "/api/v1/certificates",
                json={
                    "certificate_number": f"00107Q{number:05d}",
                    "standard": "ISO 9001:2000",
                    "certification_body": "中國質量認證中心",
                    "enterprise_credit_code": credit_code(county, number),
                    "enterprise_name": f"企業{number}",
                    "county_code": county,
                    "scope": "電器產品的設計和生產",
                    "issued_on": issued_on,
                },
            )
        )


def load_spot_checks(client: httpx.Client) -> None:
    rows = [
        *[(TONGSHAN, "national", "pass") for _ in range(2)],
        *[(TONGSHAN, "provincial", "pass") for _ in range(2)],
        (TONGSHAN, "city", "fail"),
        *[(PIZHOU, "provincial", "pass") for _ in range(3)],
        (PIZHOU, "national", "fail"),
        (GULOU, "provincial", "pass"),
        (GULOU, "provincial", "fail"),
    ]
    for index, (county, level, result) in enumerate(rows):
        failed = result == "fail"
        _created(
            client.post(
                "/api/v1/spot-checks",
                json={
                    "plan_code": f"2007-{level[:2].upper()}-01",
                    "level": level,
                    "product_category": "food",
                    "product_name": "醬油",
                    "enterprise_credit_code": credit_code(county, 100 + index),
                    "enterprise_name": f"食品廠{index}",
                    "county_code": county,
                    "sample_code": f"S2007{index:04d}",
                    "sampled_on": "2007-06-10",
                    "published_on": "2007-07-01",
                    "result": result,
                    "nonconforming_items": [
                        {"item": "氨基酸態氮", "requirement": "≥0.4 g/100mL", "measured": "0.3"}
                    ]
                    if failed
                    else [],
                },
            )
        )


def load_assessment(client: httpx.Client) -> None:
    assert client.put("/api/v1/target-sets/2007", json=target_set()).status_code == 201
    reference = {"value": 0.75, "source": "江蘇省質監局抽查通報", "published_on": "2008-01-15"}
    path = "/api/v1/reference-values/2007/provincial_spot_check_pass_rate"
    assert client.put(path, json=reference).status_code == 201
    for county, coverage, incidents in [
        (TONGSHAN, 0.96, 0),
        (PIZHOU, 0.95, 1),
        (GULOU, 0.76, 0),
    ]:
        for indicator, value in [
            ("industrial_standard_coverage", coverage),
            ("major_quality_incidents", incidents),
        ]:
            _created(
                client.post(
                    "/api/v1/reported-values",
                    json={
                        "county_code": county,
                        "year": 2007,
                        "indicator": indicator,
                        "value": value,
                        "evidence": {"document": f"{county}-2007.pdf", "text": "年度報告"},
                        "reported_by": f"{county} 質監局",
                    },
                )
            )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("assessment-system")
    running = start_stack(tmp, deadline_seconds=DEADLINE, timeout_seconds=1.0)
    try:
        with running.client("brand_registry") as client:
            load_brands(client)
        with running.client("certification") as client:
            load_certificates(client)
        with running.client("inspection") as client:
            load_spot_checks(client)
        with running.client("assessment") as client:
            load_assessment(client)
        yield running
    finally:
        running.stop()


def _indicators(standing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["indicator"]: i for i in standing["indicators"]}


EXPECTED_INDICATORS = {
    TONGSHAN: {
        "new_china_famous_brands": (1.0, "met", 1.0),
        "international_standard_share": (0.5, "met", 1.0),
        "new_certified_enterprises": (2.0, "met", 1.0),
        "spot_check_pass_rate": (1.0, "met", 1.0),
        "industrial_standard_coverage": (0.96, "met", 1.0),
        "major_quality_incidents": (0.0, "met", 1.0),
    },
    PIZHOU: {
        "new_china_famous_brands": (0.0, "missed", 0.0),
        "international_standard_share": (0.0, "missed", 0.0),
        "new_certified_enterprises": (0.0, "missed", 0.0),
        "spot_check_pass_rate": (0.75, "missed", 1.0),
        "industrial_standard_coverage": (0.95, "met", 1.0),
        "major_quality_incidents": (1.0, "missed", 0.0),
    },
    GULOU: {
        "international_standard_share": (1.0, "met", 1.0),
        "spot_check_pass_rate": (0.5, "missed", 0.666667),
        "industrial_standard_coverage": (0.76, "missed", 0.8),
        "major_quality_incidents": (0.0, "met", 1.0),
    },
}
EXPECTED_STANDINGS = {
    TONGSHAN: (100.0, 1, "優秀", "commended"),
    GULOU: (80.0, 2, "良好", "none"),
    PIZHOU: (40.0, 3, "不合格", "criticized"),
}


def test_every_county_matches_the_hand_computation(stack: Stack) -> None:
    with stack.client("assessment") as client:
        response = client.get(STANDINGS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["completeness"] == {
        "brands": "ok",
        "certificates": "ok",
        "spot_checks": "ok",
        "reference_values": "ok",
    }
    standings = {s["county_code"]: s for s in body["items"]}
    assert len(standings) == 11
    for county, expected in EXPECTED_INDICATORS.items():
        got = {
            key: (row["actual"], row["status"], row["attainment"])
            for key, row in _indicators(standings[county]).items()
        }
        assert got == expected, county
    for county, (score, rank, grade, outcome) in EXPECTED_STANDINGS.items():
        standing = standings[county]
        assert (
            standing["score"],
            standing["rank"],
            standing["grade_label"],
            standing["outcome"],
        ) == (
            score,
            rank,
            grade,
            outcome,
        ), county
    others = [s for code, s in standings.items() if code not in EXPECTED_STANDINGS]
    assert len(others) == 8
    for standing in others:
        assert (standing["score"], standing["rank"], standing["outcome"]) == (0.0, 4, "criticized")
        assert {r["status"] for r in standing["indicators"]} == {"no_data"}
        assert set(_indicators(standing)) == {
            "international_standard_share",
            "spot_check_pass_rate",
            "industrial_standard_coverage",
            "major_quality_incidents",
        }
    city = body["city"]
    city_rows = _indicators(city)
    assert city_rows["new_china_famous_brands"]["actual"] == 1.0
    assert city_rows["international_standard_share"]["actual"] == 0.6
    assert city_rows["new_certified_enterprises"]["actual"] == 2.0
    assert city_rows["spot_check_pass_rate"]["actual"] == 0.8
    assert (city["score"], city["grade_label"]) == (72.70, "合格")


def test_a_complete_run_is_published_and_explained(stack: Stack) -> None:
    with stack.client("assessment") as client:
        created = client.post("/api/v1/assessments/2007/runs", json={})
        run = _created(created)
        assert run["complete"] is True
        published = client.post(
            f"/api/v1/assessments/2007/runs/{run['id']}/publish",
            headers={"If-Match": created.headers["ETag"]},
        )
        assert published.status_code == 200, published.text
        detail = client.get(f"{STANDINGS}/{GULOU}").json()
    spot = _indicators(detail)["spot_check_pass_rate"]
    assert spot["explanation"]["inputs"] == {"checked": 2, "passed": 1}
    assert spot["provenance"]["service"] == "inspection"
    assert spot["explanation"]["comparator"]["band"] == "(0.75, ∞)"


def test_a_stopped_service_gives_a_bounded_partial_answer(stack: Stack) -> None:
    inspection = stack.processes["inspection"]
    with stack.client("assessment") as client:
        inspection.pause()
        try:
            started = time.monotonic()
            hung = client.get(STANDINGS)
            elapsed = time.monotonic() - started
        finally:
            inspection.resume()
        assert hung.status_code == 200
        assert elapsed < DEADLINE + 1.0, f"answered after {elapsed:.2f} s"
        completeness = hung.json()["meta"]["completeness"]
        assert completeness["spot_checks"].startswith("timeout")
        assert completeness["brands"] == completeness["certificates"] == "ok"

        inspection.stop()
        started = time.monotonic()
        down = client.get(STANDINGS).json()
        assert time.monotonic() - started < DEADLINE + 1.0
        assert down["meta"]["completeness"]["spot_checks"].startswith("unreachable")
        tongshan = _indicators(next(s for s in down["items"] if s["county_code"] == TONGSHAN))
        assert tongshan["spot_check_pass_rate"]["status"] == "no_data"
        assert tongshan["new_china_famous_brands"]["status"] == "met"

        created = client.post("/api/v1/assessments/2007/runs", json={})
        run = _created(created)
        assert run["complete"] is False
        refused = client.post(
            f"/api/v1/assessments/2007/runs/{run['id']}/publish",
            headers={"If-Match": created.headers["ETag"]},
        )
        assert refused.status_code == 409
        assert "spot_checks" in refused.json()["detail"]
