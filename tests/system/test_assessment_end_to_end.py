"""The assessment service against the real brand registry, certification and inspection
services, each a uvicorn process on its own migrated SQLite database.

Target set for 2007 (all or nothing, unless an indicator says otherwise):
- `new_provincial_famous_brands`: about 3 ± 25 %, over: met (exceeding "about" is no
  failure), allocated 銅山縣 2 and 邳州市 1, weight 30, awarded in one batch on 8 December;
- `spot_check_pass_rate` (national + provincial) above the reference 0.75, weight 40;
- `industrial_standard_coverage` at least 0.95, scored stepped (0.5 of the weight while the
  attainment is at least the amber 0.75), reported with numerator and denominator, weight 30;
- `major_quality_incidents` zero, the veto, weight 0: reported incidents plus the inspection
  service's findings (mandatory-standard violations, refusals, referrals for unlicensed
  production).

Data (spot-checks sampled 2007-06-10, published 2007-07-01):

| county | provincial famous, new 2007 | national + provincial checks | coverage reported | incidents |
|---|---|---|---|---|
| 銅山縣 320323 | 3 (allocated 2) | 4 of 4 pass (+1 city-level fail, not counted) | 192 / 200 | 0 |
| 邳州市 320382 | 1 (allocated 1) | 3 of 4 pass | 95 / 100 | 0 |
| 鼓樓區 320302 | none (not allocated) | 4 of 5 pass; the failure violates a mandatory standard | 57 / 60 | 0 |
| the 8 others | none (not allocated) | 1 of 1 pass | 90 / 100, but 新沂市 320381 reports only later | 0 |

By hand, as of 31 December (the band of an allocation a is [0.75 a, 1.25 a]):
- 銅山縣: 3 above [1.5, 2.5] is met (over: met) → 30; 4/4 = 1 > 0.75 → 40; 0.96 → 30.
  100 / 100 = 100.00, 優秀, rank 1, commended.
- 鼓樓區: the brands are shown, not allocated (actual 0, weight 0); 4/5 = 0.8 > 0.75 → 40;
  57/60 = 0.95 → 30. 70 / 70 = 100.00, 優秀 — but the veto counts 0 reported + 1 finding = 1:
  missed, so criticized; with one indicator missed it ranks 2 behind 銅山縣.
- 邳州市: 1 in [0.75, 1.25] → 30; 3/4 = 0.75 is not above 0.75 → 0; 0.95 → 30.
  60 / 100 = 60.00, 合格, rank 11, none.
- the others: 1/1 → 40; 0.90 / 0.95 = 0.947 ≥ 0.75 → stepped 0.5 × 30 = 15.
  55 / 70 = 78.57, 合格, rank 3 (shared), none.
- 新沂市 before its report: its weighted coverage has no data, so it is `not_assessed` (no
  score, grade or rank) and no run can be published until it reports.
- the city: brands 3 + 1 = 4 above [2.25, 3.75], met → 30; pass rate Σ passed / Σ checked =
  (4 + 3 + 4 + 8) / (4 + 4 + 5 + 8) = 19/21 = 0.904762 (the mean of the county rates would be
  0.959091) → 40; coverage Σ covered / Σ products = (192 + 95 + 57 + 8 × 90) / (200 + 100 + 60
  + 8 × 100) = 1064/1160 = 0.917241 → 0.965517 ≥ 0.75 → 15. 85 / 100 = 85.00, 良好; the veto
  counts the finding: 1, missed. Before 新沂市 reports, the city's coverage is `no_data`.
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

TONGSHAN, PIZHOU, GULOU, XINYI = "320323", "320382", "320302", "320381"
OTHERS = ("320303", "320304", "320305", "320311", "320321", "320322", "320324", XINYI)
DEADLINE = 2.0
STANDINGS = "/api/v1/assessments/2007/standings"
RUNS = "/api/v1/assessments/2007/runs"


def credit_code(county: str, number: int) -> str:
    first17 = f"91{county}{number:09d}"
    return first17 + credit_code_check_char(first17)


def target_set() -> dict[str, Any]:
    def indicator(key: str, source: str, measure: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {"key": key, "name": key, "source": source, "measure": measure, **rest}

    return {
        "rules": {"scoring": "all_or_nothing"},
        "indicators": [
            indicator(
                "new_provincial_famous_brands",
                "brands",
                {"kind": "new_awards", "tier": "provincial_famous"},
                comparator="about",
                target=3,
                tolerance=25,
                tolerance_unit="percent",
                over="met",
                weight=30,
                cadence="batch",
                expected_on="12-08",
                allocations={TONGSHAN: {"target": 2}, PIZHOU: {"target": 1}},
            ),
            indicator(
                "spot_check_pass_rate",
                "spot_checks",
                {"kind": "pass_rate", "levels": ["national", "provincial"]},
                comparator="above_reference",
                reference="provincial_spot_check_pass_rate",
                weight=40,
            ),
            indicator(
                "industrial_standard_coverage",
                "reported",
                {"kind": "reported_value", "unit": "rate"},
                comparator="at_least",
                target=0.95,
                weight=30,
                scoring="stepped",
                stepped_credit=0.5,
                cadence="batch",
            ),
            indicator(
                "major_quality_incidents",
                "reported",
                {
                    "kind": "reported_value",
                    "unit": "count",
                    "findings": ["unlicensed_referral", "mandatory_standard_violation", "refused"],
                },
                comparator="zero",
                weight=0,
                veto=True,
            ),
        ],
    }


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def load_brands(client: httpx.Client) -> None:
    for county, number in [(TONGSHAN, 1), (TONGSHAN, 2), (TONGSHAN, 3), (PIZHOU, 4)]:
        _created(
            client.post(
                "/api/v1/brands",
                json={
                    "product_name": f"產品{number}",
                    "brand_name": f"品牌{number}",
                    "enterprise_credit_code": credit_code(county, number),
                    "enterprise_name": f"企業{number}",
                    "county_code": county,
                    "tier": "provincial_famous",
                    "sector": "industry",
                    "award_kind": "new",
                    "awarded_on": "2007-12-08",
                    "international_standard": False,
                },
            )
        )


def load_spot_checks(client: httpx.Client) -> None:
    rows = [
        *[(TONGSHAN, "national", "pass", False) for _ in range(2)],
        *[(TONGSHAN, "provincial", "pass", False) for _ in range(2)],
        (TONGSHAN, "city", "fail", False),
        *[(PIZHOU, "provincial", "pass", False) for _ in range(3)],
        (PIZHOU, "national", "fail", False),
        *[(GULOU, "provincial", "pass", False) for _ in range(4)],
        (GULOU, "provincial", "fail", True),
        *[(county, "provincial", "pass", False) for county in OTHERS],
    ]
    for index, (county, level, result, violation) in enumerate(rows):
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
                    "mandatory_standard_violation": violation,
                },
            )
        )


def report(client: httpx.Client, county: str, indicator: str, value: float, **extra: Any) -> None:
    """A county's figure, submitted and accepted by the city's reviewer."""
    submitted = client.post(
        "/api/v1/reported-values",
        json={
            "county_code": county,
            "year": 2007,
            "indicator": indicator,
            "value": value,
            "evidence": {"document": f"{county}-2007.pdf", "text": "年度報告"},
            "reported_by": f"{county} 質監局",
            **extra,
        },
    )
    value = _created(submitted)
    accepted = client.post(
        f"/api/v1/reported-values/{value['id']}/status",
        json={"state": "accepted"},
        headers={"If-Match": submitted.headers["ETag"]},
    )
    assert accepted.status_code == 200, accepted.text


def coverage(client: httpx.Client, county: str, covered: int, products: int) -> None:
    report(
        client,
        county,
        "industrial_standard_coverage",
        round(covered / products, 4),
        numerator=covered,
        denominator=products,
    )


def load_assessment(client: httpx.Client) -> None:
    assert client.put("/api/v1/target-sets/2007", json=target_set()).status_code == 201
    reference = {"value": 0.75, "source": "江蘇省質監局抽查通報", "published_on": "2008-01-15"}
    path = "/api/v1/reference-values/2007/provincial_spot_check_pass_rate"
    assert client.put(path, json=reference).status_code == 201
    for county, covered, products in [(TONGSHAN, 192, 200), (PIZHOU, 95, 100), (GULOU, 57, 60)]:
        coverage(client, county, covered, products)
    for county in OTHERS:
        if county != XINYI:
            coverage(client, county, 90, 100)
    for county in (TONGSHAN, PIZHOU, GULOU, *OTHERS):
        report(client, county, "major_quality_incidents", 0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("assessment-system")
    running = start_stack(tmp, deadline_seconds=DEADLINE, timeout_seconds=1.0)
    try:
        with running.client("brand_registry") as client:
            load_brands(client)
        with running.client("inspection") as client:
            load_spot_checks(client)
        with running.client("assessment") as client:
            load_assessment(client)
        yield running
    finally:
        running.stop()


def _indicators(standing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["indicator"]: i for i in standing["indicators"]}


def _judged(standing: dict[str, Any]) -> dict[str, tuple[Any, str, Any]]:
    return {
        key: (row["actual"], row["status"], row["credit"])
        for key, row in _indicators(standing).items()
    }


def _verdict(standing: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    return (standing["score"], standing["rank"], standing["grade_label"], standing["outcome"])


EXPECTED_INDICATORS = {
    TONGSHAN: {
        "new_provincial_famous_brands": (3.0, "met", 1.0),
        "spot_check_pass_rate": (1.0, "met", 1.0),
        "industrial_standard_coverage": (0.96, "met", 1.0),
        "major_quality_incidents": (0.0, "met", 1.0),
    },
    PIZHOU: {
        "new_provincial_famous_brands": (1.0, "met", 1.0),
        "spot_check_pass_rate": (0.75, "missed", 0.0),
        "industrial_standard_coverage": (0.95, "met", 1.0),
        "major_quality_incidents": (0.0, "met", 1.0),
    },
    GULOU: {
        "new_provincial_famous_brands": (0.0, "not_allocated", None),
        "spot_check_pass_rate": (0.8, "met", 1.0),
        "industrial_standard_coverage": (0.95, "met", 1.0),
        "major_quality_incidents": (1.0, "missed", 0.0),
    },
}
EXPECTED_STANDINGS = {
    TONGSHAN: (100.0, 1, "優秀", "commended"),
    GULOU: (100.0, 2, "優秀", "criticized"),
    PIZHOU: (60.0, 11, "合格", "none"),
}


def test_missing_data_gives_no_verdict_and_blocks_publication(stack: Stack) -> None:
    with stack.client("assessment") as client:
        response = client.get(STANDINGS)
        assert response.status_code == 200, response.text
        body = response.json()
        created = client.post(RUNS, json={})
        run = _created(created)
        refused = client.post(
            f"{RUNS}/{run['id']}/publish", headers={"If-Match": created.headers["ETag"]}
        )
    assert body["meta"]["complete"] is True
    standings = {s["county_code"]: s for s in body["items"]}
    xinyi = standings[XINYI]
    assert (xinyi["score"], xinyi["rank"], xinyi["grade"], xinyi["outcome"]) == (
        None,
        None,
        None,
        "not_assessed",
    )
    assert xinyi["not_assessed"] == ["industrial_standard_coverage"]
    assert body["items"][-1]["county_code"] == XINYI
    city = _indicators(body["city"])
    assert city["industrial_standard_coverage"]["status"] == "no_data"
    assert "not yet reported by 320381" in city["industrial_standard_coverage"]["reason"]
    assert refused.status_code == 409
    assert refused.json()["not_assessed"] == [XINYI]


def test_every_county_matches_the_hand_computation(stack: Stack) -> None:
    with stack.client("assessment") as client:
        coverage(client, XINYI, 90, 100)
        response = client.get(STANDINGS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provisional"] is False
    standings = {s["county_code"]: s for s in body["items"]}
    assert len(standings) == 11
    for county, expected in EXPECTED_INDICATORS.items():
        assert _judged(standings[county]) == expected, county
    for county, verdict in EXPECTED_STANDINGS.items():
        assert _verdict(standings[county]) == verdict, county
    gulou_veto = _indicators(standings[GULOU])["major_quality_incidents"]
    assert gulou_veto["reason"] is None
    assert standings[GULOU]["outcome_reason"] == "a veto indicator was missed"
    for county in OTHERS:
        assert _verdict(standings[county]) == (78.57, 3, "合格", "none"), county
        assert _indicators(standings[county])["industrial_standard_coverage"]["credit"] == 0.5
    city = body["city"]
    rows = _indicators(city)
    assert (
        rows["new_provincial_famous_brands"]["actual"],
        rows["new_provincial_famous_brands"]["status"],
    ) == (4.0, "met")
    assert rows["spot_check_pass_rate"]["actual"] == round(19 / 21, 6)
    assert rows["industrial_standard_coverage"]["actual"] == round(1064 / 1160, 6)
    assert rows["major_quality_incidents"]["actual"] == 1.0
    assert (city["score"], city["grade_label"]) == (85.0, "良好")


def test_each_figure_is_explained_with_its_records(stack: Stack) -> None:
    with stack.client("assessment") as client:
        gulou = client.get(f"{STANDINGS}/{GULOU}").json()
        tongshan = client.get(f"{STANDINGS}/{TONGSHAN}").json()
        mid_year = client.get(STANDINGS, params={"as_of": "2007-06-30"}).json()
    veto = _indicators(gulou)["major_quality_incidents"]
    (record,) = veto["explanation"]["inputs"]["finding_records"]
    assert (record["county_code"], record["level"], record["kinds"]) == (
        GULOU,
        "provincial",
        ["mandatory_standard_violation"],
    )
    assert veto["provenance"]["findings"]["records"] == [record["id"]]
    brands = _indicators(tongshan)["new_provincial_famous_brands"]
    assert brands["explanation"]["comparator"]["over"] == "met"
    assert brands["explanation"]["comparator"]["band"] == "[1.5, 2.5] or above (over: met)"
    assert "counts as met (over: met)" in brands["explanation"]["formula"]
    spot = _indicators(gulou)["spot_check_pass_rate"]
    assert spot["explanation"]["inputs"] == {"checked": 5, "passed": 4}
    assert spot["provenance"]["service"] == "inspection"
    # On 30 June the provincial list (8 December) and the year-end reports are pending.
    assert mid_year["provisional"] is True
    early = _indicators(next(s for s in mid_year["items"] if s["county_code"] == TONGSHAN))
    assert early["new_provincial_famous_brands"]["status"] == "pending"
    assert early["industrial_standard_coverage"]["status"] == "pending"
    assert early["spot_check_pass_rate"]["status"] == "met"


def test_a_published_year_is_changed_only_by_a_reasoned_supersede(stack: Stack) -> None:
    with stack.client("assessment") as client:
        created = client.post(RUNS, json={})
        first = _created(created)
        published = client.post(
            f"{RUNS}/{first['id']}/publish", headers={"If-Match": created.headers["ETag"]}
        )
        assert published.status_code == 200, published.text
        current = client.get("/api/v1/target-sets/2007")
        if_match = {"If-Match": current.headers["ETag"]}
        changed = {**current.json(), "reason": None}
        changed["indicators"][1]["margin"] = 0.01
        plain = client.put("/api/v1/target-sets/2007", json=changed, headers=if_match)
        assert plain.status_code == 409
        changed.update(supersedes_published=True, reason="省局更正平均合格率口徑")
        superseded = client.put("/api/v1/target-sets/2007", json=changed, headers=if_match)
        assert superseded.status_code == 201, superseded.text
        assert superseded.json()["version"] == 2
        created = client.post(RUNS, json={})
        second = _created(created)
        path = f"{RUNS}/{second['id']}/publish"
        if_match = {"If-Match": created.headers["ETag"]}
        again = client.post(path, headers=if_match)
        assert again.status_code == 409
        replaced = client.post(
            path,
            headers=if_match,
            json={"supersedes": first["id"], "reason": "省局更正平均合格率口徑"},
        )
        assert replaced.status_code == 200, replaced.text
        earlier = client.get(f"{RUNS}/{first['id']}").json()
    assert (earlier["status"], earlier["superseded_by"]) == ("published", second["id"])
    assert earlier["target_set_version"] == 1
    assert earlier["standings"] == published.json()["standings"]
    assert replaced.json()["supersedes"] == first["id"]
    assert replaced.json()["target_set_version"] == 2


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
        assert completeness["brands"] == "ok"

        inspection.stop()
        started = time.monotonic()
        down = client.get(STANDINGS).json()
        assert time.monotonic() - started < DEADLINE + 1.0
        assert down["meta"]["completeness"]["spot_checks"].startswith("unreachable")
        tongshan = next(s for s in down["items"] if s["county_code"] == TONGSHAN)
        rows = _indicators(tongshan)
        assert rows["spot_check_pass_rate"]["status"] == "no_data"
        assert rows["new_provincial_famous_brands"]["status"] == "met"
        # Without the pass rate no county is assessed; the veto waits for the findings.
        assert tongshan["outcome"] == "not_assessed"

        created = client.post(RUNS, json={})
        run = _created(created)
        assert run["complete"] is False
        refused = client.post(
            f"{RUNS}/{run['id']}/publish", headers={"If-Match": created.headers["ETag"]}
        )
        assert refused.status_code == 409
        assert "spot_checks" in refused.json()["detail"]
