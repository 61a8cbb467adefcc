"""Standings of every county and of the city, computed from inputs already gathered.

Nothing here reads a database or the network: a run stores these inputs, and the same
inputs always give the same standings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from assessment import scoring
from assessment.catalogue import allocates_by_county, is_flow, reported_key, unit_of
from assessment.schemas import (
    CheckLevel,
    Comparator,
    Indicator,
    MeasureKind,
    Rating,
    Region,
    Source,
    Status,
    Unit,
)
from assessment.sources import ENDPOINTS, Fetched, StatsQuery

DEFAULT_LEVELS = (CheckLevel.national.value, CheckLevel.provincial.value)
TIE_BREAK = (
    "Higher score ranks first; at equal score (to 0.01) the county with fewer missed "
    "indicators ranks first; counties still equal share the rank (1, 2, 2, 4)."
)
SCORE_RULE = (
    "score = 100 × Σ(weight × attainment) / Σ(weight) over the indicators that apply to the "
    "county; an indicator with no data attains 0."
)


@dataclass
class Inputs:
    """Everything a standing is computed from."""

    year: int
    as_of: date
    target_set_version: int
    indicators: list[Indicator]
    rules: scoring.ResolvedRules
    regions: Sequence[Region]
    fetched: dict[str, Fetched] = field(default_factory=dict)
    reported: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Observation:
    actual: float | None
    inputs: dict[str, Any]
    provenance: dict[str, Any]
    reason: str | None = None


def query_for(indicator: Indicator) -> StatsQuery | None:
    """The `/stats` call an indicator's measure needs, or None for a reported value."""
    measure = indicator.measure
    if indicator.source is Source.reported:
        return None
    if indicator.source is Source.certificates and measure.families:
        return StatsQuery(Source.certificates, (("families", ",".join(sorted(measure.families))),))
    if indicator.source is Source.spot_checks:
        levels = sorted(level.value for level in measure.levels or []) or list(DEFAULT_LEVELS)
        return StatsQuery(Source.spot_checks, (("levels", ",".join(levels)),))
    return StatsQuery(indicator.source)


def queries_for(indicators: Sequence[Indicator]) -> list[StatsQuery]:
    unique = {q.key: q for i in indicators if (q := query_for(i)) is not None}
    return list(unique.values())


def applies_to(indicator: Indicator, county_code: str) -> bool:
    """Whether a county is assessed on the indicator."""
    if allocates_by_county(indicator) or indicator.comparator is Comparator.milestone:
        return not indicator.allocations or county_code in indicator.allocations
    return True


def _applies_to_counties(indicator: Indicator) -> bool:
    return not (allocates_by_county(indicator) and not indicator.allocations)


def spec_for(
    indicator: Indicator, county_code: str | None, references: dict[str, dict[str, Any]]
) -> scoring.TargetSpec:
    """The indicator's comparator with the county's allocation (or the city figure) applied."""
    allocation = indicator.allocations.get(county_code) if county_code else None
    value, low, high = indicator.target, indicator.low, indicator.high
    if allocation is not None:
        value = allocation.target if allocation.target is not None else value
        low = allocation.low if allocation.low is not None else low
        high = allocation.high if allocation.high is not None else high
    reference = None
    if indicator.reference is not None and indicator.reference in references:
        reference = float(references[indicator.reference]["value"])
    return scoring.TargetSpec(
        comparator=indicator.comparator,
        value=value,
        low=low,
        high=high,
        tolerance=indicator.tolerance,
        tolerance_unit=indicator.tolerance_unit,
        reference=reference,
        margin=indicator.margin,
    )


def display_target(spec: scoring.TargetSpec) -> float | None:
    """The single figure shown as `target`: the value, the reference plus margin, 0 or 1."""
    c = spec.comparator
    if c is Comparator.above_reference and spec.reference is not None:
        return round(spec.reference + spec.margin, 6)
    if c is Comparator.below_reference and spec.reference is not None:
        return round(spec.reference - spec.margin, 6)
    if c is Comparator.milestone:
        return 1.0
    if c is Comparator.zero:
        return 0.0
    return spec.value


def observe(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Observation:
    """The actual value of an indicator for a county (or the city when `county_code` is None)."""
    if indicator.source is Source.reported:
        return _observe_reported(indicator, county_code, inputs)
    query = query_for(indicator)
    assert query is not None
    fetched = inputs.fetched.get(query.key)
    provenance: dict[str, Any] = {"service": ENDPOINTS[indicator.source].service}
    if fetched is None or not fetched.ok or fetched.body is None:
        reason = fetched.reason if fetched else "not fetched"
        if fetched is not None:
            provenance.update(query=fetched.query, fetched_at=fetched.fetched_at)
        return Observation(None, {}, provenance, f"{indicator.source.value}: {reason}")
    provenance.update(query=fetched.query, fetched_at=fetched.fetched_at)
    body = fetched.body
    kind = indicator.measure.kind
    if kind in (MeasureKind.new_awards, MeasureKind.in_force):
        return _observe_brand_count(indicator, county_code, body, provenance)
    if kind is MeasureKind.international_share:
        return _observe_share(indicator, county_code, body, provenance)
    if kind is MeasureKind.new_certified_enterprises:
        return _observe_certified(county_code, body, provenance)
    return _observe_pass_rate(county_code, body, provenance)


def _county_row(body: dict[str, Any], county_code: str | None) -> tuple[dict[str, Any] | None, str]:
    """The county's `by_county` row (the totals for the city) and where it was read."""
    if county_code is None:
        return body["totals"], "totals"
    return _row(body["by_county"], county_code), f"by_county[county_code={county_code}]"


def _observe_certified(
    county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    row, where = _county_row(body, county_code)
    count = int((row or {}).get("new_certified_enterprises", 0))
    provenance["field"] = f"{where}.new_certified_enterprises"
    return Observation(float(count), {"new_certified_enterprises": count}, provenance)


def _observe_pass_rate(
    county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    row, where = _county_row(body, county_code)
    checked = int((row or {}).get("checked", 0))
    passed = int((row or {}).get("passed", 0))
    provenance["field"] = f"{where}.passed / {where}.checked"
    figures = {"checked": checked, "passed": passed}
    if checked == 0:
        return Observation(None, figures, provenance, "no samples checked")
    return Observation(round(passed / checked, 6), figures, provenance)


def _row(rows: list[dict[str, Any]], county_code: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("county_code") == county_code), None)


def _observe_brand_count(
    indicator: Indicator, county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    tier = indicator.measure.tier.value if indicator.measure.tier else ""
    name = indicator.measure.kind.value
    rows = [
        g
        for g in body["groups"]
        if g.get("tier") == tier and (county_code is None or g.get("county_code") == county_code)
    ]
    if county_code is None and body.get("by_tier"):
        rows = [t for t in body["by_tier"] if t.get("tier") == tier]
        provenance["field"] = f"by_tier[tier={tier}].{name}"
    else:
        provenance["field"] = f"groups[county_code={county_code or '*'}, tier={tier}].{name}"
    count = sum(int(r.get(name, 0)) for r in rows)
    return Observation(float(count), {name: count, "tier": tier}, provenance)


def _observe_share(
    indicator: Indicator, county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    tiers = [t.value for t in indicator.measure.tiers or []]
    if not tiers:
        row, where = _county_row(body, county_code)
        rows = [row] if row else []
    else:
        rows = [
            g
            for g in body["groups"]
            if g.get("tier") in tiers
            and (county_code is None or g.get("county_code") == county_code)
        ]
        where = f"groups[county_code={county_code or '*'}, tier in {','.join(tiers)}]"
    in_force = sum(int(r.get("in_force", 0)) for r in rows)
    international = sum(int(r.get("in_force_international", 0)) for r in rows)
    provenance["field"] = f"{where}.in_force_international / {where}.in_force"
    figures = {"in_force": in_force, "in_force_international": international}
    if in_force == 0:
        return Observation(None, figures, provenance, "no listings in force")
    return Observation(round(international / in_force, 6), figures, provenance)


REPORTED_STORE = {"service": "assessment", "store": "reported-values"}


def _observe_reported(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Observation:
    key = reported_key(indicator)
    if county_code is None:
        return _observe_reported_city(indicator, key, inputs)
    row = inputs.reported.get((county_code, key))
    if row is None:
        return Observation(
            None,
            {},
            dict(REPORTED_STORE),
            f"not reported by {county_code} on or before {inputs.as_of.isoformat()}",
        )
    provenance = {
        **REPORTED_STORE,
        "reported_value_id": row["id"],
        "reported_by": row["reported_by"],
        "reported_at": row["reported_at"],
        "measured_on": row["measured_on"],
        "evidence": row["evidence"],
    }
    return Observation(float(row["value"]), {"value": row["value"]}, provenance)


def _observe_reported_city(indicator: Indicator, key: str, inputs: Inputs) -> Observation:
    """The city figure of a reported indicator, rolled up from the counties it applies to."""
    counties = [r.code for r in inputs.regions if applies_to(indicator, r.code)]
    values = {
        c: float(inputs.reported[(c, key)]["value"])
        for c in counties
        if (c, key) in inputs.reported
    }
    missing = [c for c in counties if c not in values]
    unit = unit_of(indicator)
    provenance = {**REPORTED_STORE, "roll_up": _roll_up_rule(unit)}
    figures: dict[str, Any] = {"reported": values, "not_reported": missing}
    if not values:
        return Observation(None, figures, provenance, "no county has reported")
    if unit is Unit.flag:
        if any(v < 1 for v in values.values()):
            return Observation(0.0, figures, provenance)
        if missing:
            return Observation(None, figures, provenance, f"not reported by {', '.join(missing)}")
        return Observation(1.0, figures, provenance)
    if unit is Unit.rate:
        return Observation(round(sum(values.values()) / len(values), 6), figures, provenance)
    return Observation(sum(values.values()), figures, provenance)


def _roll_up_rule(unit: Unit) -> str:
    if unit is Unit.flag:
        return "reached when every county it applies to has reached it"
    if unit is Unit.rate:
        return "unweighted mean of the counties' reported rates"
    return "sum of the counties' reported counts"


def _evaluate_indicator(
    indicator: Indicator, county_code: str | None, inputs: Inputs, fraction: float
) -> dict[str, Any]:
    """One indicator of a county (or the city): actual, target, judgement and explanation."""
    observation = observe(indicator, county_code, inputs)
    spec = spec_for(indicator, county_code, inputs.references)
    reason = observation.reason
    actual = observation.actual
    if indicator.reference is not None and spec.reference is None:
        actual = None
        reason = f"reference value {indicator.reference!r} for {inputs.year} is not recorded"
    thresholds = indicator.thresholds
    green = thresholds.green if thresholds else inputs.rules.green
    amber = thresholds.amber if thresholds else inputs.rules.amber
    evaluation = scoring.evaluate(
        spec,
        actual,
        flow=is_flow(indicator),
        fraction=fraction,
        green=green,
        amber=amber,
        reason=reason,
    )
    return {
        "indicator": indicator.key,
        "name": indicator.name,
        "source": indicator.source.value,
        "unit": unit_of(indicator).value,
        "actual": actual,
        "target": display_target(spec),
        "comparator": indicator.comparator.value,
        "status": evaluation.status.value,
        "attainment": evaluation.attainment,
        "rating": evaluation.rating.value if evaluation.rating else None,
        "basis": evaluation.basis,
        "projected": evaluation.projected,
        "weight": indicator.weight,
        "veto": indicator.veto,
        "reason": evaluation.reason,
        "provenance": observation.provenance,
        "explanation": {
            "inputs": observation.inputs,
            "comparator": _describe_comparator(indicator, spec, evaluation, inputs.references),
            "formula": evaluation.formula,
            "thresholds": {"green": green, "amber": amber},
            "flow": is_flow(indicator),
        },
    }


def _describe_comparator(
    indicator: Indicator,
    spec: scoring.TargetSpec,
    evaluation: scoring.Evaluation,
    references: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The comparator as applied: its figures, the reference and its source, band, direction."""
    comparator: dict[str, Any] = {"name": indicator.comparator.value}
    for name in ("value", "low", "high", "tolerance", "reference", "margin"):
        figure = getattr(spec, name)
        if figure is not None and not (name == "margin" and figure == 0):
            comparator[name] = figure
    if spec.tolerance is not None:
        comparator["tolerance_unit"] = spec.tolerance_unit.value
    if indicator.reference is not None:
        comparator["reference_key"] = indicator.reference
        if indicator.reference in references:
            comparator["reference_source"] = references[indicator.reference]
    if evaluation.band is not None:
        band = evaluation.band
        comparator["band"] = band.describe()
        comparator["direction"] = (
            "lower is better"
            if indicator.comparator in scoring.LOWER_IS_BETTER
            else "higher is better"
            if band.high is None
            else "within the band"
        )
    return comparator


def _finish(rows: list[dict[str, Any]], rules: scoring.ResolvedRules) -> dict[str, Any]:
    """Contributions, score, grade and the worst status and rating of one standing's rows."""
    total_weight = sum(r["weight"] for r in rows)
    for row in rows:
        row["contribution"] = scoring.contribution(row["weight"], row["attainment"], total_weight)
        row["explanation"]["contribution"] = (
            f"100 × {row['weight']:g} × {row['attainment'] or 0:.4f} / {total_weight:g} "
            f"= {row['contribution']:.4f}"
        )
    score = scoring.weighted_score((r["weight"], r["attainment"]) for r in rows)
    grade = scoring.grade_of(score, rules.grades)
    statuses = [Status(r["status"]) for r in rows]
    worst_rating = scoring.worst_rating(Rating(r["rating"]) if r["rating"] else None for r in rows)
    return {
        "score": score,
        "grade": grade.grade,
        "grade_label": grade.label,
        "status": scoring.worst_status(statuses).value,
        "rating": worst_rating.value if worst_rating else None,
        "missed": sum(1 for s in statuses if s is Status.missed),
        "total_weight": total_weight,
        "indicators": rows,
    }


def _county_standings(inputs: Inputs, fraction: float) -> list[dict[str, Any]]:
    """Every configured county scored on the indicators that apply to it, before ranking."""
    items: list[dict[str, Any]] = []
    for region in inputs.regions:
        rows = [
            _evaluate_indicator(i, region.code, inputs, fraction)
            for i in inputs.indicators
            if applies_to(i, region.code) and _applies_to_counties(i)
        ]
        items.append(
            {
                "county_code": region.code,
                "county_name": region.name,
                "kind": region.kind,
                **_finish(rows, inputs.rules),
            }
        )
    return items


def _rank_and_judge(items: list[dict[str, Any]], rules: scoring.ResolvedRules) -> None:
    """Give each county its rank and outcome, then order them by rank."""
    ranks = scoring.rank([(s["county_code"], s["score"], s["missed"]) for s in items])
    for standing in items:
        standing["rank"] = ranks[standing["county_code"]]
        veto = [Status(r["status"]) for r in standing["indicators"] if r["veto"]]
        outcome, why = scoring.outcome_of(
            grade=standing["grade"],
            veto_statuses=veto,
            commended_grades=rules.commended_grades,
            criticized_grades=rules.criticized_grades,
        )
        standing["outcome"] = outcome.value
        standing["outcome_reason"] = why
    items.sort(key=lambda s: (s["rank"], s["county_code"]))


def _city_standing(inputs: Inputs, fraction: float) -> dict[str, Any]:
    """The city-wide roll-up over every indicator."""
    rows = [_evaluate_indicator(i, None, inputs, fraction) for i in inputs.indicators]
    return {
        "county_code": None,
        "county_name": "全市",
        "kind": "city",
        **_finish(rows, inputs.rules),
    }


def _meta(inputs: Inputs, fraction: float) -> dict[str, Any]:
    """Completeness of the inputs, the rules applied and how each source answered."""
    found = completeness(inputs)
    return {
        "completeness": found,
        "complete": all(v == "ok" for v in found.values()),
        "target_set_version": inputs.target_set_version,
        "year_elapsed": round(fraction, 6),
        "computed_at": datetime.now(UTC).isoformat(),
        "score_rule": SCORE_RULE,
        "tie_break": TIE_BREAK,
        "grades": [g.__dict__ for g in inputs.rules.grades],
        "commended_grades": inputs.rules.commended_grades,
        "criticized_grades": inputs.rules.criticized_grades,
        "sources": {
            key: {
                "query": f.query,
                "ok": f.ok,
                "reason": f.reason,
                "fetched_at": f.fetched_at,
                "elapsed_ms": f.elapsed_ms,
                "attempts": f.attempts,
            }
            for key, f in inputs.fetched.items()
        },
    }


def compute(inputs: Inputs) -> dict[str, Any]:
    """The standings response: every county, the city roll-up and the meta block."""
    fraction = scoring.year_fraction(inputs.year, inputs.as_of)
    items = _county_standings(inputs, fraction)
    _rank_and_judge(items, inputs.rules)
    return {
        "year": inputs.year,
        "as_of": inputs.as_of.isoformat(),
        "items": items,
        "city": _city_standing(inputs, fraction),
        "meta": _meta(inputs, fraction),
    }


def completeness(inputs: Inputs) -> dict[str, str]:
    """For each data service the target set reads: `ok` or why its figures are missing;
    plus the reference values the target set names."""
    result: dict[str, str] = {}
    for fetched in inputs.fetched.values():
        if fetched.ok:
            result.setdefault(fetched.source, "ok")
        else:
            result[fetched.source] = fetched.reason or "unavailable"
    wanted = sorted({i.reference for i in inputs.indicators if i.reference})
    missing = [key for key in wanted if key not in inputs.references]
    if wanted:
        result["reference_values"] = (
            "ok" if not missing else f"missing for {inputs.year}: {', '.join(missing)}"
        )
    return result


def strip_explanations(standings: dict[str, Any]) -> dict[str, Any]:
    """The list view: the same standings without the per-indicator explanations."""

    def trim(standing: dict[str, Any]) -> dict[str, Any]:
        return {
            **standing,
            "indicators": [
                {k: v for k, v in row.items() if k != "explanation"}
                for row in standing["indicators"]
            ],
        }

    return {
        **standings,
        "items": [trim(s) for s in standings["items"]],
        "city": trim(standings["city"]),
    }


def explain(standings: dict[str, Any], county_code: str) -> dict[str, Any] | None:
    """One county's standing with every figure explained."""
    standing = next((s for s in standings["items"] if s["county_code"] == county_code), None)
    if standing is None:
        return None
    meta = standings["meta"]
    tied = [
        s["county_code"]
        for s in standings["items"]
        if s["rank"] == standing["rank"] and s["county_code"] != county_code
    ]
    terms = " + ".join(f"{r['contribution']:.4f}" for r in standing["indicators"])
    return {
        "year": standings["year"],
        "as_of": standings["as_of"],
        **standing,
        "explanation": {
            "score": f"{SCORE_RULE} Here: {terms or '0'} = {standing['score']:.2f}",
            "rank": f"{TIE_BREAK} Rank {standing['rank']} of {len(standings['items'])}"
            + (f", shared with {', '.join(tied)}" if tied else ""),
            "grade": {
                "bands": meta["grades"],
                "result": f"score {standing['score']:.2f} → {standing['grade']} ({standing['grade_label']})",
            },
            "outcome": {
                "rule": "criticized when a veto indicator is missed or the grade is in the "
                "criticized band; commended when the grade is in the commended band and every "
                "veto indicator is met; otherwise none",
                "commended_grades": meta["commended_grades"],
                "criticized_grades": meta["criticized_grades"],
                "result": standing["outcome_reason"],
            },
            "status": "worst wins: missed > no_data > at_risk > met",
            "year_elapsed": meta["year_elapsed"],
        },
        "meta": {"completeness": meta["completeness"], "complete": meta["complete"]},
    }
