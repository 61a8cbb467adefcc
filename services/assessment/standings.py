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
from assessment.catalogue import applies_to, can_fall, is_flow, reported_key, unit_of
from assessment.schemas import (
    BrandTier,
    Cadence,
    CheckLevel,
    Comparator,
    Indicator,
    MeasureKind,
    Outcome,
    Over,
    Rating,
    Region,
    ScoringScheme,
    Source,
    Status,
    Unit,
)
from assessment.sources import ENDPOINTS, INCIDENT_RECORDS, Fetched, StatsQuery

DEFAULT_LEVELS = (CheckLevel.national.value, CheckLevel.provincial.value)
ALL_LEVELS = tuple(level.value for level in CheckLevel)
DEFAULT_FAMOUS_TIERS = (
    BrandTier.china_famous,
    BrandTier.provincial_famous,
    BrandTier.city_famous,
)
TIE_BREAK = (
    "Higher score ranks first; at equal score (to 0.01) the county with fewer missed "
    "indicators ranks first; counties still equal share the rank (1, 2, 2, 4). Counties not "
    "assessed are not ranked."
)
SCORE_RULE = (
    "score = 100 × Σ(weight × credit) / Σ(weight) over the weighted indicators the county is "
    "allocated and that have a verdict (pending ones wait), plus any bonus for figures achieved "
    "without an allocation, at most 100; the credit follows the indicator's scoring scheme. "
    "A county with a weighted indicator lacking data is not scored."
)
OUTCOME_RULE = (
    "not_assessed while a weighted indicator lacks data; criticized when a veto indicator is "
    "missed or the grade is in the criticized band; commended when the grade is in the "
    "commended band, every veto indicator is met and the county is within the commendation "
    "quota (of its ranking group, then overall; counties sharing a rank are admitted together "
    "or not at all); otherwise none"
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
    """The accepted figures that count, by (county, indicator)."""
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    famous_brand_tiers: tuple[BrandTier, ...] = DEFAULT_FAMOUS_TIERS
    under_review: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """Reports that do not count, by (county, indicator): the latest one when it is not
    accepted (submitted, pending review, or returned), whether or not an earlier accepted
    one counts."""


@dataclass
class Observation:
    actual: float | None
    inputs: dict[str, Any]
    provenance: dict[str, Any]
    reason: str | None = None
    unavailable: bool = False
    """The figure is missing because a source did not answer (not because it is not due)."""


PROGRAMME_QUERIES = {
    MeasureKind.metrology_pass_rate: StatsQuery(Source.spot_checks, (("programme", "metrology"),)),
    MeasureKind.special_equipment_overdue: StatsQuery(
        Source.spot_checks, (("programme", "special_equipment"),)
    ),
    MeasureKind.licensed_food_producers: StatsQuery(
        Source.certificates, (("kind", "food_production_licence"),)
    ),
}
COUNT_FIELDS = {
    MeasureKind.special_equipment_overdue: (
        "items_overdue",
        (
            "items_registered",
            "inspected",
            "failed",
            "items_major_hazard_overdue",
            "overdue_equipment_codes",
        ),
    ),
    MeasureKind.licensed_food_producers: ("licensed_enterprises", ("new_licences",)),
    MeasureKind.food_rectification_open: ("rectifying", ("supported", "closed", "total")),
}
"""The field a count measure reads from its county's row, and the fields shown beside it
(counts, or the records' identities where the stats list them)."""
INCIDENTS_QUERY = StatsQuery(Source.incidents)


def query_for(indicator: Indicator) -> StatsQuery | None:
    """The `/stats` call an indicator's measure needs, or None for a reported value."""
    measure = indicator.measure
    if indicator.source is Source.reported:
        return None
    if measure.kind in PROGRAMME_QUERIES:
        return PROGRAMME_QUERIES[measure.kind]
    if indicator.source is Source.certificates and measure.families:
        return StatsQuery(Source.certificates, (("families", ",".join(sorted(measure.families))),))
    if indicator.source is Source.spot_checks:
        return spot_check_query(measure.levels, DEFAULT_LEVELS)
    return StatsQuery(indicator.source)


def spot_check_query(levels: Sequence[CheckLevel] | None, default: Sequence[str]) -> StatsQuery:
    chosen = sorted(level.value for level in levels or []) or sorted(default)
    return StatsQuery(Source.spot_checks, (("levels", ",".join(chosen)),))


def findings_query(indicator: Indicator) -> StatsQuery | None:
    """The spot-check stats whose findings a reported count adds, or None."""
    if not indicator.measure.findings:
        return None
    return spot_check_query(indicator.measure.findings_levels, ALL_LEVELS)


def incidents_query(indicator: Indicator) -> StatsQuery | None:
    """The incident stats whose confirmed major incidents a reported count adds, or None."""
    if indicator.source is not Source.reported or not indicator.measure.incidents:
        return None
    return INCIDENTS_QUERY


def queries_for(indicators: Sequence[Indicator]) -> list[StatsQuery]:
    wanted = [
        q
        for i in indicators
        for q in (query_for(i), findings_query(i), incidents_query(i))
        if q is not None
    ]
    unique = {q.key: q for q in wanted}
    return list(unique.values())


def over_of(indicator: Indicator) -> Over:
    """Above an `about` band: met for a count accumulated over the year, missed for a level."""
    if indicator.over is not None:
        return indicator.over
    return Over.met if is_flow(indicator) else Over.missed


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
        over=over_of(indicator),
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


def _fetched_body(
    query: StatsQuery, inputs: Inputs, provenance: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """The body of a stats call with its provenance filled in, or why there is none."""
    fetched = inputs.fetched.get(query.key)
    if fetched is not None:
        provenance.update(query=fetched.query, fetched_at=fetched.fetched_at)
    if fetched is None or not fetched.ok or fetched.body is None:
        reason = fetched.reason if fetched else "not fetched"
        return None, f"{query.source.value}: {reason}"
    return fetched.body, None


def observe(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Observation:
    """The actual value of an indicator for a county (or the city when `county_code` is None)."""
    if indicator.source is Source.reported:
        return _observe_reported(indicator, county_code, inputs)
    query = query_for(indicator)
    assert query is not None
    provenance: dict[str, Any] = {"service": ENDPOINTS[indicator.source].service}
    body, problem = _fetched_body(query, inputs, provenance)
    if body is None:
        return Observation(None, {}, provenance, problem, unavailable=True)
    kind = indicator.measure.kind
    if kind in (MeasureKind.new_awards, MeasureKind.in_force):
        tier = indicator.measure.tier.value if indicator.measure.tier else ""
        return _observe_brand_count(kind.value, tier, county_code, body, provenance)
    if kind is MeasureKind.new_gi_products:
        tier = BrandTier.geographical_indication.value
        return _observe_brand_count(
            MeasureKind.new_awards.value, tier, county_code, body, provenance
        )
    if kind is MeasureKind.metrology_pass_rate:
        return _observe_metrology(county_code, body, provenance)
    if kind in COUNT_FIELDS:
        name, beside = COUNT_FIELDS[kind]
        return _observe_count(name, beside, county_code, body, provenance)
    if kind is MeasureKind.confirmed_major_incidents:
        found = _incidents_in(indicator, county_code, body, provenance)
        figures = {
            "confirmed_major": found.total,
            "by_kind": found.counts,
            "incident_records": found.records,
            "named": _name_incidents(found.records),
        }
        return Observation(float(found.total), figures, provenance)
    if kind is MeasureKind.awards_won:
        return _observe_awards(indicator, county_code, body, provenance)
    if kind is MeasureKind.international_share:
        tiers = [t.value for t in indicator.measure.tiers or inputs.famous_brand_tiers]
        return _observe_share(tiers, county_code, body, provenance)
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


def _observe_metrology(
    county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    """Instruments conforming over instruments checked: a rate whose numerator and
    denominator add up across counties, so the city's is arithmetic."""
    row, where = _county_row(body, county_code)
    row = row or {}
    checked = int(row.get("instruments_checked", 0))
    nonconforming = int(row.get("instruments_nonconforming", 0))
    provenance["field"] = (
        f"({where}.instruments_checked - {where}.instruments_nonconforming) "
        f"/ {where}.instruments_checked"
    )
    figures = {
        "checks": int(row.get("checked", 0)),
        "checks_nonconforming": int(row.get("nonconforming", 0)),
        "instruments_checked": checked,
        "instruments_nonconforming": nonconforming,
        "numerator": checked - nonconforming,
        "denominator": checked,
    }
    if checked == 0:
        return Observation(None, figures, provenance, "no instruments checked")
    return Observation(round((checked - nonconforming) / checked, 6), figures, provenance)


def _observe_count(
    name: str,
    beside: tuple[str, ...],
    county_code: str | None,
    body: dict[str, Any],
    provenance: dict[str, Any],
) -> Observation:
    """One count of the county's row (the totals for the city), with the fields beside it."""
    row, where = _county_row(body, county_code)
    row = row or {}
    count = int(row.get(name, 0))
    provenance["field"] = f"{where}.{name}"
    figures: dict[str, Any] = {name: count}
    for other in beside:
        value = row.get(other)
        figures[other] = list(value) if isinstance(value, list) else int(value or 0)
    return Observation(float(count), figures, provenance)


def _observe_awards(
    indicator: Indicator, county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    """Awards won in the year and not revoked, of the chosen kinds (default every kind)."""
    row, where = _county_row(body, county_code)
    row = row or {}
    by_kind = {str(k): int(v) for k, v in (row.get("by_kind") or {}).items()}
    kinds = indicator.measure.award_kinds
    figures: dict[str, Any] = {
        "awards": int(row.get("awards", 0)),
        "by_kind": by_kind,
        "by_level": dict(row.get("by_level") or {}),
    }
    if kinds:
        count = sum(by_kind.get(k, 0) for k in kinds)
        provenance["field"] = f"Σ {where}.by_kind[{','.join(kinds)}]"
        figures["kinds"] = list(kinds)
    else:
        count = figures["awards"]
        provenance["field"] = f"{where}.awards"
    return Observation(float(count), figures, provenance)


def _incidents_in(
    indicator: Indicator, county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Findings:
    """The confirmed major incidents of the chosen kinds (default every kind) in a county (or
    the city), counted by kind from the stats, with each record the stats name."""
    kinds = [k.value for k in indicator.measure.incidents or []]
    rows = [
        r for r in body["by_county"] if county_code is None or r.get("county_code") == county_code
    ]
    counts: dict[str, int] = {}
    for row in rows:
        for kind, number in (row.get("by_kind") or {}).items():
            if int(number) and (not kinds or kind in kinds):
                counts[kind] = counts.get(kind, 0) + int(number)
    if not kinds:
        unnamed = sum(int(r.get("confirmed_major", 0)) for r in rows) - sum(counts.values())
        if unnamed > 0:
            counts["kind_not_given"] = unnamed
    chosen = f"[{','.join(kinds)}]" if kinds else ""
    where = f"by_county[county_code={county_code or '*'}]"
    provenance["field"] = f"Σ {where}.by_kind{chosen}"
    ids = {i for row in rows for i in row.get("confirmed_major_ids") or []}
    records = [
        r
        for r in body.get(INCIDENT_RECORDS) or [{"id": i} for i in sorted(ids)]
        if r.get("id") in ids and (not kinds or r.get("kind") in kinds or "kind" not in r)
    ]
    records.sort(key=lambda r: (str(r.get("occurred_on") or ""), str(r["id"])))
    provenance["records"] = [r["id"] for r in records]
    return Findings(counts, records, provenance, None)


def _name_incidents(records: list[dict[str, Any]]) -> list[str]:
    """Each incident record as the explanation names it: id, kind and day it occurred."""
    return [
        f"incident {r['id']} ({r.get('kind', 'kind unknown')}, occurred on "
        f"{r.get('occurred_on', 'an unknown day')})"
        + (f"; not read: {r['unavailable']}" if r.get("unavailable") else "")
        for r in records
    ]


def _row(rows: list[dict[str, Any]], county_code: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("county_code") == county_code), None)


def _observe_brand_count(
    name: str, tier: str, county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
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
    tiers: list[str], county_code: str | None, body: dict[str, Any], provenance: dict[str, Any]
) -> Observation:
    """In-force listings of `tiers` made to international standards over all in force."""
    rows = [
        g
        for g in body["groups"]
        if g.get("tier") in tiers and (county_code is None or g.get("county_code") == county_code)
    ]
    where = f"groups[county_code={county_code or '*'}, tier in {','.join(tiers)}]"
    in_force = sum(int(r.get("in_force", 0)) for r in rows)
    international = sum(int(r.get("in_force_international", 0)) for r in rows)
    provenance["field"] = f"Σ {where}.in_force_international / Σ {where}.in_force"
    figures = {"in_force": in_force, "in_force_international": international, "tiers": tiers}
    if in_force == 0:
        return Observation(None, figures, provenance, "no listings in force")
    return Observation(round(international / in_force, 6), figures, provenance)


REPORTED_STORE = {"service": "assessment", "store": "reported-values"}


def _reported_row(inputs: Inputs, county_code: str, key: str) -> dict[str, Any] | None:
    return inputs.reported.get((county_code, key))


def _reported_provenance(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **REPORTED_STORE,
        "reported_value_id": row["id"],
        "reported_by": row["reported_by"],
        "reported_at": row["reported_at"],
        "measured_on": row["measured_on"],
        "evidence": row["evidence"],
    }


def _observe_reported(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Observation:
    key = reported_key(indicator)
    if county_code is None:
        if indicator.city_value is not None:
            return _observe_city_value(indicator.city_value, inputs)
        return _observe_reported_city(indicator, key, inputs)
    row = _reported_row(inputs, county_code, key)
    review = inputs.under_review.get((county_code, key))
    if row is None and review is not None:
        observation = Observation(
            None,
            {"under_review": {"value": review["value"], "state": review["state"]}},
            {**REPORTED_STORE, "reported_value_id": review["id"]},
            review_reason(review),
        )
    elif row is None:
        observation = Observation(
            None,
            {},
            dict(REPORTED_STORE),
            f"not reported by {county_code} on or before {inputs.as_of.isoformat()}",
        )
    else:
        figures: dict[str, Any] = {"value": row["value"]}
        if row.get("denominator") is not None:
            figures.update(numerator=row["numerator"], denominator=row["denominator"])
        observation = Observation(float(row["value"]), figures, _reported_provenance(row))
    if indicator.measure.findings or indicator.measure.incidents:
        return _with_findings(indicator, county_code, observation, inputs)
    return observation


def review_reason(review: dict[str, Any]) -> str:
    """Why a report under review does not count."""
    if review["state"] == "returned":
        return (
            f"{review['value']:g} was returned by the reviewer ({review.get('comment') or ''}) "
            "and is not counted until a corrected figure is accepted"
        )
    return f"{review['value']:g} was submitted and is pending review: not counted until accepted"


def _review_of(indicator: Indicator, county_code: str | None, inputs: Inputs) -> dict[str, Any]:
    """The figure beside a county's indicator while its latest report is under review."""
    if county_code is None or indicator.source is not Source.reported:
        return {}
    review = inputs.under_review.get((county_code, reported_key(indicator)))
    if review is None:
        return {}
    return {
        "review": {
            "state": review["state"],
            "value": review["value"],
            "reported_value_id": review["id"],
            "submitted_at": review["reported_at"],
            "comment": review.get("comment"),
        }
    }


@dataclass
class Findings:
    """The inspection service's findings of the chosen kinds in a county (or the city)."""

    counts: dict[str, int] | None
    records: list[dict[str, Any]]
    provenance: dict[str, Any]
    problem: str | None

    @property
    def total(self) -> int:
        return sum((self.counts or {}).values())


def findings_of(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Findings:
    """Counted from the spot-check stats, with each contributing record."""
    kinds = [kind.value for kind in indicator.measure.findings or []]
    query = findings_query(indicator)
    assert query is not None
    provenance: dict[str, Any] = {"service": ENDPOINTS[Source.spot_checks].service}
    body, problem = _fetched_body(query, inputs, provenance)
    if body is None:
        return Findings(None, [], provenance, problem)
    if county_code is None:
        found: dict[str, Any] = body.get("findings_totals") or {}
        provenance["field"] = f"findings_totals.{{{','.join(kinds)}}}"
    else:
        found = _row(body.get("findings_by_county") or [], county_code) or {}
        provenance["field"] = f"findings_by_county[county_code={county_code}].{{{','.join(kinds)}}}"
    counts = {kind: int(found.get(kind, 0)) for kind in kinds}
    records = [
        {**r, "kinds": [k for k in r.get("kinds") or [] if k in kinds]}
        for r in body.get("finding_records") or []
        if (county_code is None or r.get("county_code") == county_code)
        and set(r.get("kinds") or []) & set(kinds)
    ]
    provenance["records"] = [r.get("id") for r in records]
    return Findings(counts, records, provenance, None)


def incidents_of(indicator: Indicator, county_code: str | None, inputs: Inputs) -> Findings:
    """The inspection service's confirmed major incidents a reported count adds."""
    provenance: dict[str, Any] = {"service": ENDPOINTS[Source.incidents].service}
    body, problem = _fetched_body(INCIDENTS_QUERY, inputs, provenance)
    if body is None:
        return Findings(None, [], provenance, problem)
    return _incidents_in(indicator, county_code, body, provenance)


def _with_findings(
    indicator: Indicator, county_code: str | None, reported: Observation, inputs: Inputs
) -> Observation:
    """A reported count plus the inspection service's findings and confirmed major
    incidents: any occurrence is a figure above zero even while a report is missing; zero
    needs every report, the findings and the incidents."""
    figures = dict(reported.inputs)
    provenance = dict(reported.provenance)
    added: list[Findings] = []
    if indicator.measure.findings:
        findings = findings_of(indicator, county_code, inputs)
        figures.update(findings=findings.counts, finding_records=findings.records)
        provenance["findings"] = findings.provenance
        added.append(findings)
    if indicator.measure.incidents:
        incidents = incidents_of(indicator, county_code, inputs)
        figures.update(
            incidents=incidents.counts,
            incident_records=incidents.records,
            incidents_named=_name_incidents(incidents.records),
        )
        provenance["incidents"] = incidents.provenance
        added.append(incidents)
    known = _known_count(reported) + sum(found.total for found in added)
    reasons = [r for r in (reported.reason, *(found.problem for found in added)) if r]
    if known > 0:
        return Observation(float(known), figures, provenance, "; ".join(reasons) or None)
    missing = any(found.counts is None for found in added)
    if reported.actual is None or missing:
        return Observation(None, figures, provenance, "; ".join(reasons), unavailable=missing)
    return Observation(0.0, figures, provenance)


def _known_count(observation: Observation) -> float:
    """What was reported so far: the county's figure, or the sum of the counties' reports."""
    if observation.actual is not None:
        return observation.actual
    reported = observation.inputs.get("reported")
    return float(sum(reported.values())) if isinstance(reported, dict) else 0.0


def _observe_city_value(key: str, inputs: Inputs) -> Observation:
    """The city figure the target set names as a reference value."""
    provenance: dict[str, Any] = {"service": "assessment", "store": "reference-values", "key": key}
    figure = inputs.references.get(key)
    if figure is None:
        return Observation(
            None, {}, provenance, f"the city-level value {key!r} for {inputs.year} is not recorded"
        )
    provenance["reference_source"] = figure
    return Observation(float(figure["value"]), {"value": figure["value"]}, provenance)


def _observe_reported_city(indicator: Indicator, key: str, inputs: Inputs) -> Observation:
    """The city figure of a reported indicator: arithmetic over the counties' reports, no
    figure while a county it applies to has not reported."""
    required = [r.code for r in inputs.regions if applies_to(indicator, r.code)]
    rows = {
        r.code: row
        for r in inputs.regions
        if (row := _reported_row(inputs, r.code, key)) is not None
    }
    values = {code: float(row["value"]) for code, row in rows.items()}
    missing = [c for c in required if c not in values]
    unit = unit_of(indicator)
    provenance = {**REPORTED_STORE, "roll_up": _roll_up_rule(unit, indicator)}
    figures: dict[str, Any] = {"reported": values, "not_reported": missing}
    if unit is Unit.flag:
        if any(values.get(c, 1.0) < 1 for c in required):
            return Observation(0.0, figures, provenance)
        if missing:
            return Observation(None, figures, provenance, f"not reported by {', '.join(missing)}")
        return Observation(1.0, figures, provenance)
    if unit is Unit.rate:
        return _city_rate(rows, missing, figures, provenance)
    total = sum(values.values())
    observation = Observation(total, figures, provenance)
    if missing:
        observation = Observation(
            None, figures, provenance, f"not yet reported by {', '.join(missing)}"
        )
    if indicator.measure.findings or indicator.measure.incidents:
        return _with_findings(indicator, None, observation, inputs)
    if indicator.comparator is Comparator.zero and total > 0:
        return Observation(total, figures, provenance)
    return observation


def _city_rate(
    rows: dict[str, dict[str, Any]],
    missing: list[str],
    figures: dict[str, Any],
    provenance: dict[str, Any],
) -> Observation:
    """Σ numerators / Σ denominators of every county's report."""
    without = sorted(c for c, row in rows.items() if row.get("denominator") is None)
    figures["without_numerator_and_denominator"] = without
    if missing or without:
        parts = []
        if missing:
            parts.append(f"not yet reported by {', '.join(missing)}")
        if without:
            parts.append(f"reported without numerator and denominator by {', '.join(without)}")
        return Observation(None, figures, provenance, "; ".join(parts))
    numerator = sum(float(row["numerator"]) for row in rows.values())
    denominator = sum(float(row["denominator"]) for row in rows.values())
    figures.update(numerator=numerator, denominator=denominator)
    return Observation(round(numerator / denominator, 6), figures, provenance)


def _roll_up_rule(unit: Unit, indicator: Indicator) -> str:
    if unit is Unit.flag:
        return "reached when every county it applies to has reached it"
    if unit is Unit.rate:
        return "Σ numerator / Σ denominator of every county's report"
    if indicator.measure.findings or indicator.measure.incidents:
        added = [
            name
            for name, wanted in (
                ("findings", indicator.measure.findings),
                ("confirmed major incidents", indicator.measure.incidents),
            )
            if wanted
        ]
        return "sum of every county's reported count plus the inspection service's " + " and ".join(
            added
        )
    return "sum of every county's reported count, once every county it applies to has reported"


def pending_until(indicator: Indicator, inputs: Inputs, fraction: float) -> date | None:
    """The day a batch figure is expected, while `as_of` is before it (else None)."""
    if indicator.cadence is not Cadence.batch or fraction >= 1.0:
        return None
    month, day = (int(part) for part in (indicator.expected_on or "12-31").split("-"))
    expected = date(inputs.year, month, min(day, 28 if month == 2 else day))
    return expected if inputs.as_of < expected else None


def _thresholds(indicator: Indicator, rules: scoring.ResolvedRules) -> tuple[float, float]:
    if indicator.thresholds:
        return indicator.thresholds.green, indicator.thresholds.amber
    return rules.green, rules.amber


def _evaluate_indicator(
    indicator: Indicator, county_code: str | None, inputs: Inputs, fraction: float
) -> dict[str, Any]:
    """One indicator of a county (or the city): actual, target, judgement and explanation."""
    observation = observe(indicator, county_code, inputs)
    if county_code is not None and not applies_to(indicator, county_code):
        return _not_allocated(indicator, observation)
    spec = spec_for(indicator, county_code, inputs.references)
    reason = observation.reason
    actual = observation.actual
    unavailable = observation.unavailable
    if indicator.reference is not None and spec.reference is None:
        actual, unavailable = None, True
        reason = f"reference value {indicator.reference!r} for {inputs.year} is not recorded"
    green, amber = _thresholds(indicator, inputs.rules)
    scheme = indicator.scoring or inputs.rules.scoring
    stepped = (
        indicator.stepped_credit
        if indicator.stepped_credit is not None
        else inputs.rules.stepped_credit
    )
    waits_for = pending_until(indicator, inputs, fraction)
    evaluation = scoring.evaluate(
        spec,
        actual,
        flow=is_flow(indicator) and indicator.cadence is Cadence.continuous,
        fraction=fraction,
        green=green,
        amber=amber,
        reason=reason,
        scheme=scheme,
        stepped_credit=stepped,
        pending_until=None if unavailable else waits_for,
        can_fall=can_fall(indicator),
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
        "scoring": scheme.value,
        "credit": evaluation.credit,
        "bonus": None,
        "reason": evaluation.reason if evaluation.reason else reason,
        "provenance": observation.provenance,
        "explanation": {
            "inputs": observation.inputs,
            "comparator": _describe_comparator(indicator, spec, evaluation, inputs.references),
            "formula": evaluation.formula,
            "scoring": _describe_scoring(scheme, stepped, amber, evaluation),
            "thresholds": {"green": green, "amber": amber},
            "flow": is_flow(indicator),
            "cadence": indicator.cadence.value,
            **({"expected_on": waits_for.isoformat()} if waits_for else {}),
        },
        **_under_review(indicator, county_code, inputs, evaluation.status),
    }


def _under_review(
    indicator: Indicator, county_code: str | None, inputs: Inputs, status: Status
) -> dict[str, Any]:
    """A report not accepted is shown beside the indicator, never counted; a submitted one
    makes an indicator without an accepted figure `pending_review` instead of lacking data (a
    batch figure not yet due stays `pending`)."""
    review = _review_of(indicator, county_code, inputs)
    if not review:
        return {}
    if review["review"]["state"] == "submitted" and status is Status.no_data:
        return {**review, "status": Status.pending_review.value}
    return review


def _not_allocated(indicator: Indicator, observation: Observation) -> dict[str, Any]:
    """An indicator the county has no allocation of: its actual, no target, no weight, and
    the set's bonus for what it achieved anyway."""
    units = 0.0
    if observation.actual is not None and observation.actual > 0:
        units = 1.0 if unit_of(indicator) is Unit.flag else observation.actual
    bonus = round(units * indicator.unallocated_credit, 4) if indicator.unallocated_credit else None
    credit_rule = (
        f"{indicator.unallocated_credit:g} points per unit achieved: {units:g} × "
        f"{indicator.unallocated_credit:g} = {bonus or 0:g}"
        if indicator.unallocated_credit
        else "the target set gives no credit for it"
    )
    return {
        "indicator": indicator.key,
        "name": indicator.name,
        "source": indicator.source.value,
        "unit": unit_of(indicator).value,
        "actual": observation.actual,
        "target": None,
        "comparator": indicator.comparator.value,
        "status": Status.not_allocated.value,
        "attainment": None,
        "rating": None,
        "basis": None,
        "projected": None,
        "weight": 0.0,
        "veto": indicator.veto,
        "scoring": None,
        "credit": None,
        "bonus": bonus,
        "reason": "no allocation for this county: shown, not judged"
        + (f" ({observation.reason})" if observation.reason else ""),
        "provenance": observation.provenance,
        "explanation": {
            "inputs": observation.inputs,
            "comparator": {"name": indicator.comparator.value, "allocation": None},
            "formula": "not allocated: weight 0",
            "scoring": credit_rule,
            "flow": is_flow(indicator),
            "cadence": indicator.cadence.value,
        },
    }


def _describe_scoring(
    scheme: ScoringScheme, stepped: float, amber: float, evaluation: scoring.Evaluation
) -> str:
    rule = {
        ScoringScheme.proportional: "credit = attainment",
        ScoringScheme.all_or_nothing: "credit = 1 when met, else 0",
        ScoringScheme.stepped: (
            f"credit = 1 when met, {stepped:g} when the attainment is at least {amber:g}, else 0"
        ),
    }[scheme]
    if evaluation.credit is None:
        return f"{scheme.value}: {rule}; no credit while {evaluation.status.value}"
    return f"{scheme.value}: {rule} → {evaluation.credit:.4f}"


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
    if indicator.comparator is Comparator.about:
        comparator["over"] = spec.over.value
        comparator["over_rule"] = (
            "a figure above the band counts as met"
            + (
                " (set by the target set)"
                if indicator.over
                else " (default for a count of the year)"
            )
            if spec.over is Over.met
            else "a figure above the band is missed"
            + (" (set by the target set)" if indicator.over else " (default for a level to hold)")
        )
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
    """Contributions, score, grade and the worst status and rating of one standing's rows.

    Scored rows are the weighted ones with a verdict; a weighted row without data leaves the
    standing unscored (`not_assessed` names them)."""
    counted = [
        r
        for r in rows
        if r["weight"] > 0 and r["status"] not in (Status.pending.value, Status.not_allocated.value)
    ]
    lacking = [
        r["indicator"]
        for r in counted
        if r["status"] in (Status.no_data.value, Status.pending_review.value)
    ]
    total_weight = sum(r["weight"] for r in counted)
    bonus = round(sum(r["bonus"] or 0.0 for r in rows), 4)
    counted_ids = {id(r) for r in counted}
    for row in rows:
        scored = id(row) in counted_ids and total_weight > 0
        row["contribution"] = (
            scoring.contribution(row["weight"], row["credit"], total_weight) if scored else 0.0
        )
        row["explanation"]["contribution"] = (
            f"100 × {row['weight']:g} × {row['credit'] or 0:.4f} / {total_weight:g} "
            f"= {row['contribution']:.4f}"
            if scored
            else f"not scored ({row['status']}"
            + (f", bonus {row['bonus']:g} points)" if row["bonus"] else ")")
        )
    score = None
    if not lacking:
        score = scoring.weighted_score(((r["weight"], r["credit"]) for r in counted), bonus=bonus)
    grade = scoring.grade_of(score, rules.grades) if score is not None else None
    statuses = [Status(r["status"]) for r in rows]
    worst_rating = scoring.worst_rating(Rating(r["rating"]) if r["rating"] else None for r in rows)
    return {
        "score": score,
        "grade": grade.grade if grade else None,
        "grade_label": grade.label if grade else None,
        "status": scoring.worst_status(statuses).value,
        "rating": worst_rating.value if worst_rating else None,
        "missed": sum(1 for s in statuses if s is Status.missed),
        "total_weight": total_weight,
        "bonus": bonus,
        "not_assessed": lacking,
        "indicators": rows,
    }


def _county_standings(inputs: Inputs, fraction: float) -> list[dict[str, Any]]:
    """Every configured county on every indicator, before ranking."""
    items: list[dict[str, Any]] = []
    groups = {kind: g for g in inputs.rules.ranking_groups for kind in g.kinds}
    for region in inputs.regions:
        rows = [_evaluate_indicator(i, region.code, inputs, fraction) for i in inputs.indicators]
        group = groups.get(region.kind)
        items.append(
            {
                "county_code": region.code,
                "county_name": region.name,
                "kind": region.kind,
                "group": group.group if group else None,
                "group_label": group.label if group else None,
                "provisional": fraction < 1.0,
                **_finish(rows, inputs.rules),
            }
        )
    return items


def _not_assessed_reason(standing: dict[str, Any]) -> str:
    rows = {r["indicator"]: r for r in standing["indicators"]}
    if standing["not_assessed"]:
        named = "; ".join(
            f"{key} ({rows[key]['reason'] or 'no data'})" for key in standing["not_assessed"]
        )
        reason = f"not assessed: no data for weighted indicators {named}"
    else:
        reason = "not assessed: every weighted indicator is still pending"
    if any(r["veto"] and r["status"] == Status.missed.value for r in rows.values()):
        reason += "; a veto indicator is already missed"
    return reason


def _ranks(items: list[dict[str, Any]]) -> dict[str, int]:
    return scoring.rank([(s["county_code"], s["score"], s["missed"]) for s in items])


def _rank_and_judge(items: list[dict[str, Any]], rules: scoring.ResolvedRules) -> None:
    """Rank the assessed counties overall and in their group, judge each, apply the quotas,
    then order them by rank (counties not assessed last)."""
    assessed = [s for s in items if s["score"] is not None]
    ranks = _ranks(assessed)
    group_ranks: dict[str, int] = {}
    for group in rules.ranking_groups:
        group_ranks.update(_ranks([s for s in assessed if s["group"] == group.group]))
    candidates: list[dict[str, Any]] = []
    for standing in items:
        code = standing["county_code"]
        standing["rank"] = ranks.get(code)
        standing["group_rank"] = group_ranks.get(code)
        if standing["score"] is None:
            standing["outcome"] = Outcome.not_assessed.value
            standing["outcome_reason"] = _not_assessed_reason(standing)
            continue
        veto = [Status(r["status"]) for r in standing["indicators"] if r["veto"]]
        outcome, why = scoring.outcome_of(
            grade=standing["grade"],
            veto_statuses=[v for v in veto if v is not Status.not_allocated],
            commended_grades=rules.commended_grades,
            criticized_grades=rules.criticized_grades,
        )
        standing["outcome"] = outcome.value
        standing["outcome_reason"] = why
        if outcome is Outcome.commended:
            candidates.append(standing)
    _apply_quotas(candidates, rules)
    items.sort(key=lambda s: (s["rank"] is None, s["rank"] or 0, s["county_code"]))


def _apply_quotas(candidates: list[dict[str, Any]], rules: scoring.ResolvedRules) -> None:
    """At most the quota of each group, then overall, are commended, best rank first."""
    admitted = {s["county_code"] for s in candidates}
    for group in rules.ranking_groups:
        members = [
            (s["county_code"], s["group_rank"]) for s in candidates if s["group"] == group.group
        ]
        kept = scoring.within_quota(members, group.commendation_quota)
        for code, position in members:
            if code not in kept:
                admitted.discard(code)
                _cut(
                    candidates, code, f"rank {position} of {group.label}", group.commendation_quota
                )
    overall = [(s["county_code"], s["rank"]) for s in candidates if s["county_code"] in admitted]
    kept = scoring.within_quota(overall, rules.commendation_quota)
    for code, position in overall:
        if code not in kept:
            _cut(candidates, code, f"rank {position} overall", rules.commendation_quota)


def _cut(candidates: list[dict[str, Any]], code: str, where: str, quota: int | None) -> None:
    standing = next(s for s in candidates if s["county_code"] == code)
    standing["outcome"] = Outcome.none.value
    standing["outcome_reason"] = (
        f"grade {standing['grade']} would commend, but {where} is beyond the commendation "
        f"quota of {quota} (counties sharing a rank are admitted together or not at all)"
    )


def _city_standing(inputs: Inputs, fraction: float) -> dict[str, Any]:
    """The city-wide roll-up over every indicator."""
    rows = [_evaluate_indicator(i, None, inputs, fraction) for i in inputs.indicators]
    return {
        "county_code": None,
        "county_name": "全市",
        "kind": "city",
        "provisional": fraction < 1.0,
        **_finish(rows, inputs.rules),
    }


def _meta(inputs: Inputs, fraction: float) -> dict[str, Any]:
    """Completeness of the inputs, the rules applied and how each source answered."""
    found = completeness(inputs)
    rules = inputs.rules
    return {
        "completeness": found,
        "complete": all(v == "ok" for v in found.values()),
        "provisional": fraction < 1.0,
        "target_set_version": inputs.target_set_version,
        "year_elapsed": round(fraction, 6),
        "computed_at": datetime.now(UTC).isoformat(),
        "score_rule": SCORE_RULE,
        "tie_break": TIE_BREAK,
        "outcome_rule": OUTCOME_RULE,
        "scoring": rules.scoring.value,
        "stepped_credit": rules.stepped_credit,
        "grades": [g.__dict__ for g in rules.grades],
        "commended_grades": rules.commended_grades,
        "criticized_grades": rules.criticized_grades,
        "commendation_quota": rules.commendation_quota,
        "ranking_groups": [
            {
                "group": g.group,
                "label": g.label,
                "kinds": list(g.kinds),
                "commendation_quota": g.commendation_quota,
            }
            for g in rules.ranking_groups
        ],
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
        "provisional": fraction < 1.0,
        "items": items,
        "city": _city_standing(inputs, fraction),
        "meta": _meta(inputs, fraction),
    }


def not_assessed(standings: dict[str, Any]) -> list[str]:
    """The counties of computed standings that could not be assessed."""
    return [
        s["county_code"]
        for s in standings["items"]
        if s.get("outcome") == Outcome.not_assessed.value
    ]


def pending_review(standings: dict[str, Any]) -> list[dict[str, Any]]:
    """The submitted figures that computed standings could not count, of weighted indicators
    and of vetoes (the seed's major-incident veto weighs nothing yet decides the outcome)."""
    return [
        {
            "county_code": s["county_code"],
            "indicator": r["indicator"],
            "reported_value_id": r["review"]["reported_value_id"],
            "value": r["review"]["value"],
        }
        for s in standings["items"]
        for r in s["indicators"]
        if r.get("review")
        and r["review"]["state"] == "submitted"
        and (r["weight"] > 0 or r["veto"])
    ]


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
    return {
        "year": standings["year"],
        "as_of": standings["as_of"],
        "provisional": standings.get("provisional", False),
        **standing,
        "explanation": {
            "score": _explain_score(standing),
            "rank": _explain_rank(standings["items"], standing),
            "grade": {
                "bands": meta["grades"],
                "result": (
                    f"score {standing['score']:.2f} → {standing['grade']} "
                    f"({standing['grade_label']})"
                    if standing["score"] is not None
                    else "not graded: not assessed"
                ),
            },
            "outcome": {
                "rule": OUTCOME_RULE,
                "commended_grades": meta["commended_grades"],
                "criticized_grades": meta["criticized_grades"],
                "commendation_quota": meta.get("commendation_quota"),
                "result": standing["outcome_reason"],
                **(
                    {"provisional": "before 31 December the outcome is provisional"}
                    if standings.get("provisional")
                    else {}
                ),
            },
            "status": "worst wins: missed > no_data > pending_review > at_risk > pending > met "
            "(not_allocated judges nothing)",
            "year_elapsed": meta["year_elapsed"],
        },
        "meta": {
            "completeness": meta["completeness"],
            "complete": meta["complete"],
            "provisional": meta.get("provisional", False),
        },
    }


def _explain_score(standing: dict[str, Any]) -> str:
    if standing["score"] is None:
        return f"{SCORE_RULE} Not scored: {standing['outcome_reason']}"
    terms = " + ".join(
        f"{r['contribution']:.4f}" for r in standing["indicators"] if r["contribution"]
    )
    bonus = f" + bonus {standing['bonus']:g}" if standing.get("bonus") else ""
    return f"{SCORE_RULE} Here: {terms or '0'}{bonus} = {standing['score']:.2f}"


def _explain_rank(items: list[dict[str, Any]], standing: dict[str, Any]) -> str:
    if standing["rank"] is None:
        return f"{TIE_BREAK} Not ranked: not assessed"
    ranked = [s for s in items if s["rank"] is not None]
    tied = [
        s["county_code"]
        for s in ranked
        if s["rank"] == standing["rank"] and s["county_code"] != standing["county_code"]
    ]
    text = f"{TIE_BREAK} Rank {standing['rank']} of {len(ranked)}" + (
        f", shared with {', '.join(tied)}" if tied else ""
    )
    if standing.get("group") and standing.get("group_rank") is not None:
        members = [s for s in ranked if s.get("group") == standing["group"]]
        text += f"; rank {standing['group_rank']} of {len(members)} in {standing['group_label']}"
    return text
