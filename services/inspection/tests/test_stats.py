"""`GET /spot-checks/stats` against a hand-built fixture with re-inspections at all levels.

2023, published unless noted (F = fail, P = pass, → = re-inspection):
  320323 national    A1 P · A2 F→F (upheld) · A3 F→P (overturned, re-tested in 2024) · A4 F→F→P
  320323 provincial  B1 P · B2 F
  320323 city        C1 F→P, the re-inspection not yet published
  320382 national    D1 refused (a failure)
  320382 provincial  D2 P · D3 P published next month (embargoed)
  320382 city        D4 P sampled in September
  2022: E1 P (another year)

Findings (the support's failures record a mandatory-standard violation): A2's chain is upheld
(1); A3 and A4 end in a pass, which overturns their violations (0); B2 (1); C1's passing
re-inspection is not yet public, so publicly its violation stands (1), but not for a writer
counting unpublished results; D1 is a refusal (1). Then, in 320302 only for the findings test:
G1 passes but was referred for unlicensed production (a referral stands whatever the result),
G2 fails with a violation published next month (embargoed).
"""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from inspection.tests.support import TODAY, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"
STATS = f"{URL}/stats"
FOOD, CHILDREN, BUILDING = "food", "children_products", "building_materials"
PLANS = {"national": "2023-GJ-01", "provincial": "2023-SJ-01", "city": "2023-XZ-01"}
LATER = (TODAY + timedelta(days=30)).isoformat()


async def _add(client: httpx.AsyncClient, code: str, level: str, **overrides: Any) -> str:
    defaults = {"sampled_on": "2023-03-10", "published_on": "2023-04-20"}
    body = spot_check(
        plan_code=PLANS[level], level=level, sample_code=code, **{**defaults, **overrides}
    )
    response = await client.post(URL, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _retest(
    client: httpx.AsyncClient, of: str, code: str, level: str, **overrides: Any
) -> str:
    body = {"sampled_on": "2023-05-10", "published_on": "2023-06-01", **overrides}
    return await _add(client, code, level, reinspection_of=of, **body)


@pytest.fixture
async def fixture(service: Harness) -> httpx.AsyncClient:
    client = service.client()
    await _add(client, "A1", "national", result="pass")
    a2 = await _add(client, "A2", "national")
    await _retest(client, a2, "A2", "national")
    a3 = await _add(client, "A3", "national")
    await _retest(
        client,
        a3,
        "A3",
        "national",
        result="pass",
        sampled_on="2024-01-10",
        published_on="2024-02-01",
    )
    a4 = await _add(client, "A4", "national")
    a4b = await _retest(client, a4, "A4", "national")
    await _retest(client, a4b, "A4", "national", result="pass")
    await _add(client, "B1", "provincial", product_category=CHILDREN, result="pass")
    await _add(client, "B2", "provincial", product_category=CHILDREN)
    c1 = await _add(client, "C1", "city")
    await _retest(client, c1, "C1", "city", result="pass", published_on=None)
    building = {"product_category": BUILDING, "county_code": "320382"}
    await _add(
        client,
        "D1",
        "national",
        refused=True,
        nonconforming_items=[],
        mandatory_standard_violation=False,
        **building,
    )
    await _add(client, "D2", "provincial", result="pass", **building)
    await _add(client, "D3", "provincial", result="pass", published_on=LATER, **building)
    await _add(
        client,
        "D4",
        "city",
        result="pass",
        sampled_on="2023-09-01",
        published_on="2023-10-01",
        **building,
    )
    await _add(
        client,
        "E1",
        "national",
        result="pass",
        sampled_on="2022-05-01",
        published_on="2022-06-01",
    )
    return service.client(["spot-checks:read"])


def _groups(body: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, Any]]:
    return {
        (g["county_code"], g["level"]): (g["checked"], g["passed"], g["pass_rate"])
        for g in body["groups"]
        if g["checked"]
    }


def _by(body: dict[str, Any], section: str, key: str) -> dict[str, tuple[int, int, Any]]:
    return {
        row[key]: (row["checked"], row["passed"], row["pass_rate"])
        for row in body[section]
        if row["checked"]
    }


async def test_public_figures_follow_reinspections_and_the_embargo(
    fixture: httpx.AsyncClient,
) -> None:
    response = await fixture.get(STATS, params={"year": 2023})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == 2023
    assert body["as_of"] == "2023-12-31"
    assert body["levels"] == ["national", "provincial", "city"]
    assert _groups(body) == {
        ("320323", "national"): (4, 3, 0.75),
        ("320323", "provincial"): (2, 1, 0.5),
        ("320323", "city"): (1, 0, 0.0),
        ("320382", "national"): (1, 0, 0.0),
        ("320382", "provincial"): (1, 1, 1.0),
        ("320382", "city"): (1, 1, 1.0),
    }
    assert _by(body, "by_county", "county_code") == {
        "320323": (7, 4, 0.5714),
        "320382": (3, 2, 0.6667),
    }
    assert _by(body, "by_category", "product_category") == {
        FOOD: (5, 3, 0.6),
        CHILDREN: (2, 1, 0.5),
        BUILDING: (3, 2, 0.6667),
    }
    assert body["totals"] == {"checked": 10, "passed": 6, "pass_rate": 0.6}
    quiet = next(row for row in body["by_county"] if row["county_code"] == "320302")
    assert quiet == {"county_code": "320302", "checked": 0, "passed": 0, "pass_rate": None}
    assert len(body["by_county"]) == 11
    assert len(body["groups"]) == 33


async def test_writers_may_count_unpublished_results(
    fixture: httpx.AsyncClient, service: Harness
) -> None:
    refused = await fixture.get(STATS, params={"year": 2023, "include_unpublished": True})
    assert refused.status_code == 403
    response = await service.client().get(STATS, params={"year": 2023, "include_unpublished": True})
    body = response.json()
    assert _groups(body)[("320323", "city")] == (1, 1, 1.0)
    assert _groups(body)[("320382", "provincial")] == (2, 2, 1.0)
    assert body["totals"] == {"checked": 11, "passed": 8, "pass_rate": 0.7273}


async def test_levels_county_and_as_of_narrow_the_figures(fixture: httpx.AsyncClient) -> None:
    indicator = await fixture.get(STATS, params={"year": 2023, "levels": "provincial,national"})
    body = indicator.json()
    assert body["levels"] == ["national", "provincial"]
    assert _by(body, "by_county", "county_code") == {
        "320323": (6, 4, 0.6667),
        "320382": (2, 1, 0.5),
    }
    assert body["totals"] == {"checked": 8, "passed": 5, "pass_rate": 0.625}

    county = (await fixture.get(STATS, params={"year": 2023, "county_code": "320382"})).json()
    assert [row["county_code"] for row in county["by_county"]] == ["320382"]
    assert {g["county_code"] for g in county["groups"]} == {"320382"}
    assert county["totals"] == {"checked": 3, "passed": 2, "pass_rate": 0.6667}

    mid_year = (await fixture.get(STATS, params={"year": 2023, "as_of": "2023-06-30"})).json()
    assert mid_year["as_of"] == "2023-06-30"
    assert mid_year["totals"] == {"checked": 9, "passed": 5, "pass_rate": 0.5556}

    other_year = (await fixture.get(STATS, params={"year": 2022})).json()
    assert other_year["totals"] == {"checked": 1, "passed": 1, "pass_rate": 1.0}
    empty = (await fixture.get(STATS, params={"year": 2019})).json()
    assert empty["totals"] == {"checked": 0, "passed": 0, "pass_rate": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "year"),
        ({"year": "twenty"}, "year"),
        ({"year": 2023, "levels": "national,county"}, "levels"),
        ({"year": 2023, "county_code": "110101"}, "county_code"),
        ({"year": 2023, "as_of": "2022-12-31"}, "as_of"),
    ],
)
async def test_bad_stats_parameters_are_422(
    service: Harness, params: dict[str, Any], field: str
) -> None:
    response = await service.client().get(STATS, params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def _findings(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {
        row["county_code"]: (
            row["mandatory_standard_violation"],
            row["refused"],
            row["unlicensed_referral"],
            row["total"],
        )
        for row in body["findings_by_county"]
        if row["total"]
    }


async def test_findings_are_counted_per_county_with_each_record(
    fixture: httpx.AsyncClient, service: Harness
) -> None:
    writer = service.client()
    gulou = {"county_code": "320302", "product_category": BUILDING}
    await _add(writer, "G1", "provincial", result="pass", unlicensed_referral=True, **gulou)
    await _add(writer, "G2", "provincial", published_on=LATER, **gulou)
    body = (await fixture.get(STATS, params={"year": 2023})).json()
    assert _findings(body) == {
        "320323": (3, 0, 0, 3),
        "320382": (0, 1, 0, 1),
        "320302": (0, 0, 1, 1),
    }
    assert body["findings_totals"] == {
        "unlicensed_referral": 1,
        "mandatory_standard_violation": 3,
        "refused": 1,
        "total": 5,
    }
    records = {(r["county_code"], r["sample_code"]): r for r in body["finding_records"]}
    assert set(records) == {
        ("320323", "A2"),
        ("320323", "B2"),
        ("320323", "C1"),
        ("320382", "D1"),
        ("320302", "G1"),
    }
    upheld = records[("320323", "A2")]
    assert upheld["kinds"] == ["mandatory_standard_violation"]
    assert len(upheld["record_ids"]) == 2  # the original and its upholding re-inspection
    assert records[("320382", "D1")]["kinds"] == ["refused"]
    assert len(body["findings_by_county"]) == 11

    levels = await fixture.get(STATS, params={"year": 2023, "levels": "national,provincial"})
    assert _findings(levels.json()) == {
        "320323": (2, 0, 0, 2),
        "320382": (0, 1, 0, 1),
        "320302": (0, 0, 1, 1),
    }
    unpublished = await writer.get(STATS, params={"year": 2023, "include_unpublished": True})
    assert _findings(unpublished.json()) == {
        "320323": (2, 0, 0, 2),
        "320382": (0, 1, 0, 1),
        "320302": (1, 0, 1, 2),
    }
    before = (await fixture.get(STATS, params={"year": 2023, "as_of": "2023-03-09"})).json()
    assert before["findings_totals"]["total"] == 0
    county = (await fixture.get(STATS, params={"year": 2023, "county_code": "320382"})).json()
    assert [r["sample_code"] for r in county["finding_records"]] == ["D1"]
