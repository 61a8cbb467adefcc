"""Standings: the parallel fan-out to the data services, partial data and explanations."""

import time
from typing import Any

import pytest

from kit.testing import Harness

from .builders import (
    GULOU,
    PIZHOU,
    TONGSHAN,
    accepted,
    brand_stats,
    certificate_stats,
    reference,
    reported,
    small_target_set,
    spot_check_stats,
)
from .conftest import DEADLINE_SECONDS
from .fakes import FakeDataServices

STANDINGS = "/api/v1/assessments/2007/standings"


OTHERS = ("320303", "320304", "320305", "320311", "320321", "320322", "320324", "320381")


async def _load(
    service: Harness,
    data: FakeDataServices,
    *,
    with_reference: bool = True,
    complete: bool = False,
) -> None:
    """Tongshan meets everything; Pizhou misses counts and has an incident; Gulou is allocated
    neither count; the eight other counties have no figures at all, or with `complete` a
    coverage of 0.95, no incident and 10 of 10 samples passed each."""
    client = service.client()
    assert (
        await client.put("/api/v1/target-sets/2007", json=small_target_set())
    ).status_code == 201
    if with_reference:
        await client.put(
            "/api/v1/reference-values/2007/provincial_spot_check_pass_rate", json=reference(0.9)
        )
    bodies = [
        reported(TONGSHAN, "industrial_standard_coverage", 0.96),
        reported(TONGSHAN, "major_quality_incidents", 0),
        reported(PIZHOU, "industrial_standard_coverage", 0.95),
        reported(PIZHOU, "major_quality_incidents", 1, measured_on="2007-03-15"),
        reported(GULOU, "industrial_standard_coverage", 0.76),
        reported(GULOU, "major_quality_incidents", 0),
    ]
    samples = {TONGSHAN: (100, 95), PIZHOU: (100, 90), GULOU: (50, 45)}
    if complete:
        for county in OTHERS:
            bodies.append(reported(county, "industrial_standard_coverage", 0.95))
            bodies.append(reported(county, "major_quality_incidents", 0))
            samples[county] = (10, 10)
    for body in bodies:
        await accepted(client, body)
    data.bodies["brands"] = brand_stats(
        [(TONGSHAN, "china_famous", 1, 3, 2), (PIZHOU, "china_famous", 0, 2, 1)]
    )
    data.bodies["certificates"] = certificate_stats({TONGSHAN: 2})
    data.bodies["spot_checks"] = spot_check_stats(samples)


def _by_county(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["county_code"]: s for s in body["items"]}


def _indicators(standing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["indicator"]: i for i in standing["indicators"]}


async def test_every_county_is_scored_ranked_and_judged(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    response = await service.client().get(STANDINGS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["year"], body["as_of"], body["provisional"]) == (2007, "2007-12-31", False)
    assert body["meta"]["completeness"] == {
        "brands": "ok",
        "certificates": "ok",
        "spot_checks": "ok",
        "reference_values": "ok",
    }
    counties = _by_county(body)
    assert len(counties) == 11
    tongshan, pizhou, gulou = counties[TONGSHAN], counties[PIZHOU], counties[GULOU]
    assert (tongshan["score"], tongshan["rank"], tongshan["grade"], tongshan["outcome"]) == (
        100.0,
        1,
        "excellent",
        "commended",
    )
    # Gulou: (30 × 1 [0.9 = reference: missed, attainment 1] + 20 × 0.76/0.95 + 10 × 1) / 60;
    # the two counts are shown with Gulou's actual and no target, weight 0.
    assert (gulou["score"], gulou["rank"], gulou["grade_label"], gulou["outcome"]) == (
        93.33,
        2,
        "優秀",
        "commended",
    )
    gulou_rows = _indicators(gulou)
    assert len(gulou_rows) == 5
    brands = gulou_rows["new_china_famous_brands"]
    assert (brands["status"], brands["actual"], brands["target"], brands["weight"]) == (
        "not_allocated",
        0.0,
        None,
        0.0,
    )
    assert gulou_rows["new_certified_enterprises"]["status"] == "not_allocated"
    # Pizhou: (20 × 0 + 20 × 0 + 30 × 1 + 20 × 1 + 10 × 0) / 100, and the incident vetoes.
    assert (pizhou["score"], pizhou["rank"], pizhou["outcome"]) == (50.0, 3, "criticized")
    pizhou_rows = _indicators(pizhou)
    assert pizhou_rows["spot_check_pass_rate"]["status"] == "missed"
    assert pizhou_rows["spot_check_pass_rate"]["target"] == 0.9
    assert pizhou_rows["major_quality_incidents"]["status"] == "missed"
    assert pizhou["status"] == "missed"
    # No figures at all: never graded nor criticized, not ranked, and the reason says why.
    others = [s for code, s in counties.items() if code not in {TONGSHAN, PIZHOU, GULOU}]
    assert {(s["score"], s["rank"], s["grade"], s["outcome"], s["status"]) for s in others} == {
        (None, None, None, "not_assessed", "no_data")
    }
    assert set(others[0]["not_assessed"]) == {
        "spot_check_pass_rate",
        "industrial_standard_coverage",
        "major_quality_incidents",
    }
    assert "no samples checked" in others[0]["outcome_reason"]
    assert [s["county_code"] for s in body["items"][:3]] == [TONGSHAN, GULOU, PIZHOU]
    assert _indicators(others[0])["industrial_standard_coverage"]["reason"].startswith(
        "not reported"
    )
    city = _indicators(body["city"])
    assert (
        city["new_china_famous_brands"]["actual"],
        city["new_china_famous_brands"]["attainment"],
    ) == (1.0, 0.5)
    assert city["spot_check_pass_rate"]["actual"] == 0.92
    # No mean of the county rates: no figure until every county reports its fractions.
    coverage = city["industrial_standard_coverage"]
    assert (coverage["status"], coverage["actual"]) == ("no_data", None)
    assert "not yet reported by 320303" in coverage["reason"]
    assert city["major_quality_incidents"]["actual"] == 1.0
    assert city["major_quality_incidents"]["status"] == "missed"
    assert "explanation" not in tongshan["indicators"][0]


async def test_calls_carry_the_assessment_service_identity(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    await service.client().get(STANDINGS, params={"as_of": "2007-06-30"})
    assert {(c["iss"], c["aud"], c["scope"]) for c in data_services.claims} == {
        ("assessment", "brand_registry", "brands:read"),
        ("assessment", "certification", "certificates:read"),
        ("assessment", "inspection", "spot-checks:read"),
    }
    params = {r.url.host: dict(r.url.params) for r in data_services.requests}
    assert params["inspection.test"] == {
        "year": "2007",
        "as_of": "2007-06-30",
        "levels": "national,provincial",
    }


async def test_the_fan_out_is_parallel(service: Harness, data_services: FakeDataServices) -> None:
    await _load(service, data_services)
    data_services.delays.update(brands=0.3, certificates=0.3, spot_checks=0.3)
    started = time.monotonic()
    response = await service.client().get(STANDINGS)
    elapsed = time.monotonic() - started
    assert response.json()["meta"]["complete"] is True
    assert elapsed < 0.75, f"three 0.3 s calls took {elapsed:.2f} s"


async def test_a_stopped_service_gives_no_data_and_says_so(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    data_services.modes["spot_checks"] = "down"
    body = (await service.client().get(STANDINGS)).json()
    completeness = body["meta"]["completeness"]
    assert completeness["spot_checks"] == "unreachable: ConnectError"
    assert completeness["brands"] == completeness["certificates"] == "ok"
    assert body["meta"]["complete"] is False
    assert body["meta"]["sources"]["spot_checks?levels=national,provincial"]["attempts"] == 3
    row = _indicators(_by_county(body)[TONGSHAN])["spot_check_pass_rate"]
    assert (row["status"], row["actual"], row["attainment"]) == ("no_data", None, None)
    assert row["reason"] == "spot_checks: unreachable: ConnectError"
    assert _indicators(_by_county(body)[TONGSHAN])["new_china_famous_brands"]["status"] == "met"


async def test_a_slow_service_is_cut_off_at_the_deadline(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    data_services.delays["certificates"] = 30
    started = time.monotonic()
    response = await service.client().get(STANDINGS)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < DEADLINE_SECONDS + 0.5
    body = response.json()
    assert body["meta"]["completeness"]["certificates"].startswith("timeout")
    row = _indicators(_by_county(body)[TONGSHAN])["new_certified_enterprises"]
    assert row["status"] == "no_data"


async def test_a_failing_read_is_retried(service: Harness, data_services: FakeDataServices) -> None:
    await _load(service, data_services)
    data_services.failures_left["brands"] = 2
    body = (await service.client().get(STANDINGS)).json()
    assert body["meta"]["completeness"]["brands"] == "ok"
    assert body["meta"]["sources"]["brands"]["attempts"] == 3


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("error", "HTTP 500: database is on fire"), ("garbage", "unexpected response")],
)
async def test_a_bad_answer_is_reported(
    service: Harness, data_services: FakeDataServices, mode: str, reason: str
) -> None:
    await _load(service, data_services)
    data_services.modes["brands"] = mode
    body = (await service.client().get(STANDINGS)).json()
    assert body["meta"]["completeness"]["brands"].startswith(reason)


async def test_a_missing_reference_value_is_named(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, with_reference=False)
    body = (await service.client().get(STANDINGS)).json()
    assert body["meta"]["completeness"]["reference_values"] == (
        "missing for 2007: provincial_spot_check_pass_rate"
    )
    row = _indicators(_by_county(body)[TONGSHAN])["spot_check_pass_rate"]
    assert row["status"] == "no_data"


async def test_during_the_year_counts_are_projected(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    body = (await service.client().get(STANDINGS, params={"as_of": "2007-07-01"})).json()
    assert body["meta"]["year_elapsed"] == round(182 / 365, 6)
    tongshan = _indicators(_by_county(body)[TONGSHAN])
    assert (
        tongshan["new_china_famous_brands"]["status"],
        tongshan["new_china_famous_brands"]["basis"],
    ) == ("met", "actual")
    pizhou = _indicators(_by_county(body)[PIZHOU])
    assert pizhou["new_china_famous_brands"]["status"] == "at_risk"
    assert pizhou["major_quality_incidents"]["status"] == "missed"
    # Reported on 31 December: not yet known on 1 July.
    assert tongshan["industrial_standard_coverage"]["status"] == "no_data"


async def test_a_county_standing_explains_every_figure(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services)
    response = await service.client().get(f"{STANDINGS}/{GULOU}")
    assert response.status_code == 200
    body = response.json()
    assert body["county_name"] == "鼓樓區"
    assert "93.33" in body["explanation"]["score"]
    rows = _indicators(body)
    coverage = rows["industrial_standard_coverage"]
    assert coverage["explanation"]["comparator"]["band"] == "[0.95, ∞)"
    assert coverage["explanation"]["formula"].endswith("= 0.8000")
    assert coverage["explanation"]["thresholds"] == {"green": 0.9, "amber": 0.75}
    assert coverage["rating"] == "amber"
    assert coverage["contribution"] == pytest.approx(100 * 20 * 0.8 / 60, abs=1e-3)
    assert (
        coverage["provenance"]["evidence"]["document"]
        == f"{GULOU}-industrial_standard_coverage.pdf"
    )
    spot = rows["spot_check_pass_rate"]
    assert spot["explanation"]["inputs"] == {"checked": 50, "passed": 45}
    assert spot["explanation"]["comparator"]["band"] == "(0.9, ∞)"
    assert (
        spot["explanation"]["comparator"]["reference_source"]["source"]
        == "江蘇省質量技術監督局通報"
    )
    assert spot["provenance"]["service"] == "inspection"
    assert spot["provenance"]["query"].startswith("GET /api/v1/spot-checks/stats?year=2007")
    assert body["explanation"]["outcome"]["result"].startswith("grade excellent")


async def test_bad_standings_requests(service: Harness, data_services: FakeDataServices) -> None:
    client = service.client()
    assert (await client.get(STANDINGS)).status_code == 404
    await _load(service, data_services)
    outside = await client.get(STANDINGS, params={"as_of": "2008-01-01"})
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "as_of"
    assert (await client.get(f"{STANDINGS}/320399")).status_code == 404
    malformed = await client.get(f"{STANDINGS}/3203")
    assert malformed.json()["errors"][0]["field"] == "county_code"
