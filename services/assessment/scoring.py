"""The arithmetic of a standing: comparators, projection, attainment, score, rank, grade, outcome.

Every comparator reduces to a band `[low, high]` (either end open, either end strict):

    at_least / maintain   [target, ∞)          higher is better
    at_most               (-∞, target]         lower is better
    about                 [target - tol, target + tol]; with `over: met`, [target - tol, ∞)
    between               [low, high]
    above_reference       (reference + margin, ∞)   strictly above
    below_reference       (-∞, reference - margin)  strictly below
    milestone             [1, ∞)               1 = reached
    zero                  (-∞, 0]
    informational         no band: the figure is shown for information, never judged

Attainment is 1 inside the band; below it `actual / low` (higher is better); above it
`high / actual` (lower is better); never below 0 nor above 1.

The credit is the share of an indicator's weight it earns, by the set's scoring scheme:

    proportional     the attainment
    all_or_nothing   1 when met, else 0
    stepped          1 when met, `stepped_credit` while the attainment is inside the amber
                     band (at least `amber`), else 0
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from assessment.schemas import (
    Comparator,
    Outcome,
    Over,
    Rating,
    ScoringScheme,
    Status,
    ToleranceUnit,
)

EPSILON = 1e-9
STATUS_SEVERITY = {
    Status.missed: 5,
    Status.no_data: 4,
    Status.pending_review: 3,
    Status.at_risk: 2,
    Status.pending: 1,
    Status.met: 0,
}
RATING_SEVERITY = {Rating.red: 2, Rating.amber: 1, Rating.green: 0}
LOWER_IS_BETTER = {Comparator.at_most, Comparator.below_reference, Comparator.zero}


@dataclass(frozen=True)
class TargetSpec:
    """A comparator with its resolved figures (reference already looked up)."""

    comparator: Comparator
    value: float | None = None
    low: float | None = None
    high: float | None = None
    tolerance: float | None = None
    tolerance_unit: ToleranceUnit = ToleranceUnit.absolute
    reference: float | None = None
    margin: float = 0.0
    over: Over = Over.missed


@dataclass(frozen=True)
class Band:
    low: float | None
    high: float | None
    strict_low: bool = False
    strict_high: bool = False
    nominal_high: float | None = None
    """The top of an `about` band whose excess counts as met (`over: met`)."""

    def describe(self) -> str:
        left = "(" if self.strict_low or self.low is None else "["
        right = ")" if self.strict_high or self.high is None else "]"
        low = "-∞" if self.low is None else _fmt(self.low)
        if self.nominal_high is not None:
            return f"{left}{low}, {_fmt(self.nominal_high)}] or above (over: met)"
        high = "∞" if self.high is None else _fmt(self.high)
        return f"{left}{low}, {high}{right}"


@dataclass(frozen=True)
class Evaluation:
    """The judgement of one indicator for one county (or the city)."""

    status: Status
    attainment: float | None
    basis: str | None
    projected: float | None
    rating: Rating | None
    band: Band | None
    formula: str
    reason: str | None = None
    credit: float | None = None


def band_of(spec: TargetSpec) -> Band:
    """The band a value must fall in for `spec` to be met."""
    c = spec.comparator
    if c in (Comparator.at_least, Comparator.maintain):
        return Band(_required(spec.value), None)
    if c is Comparator.at_most:
        return Band(None, _required(spec.value))
    if c is Comparator.about:
        value = _required(spec.value)
        tolerance = spec.tolerance or 0.0
        if spec.tolerance_unit is ToleranceUnit.percent:
            tolerance = abs(value) * tolerance / 100
        if spec.over is Over.met:
            return Band(value - tolerance, None, nominal_high=value + tolerance)
        return Band(value - tolerance, value + tolerance)
    if c is Comparator.between:
        return Band(_required(spec.low), _required(spec.high))
    if c is Comparator.above_reference:
        return Band(_required(spec.reference) + spec.margin, None, strict_low=True)
    if c is Comparator.below_reference:
        return Band(None, _required(spec.reference) - spec.margin, strict_high=True)
    if c is Comparator.milestone:
        return Band(1.0, None)
    if c is Comparator.informational:
        return Band(None, None)
    return Band(None, 0.0)


def satisfied(band: Band, value: float) -> bool:
    """Whether `value` lies in `band`."""
    if band.low is not None:
        if band.strict_low and not value > band.low + EPSILON:
            return False
        if not band.strict_low and value < band.low - EPSILON:
            return False
    if band.high is not None:
        if band.strict_high and not value < band.high - EPSILON:
            return False
        if not band.strict_high and value > band.high + EPSILON:
            return False
    return True


def attainment(band: Band, value: float) -> float:
    """How far `value` attains `band`, from 0 to 1, in either direction."""
    if band.low is not None and value < band.low - EPSILON:
        return _clamp(value / band.low) if band.low > 0 else 0.0
    if band.high is not None and value > band.high + EPSILON:
        return _clamp(band.high / value) if band.high > 0 else 0.0
    return 1.0


def year_fraction(year: int, as_of: date) -> float:
    """The share of `year` elapsed on `as_of`, counting `as_of` itself (1.0 from 31 December)."""
    if as_of.year > year:
        return 1.0
    days = 366 if calendar.isleap(year) else 365
    elapsed = (as_of - date(year, 1, 1)).days + 1
    return max(0.0, min(1.0, elapsed / days))


def project(actual: float, fraction: float) -> float:
    """Linear projection of a count accumulated over `fraction` of the year to 31 December."""
    return actual / fraction if fraction > 0 else actual


def rating_of(value: float | None, green: float, amber: float) -> Rating | None:
    if value is None:
        return None
    if value >= green - EPSILON:
        return Rating.green
    if value >= amber - EPSILON:
        return Rating.amber
    return Rating.red


def credit_of(
    status: Status,
    value: float | None,
    *,
    scheme: ScoringScheme,
    amber: float,
    stepped_credit: float,
) -> float | None:
    """The share of the weight an indicator earns under `scheme` (None: it earns no verdict)."""
    if value is None or status in (
        Status.pending,
        Status.pending_review,
        Status.no_data,
        Status.not_allocated,
        Status.informational,
    ):
        return None
    if status is Status.met:
        return 1.0
    if scheme is ScoringScheme.all_or_nothing:
        return 0.0
    if scheme is ScoringScheme.stepped:
        return stepped_credit if value >= amber - EPSILON else 0.0
    return round(value, 6)


def evaluate(
    spec: TargetSpec,
    actual: float | None,
    *,
    flow: bool,
    fraction: float,
    green: float = 0.9,
    amber: float = 0.75,
    reason: str | None = None,
    scheme: ScoringScheme = ScoringScheme.proportional,
    stepped_credit: float = 0.5,
    pending_until: date | None = None,
    can_fall: bool = False,
) -> Evaluation:
    """Status, attainment, rating and credit of `actual` against `spec`.

    After 31 December the actual decides `met` or `missed`. During the year an indicator is
    `missed` only when it can no longer be met (an incident under `zero`, or a count that
    already passed its upper bound). A figure that arrives in one batch (`pending_until`, the
    day it is expected) is `pending` until then unless already met. A count accumulated
    continuously over the year (`flow`) is otherwise judged on its linear projection to
    31 December, `at_risk` when that falls short; a level (stock, rate, reported figure) is
    `met` when it is already in band, else `at_risk`. Under `zero`, a count held on a date
    that `can_fall` back to zero (items overdue, enterprises still rectifying) is `at_risk`
    during the year, not `missed`. An `informational` indicator is shown, never judged.
    """
    if spec.comparator is Comparator.informational:
        return Evaluation(
            Status.informational,
            None,
            None,
            None,
            None,
            None,
            "shown for information: no target, no weight, no effect on the outcome",
            reason,
        )
    if actual is None and pending_until is not None and fraction < 1.0:
        return _pending(band_of(spec), "nothing yet", pending_until)
    if actual is None:
        return Evaluation(
            Status.no_data, None, None, None, None, None, "no actual value", reason or "no data"
        )
    band = band_of(spec)
    judged, basis, projected = actual, "actual", None
    if fraction >= 1.0:
        status = Status.met if satisfied(band, actual) else Status.missed
    elif not can_fall and _irreversibly_missed(
        spec, band, actual, flow=flow or pending_until is not None
    ):
        status = Status.missed
    elif pending_until is not None:
        if band.high is None and satisfied(band, actual):
            status = Status.met
        else:
            return _pending(band, f"{_fmt(actual)} so far", pending_until)
    elif flow and not (band.high is None and satisfied(band, actual)):
        projected = project(actual, fraction)
        judged, basis = projected, "projection"
        status = Status.met if satisfied(band, projected) else Status.at_risk
    else:
        status = Status.met if satisfied(band, actual) else Status.at_risk
    value = attainment(band, judged)
    return Evaluation(
        status=status,
        attainment=round(value, 6),
        basis=basis,
        projected=None if projected is None else round(projected, 6),
        rating=rating_of(value, green, amber),
        band=band,
        formula=_formula(band, judged, value, basis, actual, fraction),
        credit=credit_of(status, value, scheme=scheme, amber=amber, stepped_credit=stepped_credit),
    )


def _pending(band: Band, so_far: str, expected: date) -> Evaluation:
    """No verdict yet: the figure arrives in one batch on `expected`, and is not projected."""
    return Evaluation(
        status=Status.pending,
        attainment=None,
        basis="pending",
        projected=None,
        rating=None,
        band=band,
        formula=f"{so_far}; the figure is expected on {expected.isoformat()} and is not projected",
        reason=f"pending: expected on {expected.isoformat()}",
    )


def _irreversibly_missed(spec: TargetSpec, band: Band, actual: float, *, flow: bool) -> bool:
    if spec.comparator is Comparator.zero:
        return not satisfied(band, actual)
    return flow and band.high is not None and actual > band.high + EPSILON


def _formula(
    band: Band, judged: float, value: float, basis: str, actual: float, fraction: float
) -> str:
    prefix = ""
    if basis == "projection":
        prefix = f"projected = {_fmt(actual)} / {fraction:.4f} = {_fmt(judged)}; "
    if band.low is not None and judged < band.low - EPSILON:
        body = (
            f"below band {band.describe()}: attainment = min({_fmt(judged)} / {_fmt(band.low)}, 1)"
        )
    elif band.high is not None and judged > band.high + EPSILON:
        body = (
            f"above band {band.describe()}: attainment = min({_fmt(band.high)} / {_fmt(judged)}, 1)"
        )
    elif band.nominal_high is not None and judged > band.nominal_high + EPSILON:
        body = (
            f"{_fmt(judged)} above {_fmt(band.nominal_high)}, which counts as met (over: met): "
            "attainment = 1"
        )
    else:
        body = f"{_fmt(judged)} within {band.describe()}: attainment = 1"
    return f"{prefix}{body} = {value:.4f}"


def weighted_score(parts: Iterable[tuple[float, float | None]], bonus: float = 0.0) -> float | None:
    """100 × Σ weight·credit / Σ weight, plus bonus points, at most 100; None without weight."""
    total = numerator = 0.0
    for weight, value in parts:
        total += weight
        numerator += weight * (value or 0.0)
    if total <= 0:
        return None
    return round(min(100.0, 100 * numerator / total + bonus), 2)


def contribution(weight: float, value: float | None, total_weight: float) -> float:
    """Points one indicator adds to a score out of 100."""
    return round(100 * weight * (value or 0.0) / total_weight, 4) if total_weight > 0 else 0.0


@dataclass(frozen=True)
class GradeRule:
    grade: str
    label: str
    min_score: float


@dataclass(frozen=True)
class GroupRule:
    """Regions ranked among themselves, by their kind."""

    group: str
    label: str
    kinds: tuple[str, ...]
    commendation_quota: int | None = None


@dataclass(frozen=True)
class ResolvedRules:
    """The rules a standing applies: a target set's own, or the configured defaults."""

    grades: list[GradeRule]
    commended_grades: list[str]
    criticized_grades: list[str]
    green: float
    amber: float
    scoring: ScoringScheme = ScoringScheme.proportional
    stepped_credit: float = 0.5
    commendation_quota: int | None = None
    ranking_groups: tuple[GroupRule, ...] = ()


def grade_of(score: float, bands: Sequence[GradeRule]) -> GradeRule:
    """The highest band whose minimum the score reaches."""
    for band in sorted(bands, key=lambda b: b.min_score, reverse=True):
        if score >= band.min_score - EPSILON:
            return band
    return min(bands, key=lambda b: b.min_score)


def rank(entries: Sequence[tuple[str, float, int]]) -> dict[str, int]:
    """Competition ranks (1, 2, 2, 4) of `(code, score, missed)` entries.

    Higher score first; at equal score (to 0.01) fewer missed indicators first; still equal,
    the counties share the rank.
    """
    ordered = sorted(entries, key=lambda e: (-round(e[1], 2), e[2], e[0]))
    ranks: dict[str, int] = {}
    previous: tuple[float, int] | None = None
    current = 0
    for position, (code, score, missed) in enumerate(ordered, start=1):
        key = (round(score, 2), missed)
        if key != previous:
            current, previous = position, key
        ranks[code] = current
    return ranks


def within_quota(ranked: Sequence[tuple[str, int]], quota: int | None) -> set[str]:
    """Those of the `(code, rank)` candidates a quota of `quota` admits, best rank first.

    Counties sharing a rank are admitted together or not at all, so the quota is never
    exceeded and no county is preferred over one it ties with.
    """
    if quota is None:
        return {code for code, _ in ranked}
    admitted: set[str] = set()
    by_rank: dict[int, list[str]] = {}
    for code, position in ranked:
        by_rank.setdefault(position, []).append(code)
    for position in sorted(by_rank):
        tied = by_rank[position]
        if len(admitted) + len(tied) > quota:
            break
        admitted.update(tied)
    return admitted


def outcome_of(
    *,
    grade: str,
    veto_statuses: Sequence[Status],
    commended_grades: Iterable[str],
    criticized_grades: Iterable[str],
) -> tuple[Outcome, str]:
    """Veto first: a failed veto indicator criticizes whatever the score."""
    if any(status is Status.missed for status in veto_statuses):
        return Outcome.criticized, "a veto indicator was missed"
    if grade in set(criticized_grades):
        return Outcome.criticized, f"grade {grade} is in the criticized band"
    if grade in set(commended_grades):
        if all(status is Status.met for status in veto_statuses):
            return Outcome.commended, f"grade {grade} is in the commended band and no veto applies"
        return Outcome.none, f"grade {grade} would commend, but a veto indicator is not yet met"
    return Outcome.none, f"grade {grade} is neither commended nor criticized"


def worst_status(statuses: Iterable[Status]) -> Status:
    """The most severe status; a not-allocated or informational indicator judges nothing and
    is left out."""
    judged = [s for s in statuses if s not in (Status.not_allocated, Status.informational)]
    return max(judged, key=lambda s: STATUS_SEVERITY[s], default=Status.no_data)


def worst_rating(ratings: Iterable[Rating | None]) -> Rating | None:
    present = [r for r in ratings if r is not None]
    return max(present, key=lambda r: RATING_SEVERITY[r]) if present else None


def _required(value: float | None) -> float:
    if value is None:
        raise ValueError("the comparator needs a figure the target set does not give")
    return value


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _fmt(value: float) -> str:
    return f"{value:.6g}"
