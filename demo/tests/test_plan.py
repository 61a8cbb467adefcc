"""The demo city's records of the rest of the plan: metrology checks, special-equipment
inspections, food production licences and the rectification, incidents,
geographical-indication products and quality awards, recounted from the rows the way the
services' `/stats` endpoints count them."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from demo.generate import DemoCity, generate

CONFIG = Path(__file__).resolve().parents[2] / "config"
YEAR_END = date(2007, 12, 31)
COUNTIES = {r["code"] for r in json.loads((CONFIG / "regions.json").read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate(seed=2007, year=2007)


def _config(name: str) -> Any:
    return json.loads((CONFIG / name).read_text(encoding="utf-8"))


def test_how_many_of_each_record(city: DemoCity) -> None:
    assert len(city.metrology_checks) == 284
    assert len(city.equipment_inspections) == 263
    assert len(city.food_licences) == 99
    assert len(city.dispositions) == 47
    assert len(city.incidents) == 5
    assert len(city.gi_products) == 4
    assert len(city.awards) == 8


def test_the_plan_records_are_the_same_for_the_same_seed(city: DemoCity) -> None:
    again = generate(seed=2007, year=2007)
    for name in ("metrology_checks", "equipment_inspections", "food_licences", "dispositions"):
        assert getattr(again, name) == getattr(city, name), name
    other = generate(seed=2008, year=2007)
    assert other.metrology_checks != city.metrology_checks


def test_metrology_checks_cover_every_subject_in_every_county(city: DemoCity) -> None:
    programme = next(p for p in _config("programmes.json") if p["code"] == "metrology")
    subjects = {s["code"] for s in programme["subjects"]}
    seen = {(c["county_code"], c["metrology_subject"]) for c in city.metrology_checks}
    assert seen == {(county, subject) for county in COUNTIES for subject in subjects}
    codes = [c["sample_code"] for c in city.metrology_checks]
    assert len(codes) == len(set(codes))
    for check in city.metrology_checks:
        nonconforming = check["instruments_nonconforming"]
        assert 0 <= nonconforming <= check["instruments_checked"]
        assert (check["result"] == "fail") == (nonconforming > 0)
        assert bool(check["nonconforming_items"]) == (nonconforming > 0)
        assert check["sampled_on"] <= check["published_on"] <= YEAR_END.isoformat()
        if check["metrology_subject"] == "prepackaged_quantity":
            short = check["measured_shortfall"] > check["tolerated_deficiency"]
            assert short == (check["result"] == "fail")


def _metrology_rates(city: DemoCity) -> dict[str, float]:
    checked: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    for check in city.metrology_checks:
        checked[check["county_code"]] += check["instruments_checked"]
        bad[check["county_code"]] += check["instruments_nonconforming"]
    return {c: (checked[c] - bad[c]) / checked[c] for c in checked}


def test_instruments_fail_where_products_do(city: DemoCity) -> None:
    rates = _metrology_rates(city)
    assert min(rates, key=rates.__getitem__) == "320324", "睢寧縣, the weak county"
    assert max(rates, key=rates.__getitem__) == "320382"
    total = sum(c["instruments_checked"] for c in city.metrology_checks)
    bad = sum(c["instruments_nonconforming"] for c in city.metrology_checks)
    assert (total, bad) == (4584, 173)


def test_special_equipment_items_overdue_on_31_december(city: DemoCity) -> None:
    """An item is overdue when its latest inspection's next due day is before 31 December."""
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(city.equipment_inspections, key=lambda r: r["sampled_on"]):
        latest[row["equipment_code"]] = row
    overdue = Counter(
        r["county_code"] for r in latest.values() if r["next_due_on"] < YEAR_END.isoformat()
    )
    assert overdue == {"320324": 4, "320305": 3, "320322": 2, "320304": 1, "320381": 1}
    assert {r["county_code"] for r in latest.values()} == COUNTIES
    kinds = {
        k["code"]
        for p in _config("programmes.json")
        if p["code"] == "special_equipment"
        for k in p["equipment_kinds"]
    }
    assert {r["equipment_kind"] for r in city.equipment_inspections} <= kinds
    keys = [(r["equipment_code"], r["sampled_on"]) for r in city.equipment_inspections]
    assert len(keys) == len(set(keys))
    assert all("sample_code" not in r for r in city.equipment_inspections)


def test_food_licences_are_in_force_with_the_configured_number_format(city: DemoCity) -> None:
    kind = next(
        k
        for k in _config("certificate_kinds.json")["kinds"]
        if k["code"] == "food_production_licence"
    )
    numbers = [r["certificate_number"] for r in city.food_licences]
    assert len(numbers) == len(set(numbers))
    assert all(re.fullmatch(kind["number_pattern"], n) for n in numbers)
    for row in city.food_licences:
        assert set(row["product_categories"]) <= set(kind["product_categories"])
        issued = date.fromisoformat(row["issued_on"])
        assert issued <= YEAR_END < issued.replace(year=issued.year + kind["validity_years"])
    licensed = Counter(
        county
        for county, _ in {
            (r["county_code"], r["enterprise_credit_code"]) for r in city.food_licences
        }
    )
    assert set(licensed) == COUNTIES
    assert sum(licensed.values()) == 99


def _final(row: dict[str, Any]) -> str:
    return str(row["changes"][-1]["disposition"] if row["changes"] else row["disposition"])


def test_the_rectification_is_incomplete_in_three_counties(city: DemoCity) -> None:
    latest = Counter((r["county_code"], _final(r)) for r in city.dispositions)
    rectifying = {county: n for (county, state), n in latest.items() if state == "rectifying"}
    assert rectifying == {"320324": 2, "320305": 1, "320322": 1}
    assert {state for _, state in latest} == {"supported", "rectifying", "closed"}
    assert {r["county_code"] for r in city.dispositions} == COUNTIES
    licences = {r["certificate_number"] for r in city.food_licences}
    for row in city.dispositions:
        assert row["licence_number"] in licences
        assert ("deadline" in row) == (row["disposition"] == "rectifying")
        for change in row["changes"]:
            assert row["decided_on"] < change["decided_on"] <= YEAR_END.isoformat()


def test_one_confirmed_major_incident_in_the_county_already_criticized(city: DemoCity) -> None:
    def final(row: dict[str, Any]) -> str:
        return str(row["changes"][-1]["status"] if row["changes"] else "reported")

    counted = [
        r
        for r in city.incidents
        if r["severity"] == "major" and final(r) in ("confirmed", "closed")
    ]
    assert [(r["county_code"], r["kind"], r["occurred_on"]) for r in counted] == [
        ("320322", "food_safety_incident", "2007-08-14")
    ]
    assert {final(r) for r in city.incidents} == {"confirmed", "dismissed", "closed", "reported"}
    kinds = {k["code"] for k in _config("incidents.json")["kinds"]}
    assert {r["kind"] for r in city.incidents} == kinds
    references = [r["source_reference"] for r in city.incidents]
    assert len(references) == len(set(references))
    for row in city.incidents:
        if row["changes"] and row["changes"][-1]["status"] == "dismissed":
            assert row["changes"][-1]["reason"]


def test_geographical_indications_of_xuzhou_counties(city: DemoCity) -> None:
    assert {(r["protected_name"], r["county_code"]) for r in city.gi_products} == {
        ("邳州銀杏", "320382"),
        ("豐縣紅富士蘋果", "320321"),
        ("新沂水蜜桃", "320381"),
        ("沛縣黿汁狗肉", "320322"),
    }
    for row in city.gi_products:
        assert row["tier"] == "geographical_indication"
        assert row["protected_area"] == [row["county_code"]]
        assert row["approval_authority"]
        assert row["notice_number"]
    new = Counter(r["county_code"] for r in city.gi_products if r["awarded_on"].startswith("2007"))
    assert new == {"320321": 1, "320381": 1}


def test_awards_are_of_configured_kinds_and_levels(city: DemoCity) -> None:
    kinds = {k["code"]: k for k in _config("award_kinds.json")}
    for row in city.awards:
        kind = kinds[row["kind"]]
        assert row["level"] in kind["levels"]
        assert ("excellence_score" in row) == kind["score_required"]
        assert row["awarded_on"].startswith(str(row["year"]))
    won = Counter(
        r["county_code"]
        for r in city.awards
        if r["year"] == 2007 and r["kind"] != "excellence_performance_self_assessment"
    )
    assert won == {"320323": 1, "320302": 1, "320382": 1, "320311": 1}
