"""The demo city generator: deterministic, valid identifiers, and counties that differ.

The figures below are recounted from the generated rows the way the services' `/stats`
endpoints define them (docs/contracts.md), independently of how the generator built them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from demo.generate import DemoCity, generate, organization_code_check
from demo.targets import load_target_set
from kit.identifiers import credit_code_error

CONFIG = Path(__file__).resolve().parents[2] / "config"
YEAR = 2007
YEAR_END = date(YEAR, 12, 31)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate(seed=2007, year=YEAR)


def _regions() -> list[dict[str, str]]:
    return json.loads((CONFIG / "regions.json").read_text(encoding="utf-8"))


def _indicator(city: DemoCity, key: str) -> dict[str, Any]:
    return next(i for i in city.target_set["indicators"] if i["key"] == key)


def _county_target(city: DemoCity, key: str, county: str) -> float:
    return float(_indicator(city, key)["allocations"][county]["target"])


def _validity(tier: str) -> int:
    tiers = json.loads((CONFIG / "brand_tiers.json").read_text(encoding="utf-8"))
    return next(int(t["validity_years"]) for t in tiers if t["code"] == tier)


def _new_awards(city: DemoCity, tier: str) -> Counter[str]:
    return Counter(
        b["county_code"]
        for b in city.brands
        if b["tier"] == tier and b["award_kind"] == "new" and b["awarded_on"].startswith("2007")
    )


def _in_force(city: DemoCity, tier: str | None = None) -> list[dict[str, Any]]:
    """Listings in force on 31 December: awarded, not yet lapsed and not renewed by then."""
    renewed = {
        (b["tier"], b["enterprise_credit_code"], b["product_name"], b["awarded_on"])
        for b in city.brands
        if b["award_kind"] == "renewal"
    }
    result = []
    for b in city.brands:
        if tier is not None and b["tier"] != tier:
            continue
        awarded = date.fromisoformat(b["awarded_on"])
        until = awarded.replace(year=awarded.year + _validity(b["tier"]))
        if awarded > YEAR_END or until <= YEAR_END:
            continue
        later = [
            r
            for r in renewed
            if r[:3] == (b["tier"], b["enterprise_credit_code"], b["product_name"])
            and b["awarded_on"] < r[3] <= YEAR_END.isoformat()
        ]
        if not later:
            result.append(b)
    return result


def _new_certified(city: DemoCity) -> Counter[str]:
    first: dict[str, tuple[str, str]] = {}
    for c in city.certificates:
        if c["standard"] in ("HACCP", "ISO 22000:2005"):
            continue
        code = c["enterprise_credit_code"]
        if code not in first or c["issued_on"] < first[code][0]:
            first[code] = (c["issued_on"], c["county_code"])
    return Counter(county for issued, county in first.values() if issued.startswith("2007"))


def _pass_rates(city: DemoCity) -> dict[str, float]:
    final = {r["reinspection_of_sample"]: r["result"] for r in city.reinspections}
    checked: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for s in city.spot_checks:
        if s["level"] == "city" or not s["sampled_on"].startswith("2007"):
            continue
        checked[s["county_code"]] += 1
        passed[s["county_code"]] += final.get(s["sample_code"], s["result"]) == "pass"
    return {county: passed[county] / checked[county] for county in checked}


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    first, again, other = generate(seed=11), generate(seed=11), generate(seed=12)
    assert first.brands == again.brands
    assert first.certificates == again.certificates
    assert first.spot_checks == again.spot_checks
    assert first.reinspections == again.reinspections
    assert first.reported_values == again.reported_values
    assert first.spot_checks != other.spot_checks


def test_a_few_thousand_enterprises_with_valid_unique_credit_codes_in_every_region(
    city: DemoCity,
) -> None:
    assert 2000 <= len(city.enterprises) <= 5000
    codes = [e.credit_code for e in city.enterprises]
    assert len(set(codes)) == len(codes)
    assert [credit_code_error(code) for code in codes] == [None] * len(codes)
    assert all(e.credit_code[2:8] == e.county_code for e in city.enterprises)
    assert {e.county_code for e in city.enterprises} == {r["code"] for r in _regions()}
    assert len({e.name for e in city.enterprises}) == len(city.enterprises)


def test_the_organization_code_check_character_follows_gb_11714() -> None:
    # 12345678: 3+14+27+40+25+48+28+16 = 201, 201 % 11 = 3, 11 - 3 = 8.
    assert organization_code_check("12345678") == "8"
    assert organization_code_check("00000000") == "0"


def test_every_row_names_a_configured_region_and_a_known_code(city: DemoCity) -> None:
    regions = {r["code"] for r in _regions()}
    categories = {c["code"] for c in json.loads((CONFIG / "product_categories.json").read_text())}
    standards = {
        s["code"]
        for s in json.loads((CONFIG / "certification_standards.json").read_text())["standards"]
    }
    for row in [*city.brands, *city.certificates, *city.spot_checks, *city.reported_values]:
        assert row["county_code"] in regions
    assert {s["product_category"] for s in city.spot_checks} <= categories
    assert {c["standard"] for c in city.certificates} <= standards
    assert {b["tier"] for b in city.brands} == {
        "china_famous",
        "national_inspection_exempt",
        "provincial_famous",
        "city_famous",
    }


def test_natural_keys_are_unique_so_a_second_load_can_skip_what_exists(city: DemoCity) -> None:
    brand_keys = [
        (b["tier"], b["enterprise_credit_code"], b["product_name"], b["awarded_on"])
        for b in city.brands
    ]
    assert len(set(brand_keys)) == len(brand_keys)
    numbers = [(c["certification_body"], c["certificate_number"]) for c in city.certificates]
    assert len(set(numbers)) == len(numbers)
    samples = [s["sample_code"] for s in city.spot_checks]
    assert len(set(samples)) == len(samples)
    again = [s["sample_code"] for s in city.reinspections]
    assert len(set(again)) == len(again)
    assert set(again) <= set(samples)


def test_history_has_renewals_statuses_reinspections_and_three_levels(city: DemoCity) -> None:
    assert {b["award_kind"] for b in city.brands} == {"new", "renewal"}
    assert {b["awarded_on"][:4] for b in city.brands} >= {"2003", "2005", "2007"}
    assert {c["status"] for c in city.certificates} == {"valid", "suspended", "withdrawn"}
    assert len({c["certification_body"] for c in city.certificates}) >= 5
    assert {s["level"] for s in city.spot_checks} == {"national", "provincial", "city"}
    assert {r["result"] for r in city.reinspections} == {"pass", "fail"}
    originals = {s["sample_code"]: s for s in city.spot_checks}
    for again in city.reinspections:
        original = originals[again["reinspection_of_sample"]]
        assert original["result"] == "fail"
        assert again["sampled_on"] > original["sampled_on"]
    failed = [s for s in city.spot_checks if s["result"] == "fail"]
    assert all(json.loads(s["nonconforming_items"]) for s in failed)


def test_renewals_follow_an_earlier_listing_of_the_same_product(city: DemoCity) -> None:
    earlier = defaultdict(list)
    for b in city.brands:
        key = (b["tier"], b["enterprise_credit_code"], b["product_name"])
        if b["award_kind"] == "renewal":
            assert any(day < b["awarded_on"] for day in earlier[key]), key
        earlier[key].append(b["awarded_on"])


def test_international_listings_name_their_standard(city: DemoCity) -> None:
    for b in city.brands:
        assert bool(b["standard_code"]) == b["international_standard"]


def test_spot_checks_are_published_by_the_end_of_their_year(city: DemoCity) -> None:
    for s in [*city.spot_checks, *city.reinspections]:
        assert s["published_on"][:4] == s["sampled_on"][:4]


def test_strong_counties_meet_their_allocations_and_the_weak_one_misses(city: DemoCity) -> None:
    certified = _new_certified(city)
    provincial = _new_awards(city, "provincial_famous")
    for strong in ("320323", "320382"):
        assert certified[strong] >= _county_target(city, "new_certified_enterprises", strong)
        assert provincial[strong] >= _county_target(city, "new_provincial_famous_brands", strong)
        assert _new_awards(city, "china_famous")[strong] >= 1
    assert certified["320324"] < _county_target(city, "new_certified_enterprises", "320324")
    assert sum(certified.values()) >= 30


def test_city_famous_listings_in_force_follow_each_county_profile(city: DemoCity) -> None:
    in_force = Counter(b["county_code"] for b in _in_force(city, "city_famous"))
    target = "city_famous_brands_in_force"
    assert in_force["320323"] >= _county_target(city, target, "320323")
    assert in_force["320324"] < 0.8 * _county_target(city, target, "320324")
    assert 135 <= sum(in_force.values()) <= 165


def test_pass_rates_straddle_the_provincial_average(city: DemoCity) -> None:
    reference = next(r for r in city.reference_values if r["year"] == YEAR)["value"]
    rates = _pass_rates(city)
    assert rates["320323"] > reference
    assert rates["320302"] > reference
    assert rates["320324"] < reference - 0.03


def test_international_share_follows_each_county_profile(city: DemoCity) -> None:
    famous = {"china_famous", "provincial_famous", "city_famous"}
    listings = [b for b in _in_force(city) if b["tier"] in famous]
    share = {
        county: sum(b["international_standard"] for b in rows) / len(rows)
        for county in {r["code"] for r in _regions()}
        if (rows := [b for b in listings if b["county_code"] == county])
    }
    assert {county for county, value in share.items() if value >= 0.5} == {
        "320302",
        "320311",
        "320321",
        "320322",
        "320323",
    }


def test_one_county_reports_a_veto_incident_and_every_county_reports_incidents(
    city: DemoCity,
) -> None:
    incidents = {
        r["county_code"]: r["value"]
        for r in city.reported_values
        if r["indicator"] == "major_quality_incidents"
    }
    assert set(incidents) == {r["code"] for r in _regions()}
    assert [code for code, value in incidents.items() if value > 0] == ["320322"]
    assert all(r["evidence"]["document"] and r["evidence"]["text"] for r in city.reported_values)


def test_reported_rates_are_fractions_with_their_numerator_and_denominator(
    city: DemoCity,
) -> None:
    rates = [r for r in city.reported_values if r["indicator"].endswith("_coverage")]
    assert len(rates) == 2 * len(_regions())
    assert all(0 <= r["value"] <= 1 for r in rates)
    for r in rates:
        assert 0 < r["numerator"] <= r["denominator"]
        assert r["value"] == round(r["numerator"] / r["denominator"], 4)


def test_inspection_finds_one_mandatory_standard_violation_that_stays_failed(
    city: DemoCity,
) -> None:
    found = [
        s
        for s in city.spot_checks
        if s["mandatory_standard_violation"] and s["sampled_on"].startswith("2007")
    ]
    assert [(s["county_code"], s["level"], s["result"]) for s in found] == [
        ("320303", "provincial", "fail")
    ]
    assert found[0]["sample_code"] not in {r["reinspection_of_sample"] for r in city.reinspections}
    assert not any(s["mandatory_standard_violation"] for s in city.spot_checks if s not in found)


def test_the_configured_target_set_allocations_add_up_to_the_city_targets() -> None:
    for indicator in load_target_set(YEAR, CONFIG)["indicators"]:
        allocations = indicator.get("allocations", {}).values()
        figures = [a["target"] for a in allocations if "target" in a]
        if figures and indicator["comparator"] in ("at_least", "about"):
            assert sum(figures) == indicator["target"], indicator["key"]


def test_a_year_without_a_configured_target_set_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no target set for 2007"):
        load_target_set(YEAR, tmp_path)
