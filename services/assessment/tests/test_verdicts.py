"""Verdicts of whole standings, computed from hand-made inputs: indicators a county has no
allocation of, counties that cannot be assessed, batch figures pending mid-year, ranking
groups and the commendation quota, and the city's arithmetic roll-up."""

from __future__ import annotations

from datetime import date
from typing import Any

from assessment.catalogue import rules_of
from assessment.schemas import AssessmentDefaults, Indicator, Region, Rules, ScoringScheme
from assessment.scoring import GroupRule
from assessment.service import resolve_rules
from assessment.sources import Fetched
from assessment.standings import Inputs, compute, findings_query, query_for

from .builders import brand_stats, certificate_stats, spot_check_stats

D1, D2, C1, C2 = "320302", "320303", "320321", "320322"
REGIONS = [
    Region(code=D1, name="鼓樓區", kind="district"),
    Region(code=D2, name="雲龍區", kind="district"),
    Region(code=C1, name="豐縣", kind="county"),
    Region(code=C2, name="沛縣", kind="county_city"),
]
DEFAULTS = rules_of(
    AssessmentDefaults.model_validate(
        {
            "grades": [
                {"grade": "excellent", "label": "優秀", "min_score": 90},
                {"grade": "good", "label": "良好", "min_score": 80},
                {"grade": "pass", "label": "合格", "min_score": 60},
                {"grade": "fail", "label": "不合格", "min_score": 0},
            ],
            "commended_grades": ["excellent"],
            "criticized_grades": ["fail"],
        }
    )
)
GROUPS = [
    {"group": "districts", "label": "區", "kinds": ["district"]},
    {"group": "counties", "label": "縣(市)", "kinds": ["county", "county_city"]},
]


def indicator(key: str, **fields: Any) -> Indicator:
    return Indicator.model_validate({"key": key, "name": key, **fields})


def new_brands(allocations: dict[str, int], **extra: Any) -> Indicator:
    return indicator(
        "new_provincial_famous_brands",
        source="brands",
        measure={"kind": "new_awards", "tier": "provincial_famous"},
        comparator="at_least",
        target=sum(allocations.values()),
        weight=50,
        allocations={code: {"target": n} for code, n in allocations.items()},
        **extra,
    )


def coverage(weight: float = 50) -> Indicator:
    return indicator(
        "industrial_standard_coverage",
        source="reported",
        measure={"kind": "reported_value", "unit": "rate"},
        comparator="at_least",
        target=0.95,
        weight=weight,
    )


def incidents(**measure: Any) -> Indicator:
    return indicator(
        "major_quality_incidents",
        source="reported",
        measure={"kind": "reported_value", "unit": "count", **measure},
        comparator="zero",
        weight=0,
        veto=True,
    )


def fetched(query_key: str, source: str, body: dict[str, Any]) -> Fetched:
    return Fetched(
        key=query_key,
        source=source,
        service=source,
        query=f"GET /{source}/stats",
        ok=True,
        body=body,
        reason=None,
        fetched_at="2008-01-05T00:00:00+00:00",
        elapsed_ms=1.0,
        attempts=1,
    )


def report(county: str, key: str, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{county}-{key}",
        "value": value,
        "reported_by": county,
        "reported_at": "2008-01-05T00:00:00+00:00",
        "measured_on": "2007-12-31",
        "evidence": {"document": "總結", "text": "年度報告"},
        **extra,
    }


def inputs(
    indicators: list[Indicator],
    *,
    brands: dict[str, int] | None = None,
    reported: dict[tuple[str, str], dict[str, Any]] | None = None,
    spot_checks: dict[str, Any] | None = None,
    certificates: dict[str, int] | None = None,
    rules: dict[str, Any] | None = None,
    as_of: date = date(2007, 12, 31),
) -> Inputs:
    bodies: dict[str, Fetched] = {}
    for item in indicators:
        for query in (query_for(item), findings_query(item)):
            if query is None:
                continue
            if query.source.value == "brands":
                body = brand_stats(
                    [(c, "provincial_famous", n, n, 0) for c, n in (brands or {}).items()]
                )
            elif query.source.value == "certificates":
                body = certificate_stats(certificates or {})
            else:
                body = spot_checks or spot_check_stats({})
            bodies[query.key] = fetched(query.key, query.source.value, body)
    return Inputs(
        year=2007,
        as_of=as_of,
        target_set_version=1,
        indicators=indicators,
        rules=resolve_rules(Rules.model_validate(rules or {}), DEFAULTS),
        regions=REGIONS,
        fetched=bodies,
        reported=reported or {},
    )


def everyone_reports(value: float = 0.96) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (c, key): report(c, key, v)
        for c in (D1, D2, C1, C2)
        for key, v in (("industrial_standard_coverage", value), ("major_quality_incidents", 0))
    }


def by_county(standings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["county_code"]: s for s in standings["items"]}


def row(standing: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in standing["indicators"] if i["indicator"] == key)
    return found


def test_every_indicator_is_shown_for_every_county() -> None:
    """C2 has no allocation and wins 3 anyway: shown with its actual, no target, weight 0,
    and the set's bonus of 2 points each; D2 has none and wins none."""
    result = compute(
        inputs(
            [new_brands({D1: 2, C1: 1}, unallocated_credit=2), coverage()],
            brands={D1: 2, C1: 0, C2: 3},
            reported=everyone_reports(0.76),
        )
    )
    counties = by_county(result)
    c2 = row(counties[C2], "new_provincial_famous_brands")
    assert (c2["status"], c2["actual"], c2["target"], c2["weight"], c2["bonus"]) == (
        "not_allocated",
        3.0,
        None,
        0.0,
        6.0,
    )
    # C2: coverage 0.76/0.95 = 0.8 over weight 50 → 80, plus 3 × 2 = 86.
    assert counties[C2]["score"] == 86.0
    assert row(counties[D2], "new_provincial_famous_brands")["bonus"] == 0.0
    assert counties[D2]["score"] == 80.0
    # D1: (50 × 1 + 50 × 0.8) / 100 = 90; C1: (50 × 0 + 50 × 0.8) / 100 = 40.
    assert (counties[D1]["score"], counties[C1]["score"]) == (90.0, 40.0)


def test_missing_data_is_never_a_verdict() -> None:
    """C1 did not report its weighted coverage: not graded, not ranked, not criticized; D2 did
    not report the weightless veto: scored, but its commendation waits for the report."""
    reported = everyone_reports()
    del reported[(C1, "industrial_standard_coverage")]
    del reported[(D2, "major_quality_incidents")]
    result = compute(inputs([coverage(), incidents()], reported=reported))
    counties = by_county(result)
    c1 = counties[C1]
    assert (c1["score"], c1["grade"], c1["rank"], c1["outcome"]) == (
        None,
        None,
        None,
        "not_assessed",
    )
    assert c1["not_assessed"] == ["industrial_standard_coverage"]
    assert "not reported by 320321" in c1["outcome_reason"]
    d2 = counties[D2]
    assert (d2["score"], d2["grade"], d2["outcome"]) == (100.0, "excellent", "none")
    assert "veto indicator is not yet met" in d2["outcome_reason"]
    assert [s["county_code"] for s in result["items"]][-1] == C1


def test_mid_year_a_batch_figure_is_pending_and_a_continuous_one_projected() -> None:
    """On 30 June (181 of 365 days): the provincial list comes out on 8 December, so no
    county is judged on its zero; newly certified enterprises accrue all year and are
    projected: D1's 1 × 365/181 = 2.02 ≥ 2 is met, C1's 0 is at risk."""
    brands = new_brands({D1: 1, C1: 1}, cadence="batch", expected_on="12-08")
    certified = indicator(
        "new_certified_enterprises",
        source="certificates",
        measure={"kind": "new_certified_enterprises"},
        comparator="at_least",
        target=4,
        weight=50,
        allocations={D1: {"target": 2}, C1: {"target": 2}},
    )
    result = compute(
        inputs(
            [brands, certified],
            certificates={D1: 1},
            as_of=date(2007, 6, 30),
        )
    )
    assert result["provisional"] is True
    counties = by_county(result)
    d1, c1 = counties[D1], counties[C1]
    assert row(d1, "new_provincial_famous_brands")["status"] == "pending"
    assert row(d1, "new_provincial_famous_brands")["projected"] is None
    assert row(d1, "new_certified_enterprises")["status"] == "met"
    assert row(c1, "new_certified_enterprises")["status"] == "at_risk"
    assert (d1["score"], d1["provisional"], d1["outcome"]) == (100.0, True, "commended")
    # C1 is judged on the certified count alone: 0 → 0, a provisional criticism.
    assert (c1["score"], c1["outcome"]) == (0.0, "criticized")
    after = compute(inputs([brands, certified], certificates={D1: 1}, as_of=date(2007, 12, 10)))
    assert row(by_county(after)[D1], "new_provincial_famous_brands")["status"] == "at_risk"


def test_ranking_groups_and_the_quota_with_ties() -> None:
    """All or nothing: D1, D2 and C1 meet both (100), C2 meets coverage only (50). Overall
    D1, D2, C1 share rank 1; in their groups the districts share 1 and C1 is 1. A quota of 2
    cannot take three counties tied at rank 1, so none of them is commended; per group, one
    district each cannot take the tied pair, one county takes C1."""
    targets = [new_brands({D1: 1, D2: 1, C1: 1, C2: 1}), coverage()]
    brands = {D1: 1, D2: 1, C1: 1, C2: 0}
    base: dict[str, Any] = {"scoring": "all_or_nothing", "ranking_groups": GROUPS}
    plain = by_county(
        compute(inputs(targets, brands=brands, reported=everyone_reports(), rules=base))
    )
    assert {c: (s["rank"], s["group"], s["group_rank"]) for c, s in plain.items()} == {
        D1: (1, "districts", 1),
        D2: (1, "districts", 1),
        C1: (1, "counties", 1),
        C2: (4, "counties", 2),
    }
    assert row(plain[C2], "new_provincial_famous_brands")["credit"] == 0.0
    assert {c for c, s in plain.items() if s["outcome"] == "commended"} == {D1, D2, C1}
    quota = by_county(
        compute(
            inputs(
                targets,
                brands=brands,
                reported=everyone_reports(),
                rules={**base, "commendation_quota": 2},
            )
        )
    )
    assert {c for c, s in quota.items() if s["outcome"] == "commended"} == set()
    assert "beyond the commendation quota of 2" in quota[D1]["outcome_reason"]
    per_group = [{**g, "commendation_quota": 1} for g in GROUPS]
    grouped = by_county(
        compute(
            inputs(
                targets,
                brands=brands,
                reported=everyone_reports(),
                rules={**base, "ranking_groups": per_group},
            )
        )
    )
    assert {c for c, s in grouped.items() if s["outcome"] == "commended"} == {C1}


def test_the_resolved_rules_keep_the_groups() -> None:
    rules = resolve_rules(
        Rules.model_validate({"ranking_groups": GROUPS, "scoring": "stepped"}), DEFAULTS
    )
    assert rules.scoring is ScoringScheme.stepped
    assert rules.ranking_groups[0] == GroupRule("districts", "區", ("district",), None)


def test_the_city_rolls_up_by_arithmetic() -> None:
    """Coverage: (190 + 90 + 45 + 970) / (200 + 100 + 50 + 1000) = 1295 / 1350 = 0.959259,
    not the mean of the four rates (0.95 + 0.9 + 0.9 + 0.97) / 4 = 0.93. Passes: (9 + 1 + 0 +
    40) / (10 + 10 + 0 + 50) = 50/70. Incidents: C2 reported 1, and inspection found a
    mandatory-standard violation in D2 and a refusal in D2: 1 + 2 = 3 city-wide."""
    fractions = {D1: (190, 200), D2: (90, 100), C1: (45, 50), C2: (970, 1000)}
    reported = {
        (c, "industrial_standard_coverage"): report(
            c, "industrial_standard_coverage", round(n / d, 4), numerator=n, denominator=d
        )
        for c, (n, d) in fractions.items()
    }
    for c in (D1, D2, C1, C2):
        reported[(c, "major_quality_incidents")] = report(
            c, "major_quality_incidents", 1 if c == C2 else 0
        )
    spot = spot_check_stats({D1: (10, 9), D2: (10, 1), C2: (50, 40)})
    spot["findings_by_county"] = [
        {"county_code": D2, "mandatory_standard_violation": 1, "refused": 1, "total": 2}
    ]
    spot["findings_totals"] = {"mandatory_standard_violation": 1, "refused": 1, "total": 2}
    spot["finding_records"] = [
        {"id": "s1", "county_code": D2, "kinds": ["mandatory_standard_violation"]},
        {"id": "s2", "county_code": D2, "kinds": ["refused"]},
    ]
    pass_rate = indicator(
        "spot_check_pass_rate",
        source="spot_checks",
        measure={"kind": "pass_rate"},
        comparator="at_least",
        target=0.8,
        weight=50,
    )
    veto = incidents(findings=["mandatory_standard_violation", "refused", "unlicensed_referral"])
    result = compute(inputs([coverage(), pass_rate, veto], reported=reported, spot_checks=spot))
    city = result["city"]
    assert row(city, "industrial_standard_coverage")["actual"] == round(1295 / 1350, 6)
    assert row(city, "spot_check_pass_rate")["actual"] == round(50 / 70, 6)
    assert row(city, "major_quality_incidents")["actual"] == 3.0
    d2 = by_county(result)[D2]
    d2_veto = row(d2, "major_quality_incidents")
    assert (d2_veto["actual"], d2_veto["status"]) == (2.0, "missed")
    assert d2_veto["provenance"]["findings"]["records"] == ["s1", "s2"]
    assert d2["outcome"] == "criticized"
    # C1 checked nothing: its pass rate has no data and it is not assessed.
    assert by_county(result)[C1]["outcome"] == "not_assessed"
    partial = dict(reported)
    del partial[(C1, "industrial_standard_coverage")]
    late = compute(inputs([coverage()], reported=partial))["city"]
    coverage_row = row(late, "industrial_standard_coverage")
    assert (coverage_row["status"], coverage_row["reason"]) == (
        "no_data",
        "not yet reported by 320321",
    )


def test_a_year_end_report_not_yet_made_is_pending_but_a_silent_source_is_no_data() -> None:
    """On 30 June nobody has reported the year-end coverage: pending, and no county is
    unassessed for it; a batch count whose service did not answer has no data."""
    year_end = Indicator.model_validate({**coverage().model_dump(), "cadence": "batch"})
    brands = new_brands({D1: 1}, cadence="batch", expected_on="12-08")
    mid_year = inputs([year_end, brands], as_of=date(2007, 6, 30))
    key = next(iter(mid_year.fetched))
    mid_year.fetched[key] = Fetched(
        **{**mid_year.fetched[key].as_dict(), "ok": False, "body": None, "reason": "timeout"}
    )
    d1 = by_county(compute(mid_year))[D1]
    assert row(d1, "industrial_standard_coverage")["status"] == "pending"
    assert row(d1, "new_provincial_famous_brands")["status"] == "no_data"
    assert d1["not_assessed"] == ["new_provincial_famous_brands"]
    december = compute(inputs([year_end], as_of=date(2007, 12, 31)))
    assert by_county(december)[D1]["outcome"] == "not_assessed"


def test_a_city_level_value_replaces_the_roll_up_when_the_set_names_one() -> None:
    """Trainees are counted by the city's own office: its figure stands, not the counties'."""
    trainees = indicator(
        "agri_standardization_trainees",
        source="reported",
        measure={"kind": "reported_value", "unit": "count"},
        comparator="at_least",
        target=200,
        weight=50,
        allocations={D1: {"target": 100}, C1: {"target": 100}},
        city_value="city_agri_trainees",
    )
    state = inputs(
        [trainees], reported={(D1, "agri_standardization_trainees"): report(D1, "x", 120)}
    )
    state.references["city_agri_trainees"] = {
        "value": 230,
        "source": "市農委培訓台賬",
        "published_on": "2008-01-10",
    }
    city = row(compute(state)["city"], "agri_standardization_trainees")
    assert (city["actual"], city["status"]) == (230.0, "met")
    assert city["provenance"]["key"] == "city_agri_trainees"
    state.references.clear()
    missing = row(compute(state)["city"], "agri_standardization_trainees")
    assert (missing["status"], missing["reason"]) == (
        "no_data",
        "the city-level value 'city_agri_trainees' for 2007 is not recorded",
    )
