"""The arithmetic of a standing: every comparator both ways, projection and pending, the
scoring schemes, ranks, the quota, grades, veto."""

from datetime import date

import pytest

from assessment.schemas import (
    Comparator,
    Outcome,
    Over,
    Rating,
    ScoringScheme,
    Status,
    ToleranceUnit,
)
from assessment.scoring import (
    Evaluation,
    GradeRule,
    TargetSpec,
    evaluate,
    grade_of,
    outcome_of,
    rank,
    weighted_score,
    within_quota,
    worst_status,
    year_fraction,
)

YEAR_OVER = 1.0
GRADES = [
    GradeRule("excellent", "優秀", 90),
    GradeRule("good", "良好", 80),
    GradeRule("pass", "合格", 60),
    GradeRule("fail", "不合格", 0),
]


def judge(
    spec: TargetSpec, actual: float, *, flow: bool = False, fraction: float = YEAR_OVER
) -> Evaluation:
    return evaluate(spec, actual, flow=flow, fraction=fraction)


def rated(spec: TargetSpec, actual: float, green: float = 0.9, amber: float = 0.75) -> Rating:
    """The rating of a level judged after the year's end."""
    rating = evaluate(spec, actual, flow=False, fraction=1, green=green, amber=amber).rating
    assert rating is not None
    return rating


@pytest.mark.parametrize(
    ("actual", "status", "attainment"),
    [(3, Status.met, 1.0), (2, Status.met, 1.0), (1, Status.missed, 0.5), (0, Status.missed, 0.0)],
)
def test_at_least_is_higher_is_better(actual: float, status: Status, attainment: float) -> None:
    result = judge(TargetSpec(Comparator.at_least, value=2), actual)
    assert (result.status, result.attainment) == (status, attainment)


@pytest.mark.parametrize(
    ("actual", "status", "attainment"),
    [(0, Status.met, 1.0), (4, Status.met, 1.0), (5, Status.missed, 0.8), (8, Status.missed, 0.5)],
)
def test_at_most_is_lower_is_better(actual: float, status: Status, attainment: float) -> None:
    result = judge(TargetSpec(Comparator.at_most, value=4), actual)
    assert (result.status, result.attainment) == (status, attainment)


def test_maintain_keeps_at_least_the_level() -> None:
    spec = TargetSpec(Comparator.maintain, value=150)
    assert judge(spec, 150).status is Status.met
    low = judge(spec, 120)
    assert (low.status, low.attainment) == (Status.missed, 0.8)


@pytest.mark.parametrize(
    ("actual", "status", "attainment"),
    [
        (12, Status.met, 1.0),  # lower edge, just inside
        (18, Status.met, 1.0),  # upper edge, just inside
        (11.99, Status.missed, round(11.99 / 12, 6)),  # just below: higher is better
        (18.01, Status.missed, round(18 / 18.01, 6)),  # just above: lower is better
        (6, Status.missed, 0.5),
        (36, Status.missed, 0.5),
    ],
)
def test_about_with_a_percentage_tolerance(
    actual: float, status: Status, attainment: float
) -> None:
    spec = TargetSpec(
        Comparator.about, value=15, tolerance=20, tolerance_unit=ToleranceUnit.percent
    )
    result = judge(spec, actual)
    assert (result.status, result.attainment) == (status, attainment)


@pytest.mark.parametrize(
    ("actual", "status"),
    [(148, Status.met), (152, Status.met), (147.9, Status.missed), (152.1, Status.missed)],
)
def test_about_with_an_absolute_tolerance(actual: float, status: Status) -> None:
    spec = TargetSpec(Comparator.about, value=150, tolerance=2)
    assert judge(spec, actual).status is status


def test_between_both_directions() -> None:
    spec = TargetSpec(Comparator.between, low=0.6, high=0.8)
    assert judge(spec, 0.7).status is Status.met
    below, above = judge(spec, 0.3), judge(spec, 1.6)
    assert (below.status, below.attainment) == (Status.missed, 0.5)
    assert (above.status, above.attainment) == (Status.missed, 0.5)


def test_above_reference_is_strict_at_equality() -> None:
    spec = TargetSpec(Comparator.above_reference, reference=0.9)
    assert judge(spec, 0.95).status is Status.met
    equal = judge(spec, 0.9)
    assert equal.status is Status.missed
    assert equal.attainment == 1.0
    below = judge(spec, 0.45)
    assert (below.status, below.attainment) == (Status.missed, 0.5)


def test_above_reference_with_a_margin() -> None:
    spec = TargetSpec(Comparator.above_reference, reference=0.9, margin=0.02)
    assert judge(spec, 0.92).status is Status.missed
    assert judge(spec, 0.93).status is Status.met


def test_below_reference_is_lower_is_better_and_strict() -> None:
    spec = TargetSpec(Comparator.below_reference, reference=0.1)
    assert judge(spec, 0.05).status is Status.met
    assert judge(spec, 0.1).status is Status.missed
    above = judge(spec, 0.2)
    assert (above.status, above.attainment) == (Status.missed, 0.5)


def test_milestone_reached_or_not() -> None:
    spec = TargetSpec(Comparator.milestone)
    assert (judge(spec, 1).status, judge(spec, 1).attainment) == (Status.met, 1.0)
    assert (judge(spec, 0).status, judge(spec, 0).attainment) == (Status.missed, 0.0)
    during = evaluate(spec, 0, flow=False, fraction=0.5)
    assert during.status is Status.at_risk


def test_zero_with_one_incident_is_missed_even_during_the_year() -> None:
    spec = TargetSpec(Comparator.zero)
    assert (judge(spec, 0).status, judge(spec, 0).attainment) == (Status.met, 1.0)
    assert (judge(spec, 1).status, judge(spec, 1).attainment) == (Status.missed, 0.0)
    early = evaluate(spec, 1, flow=False, fraction=0.1)
    assert early.status is Status.missed


def test_no_actual_is_no_data_with_its_reason() -> None:
    result = evaluate(
        TargetSpec(Comparator.at_least, value=2),
        None,
        flow=True,
        fraction=1,
        reason="brands: timeout",
    )
    assert (result.status, result.attainment, result.reason) == (
        Status.no_data,
        None,
        "brands: timeout",
    )


def test_year_fraction_counts_the_as_of_day() -> None:
    assert year_fraction(2007, date(2007, 12, 31)) == 1.0
    assert year_fraction(2007, date(2007, 1, 1)) == pytest.approx(1 / 365)
    assert year_fraction(2008, date(2008, 7, 1)) == pytest.approx(183 / 366)


def test_projection_of_a_count_during_the_year() -> None:
    spec = TargetSpec(Comparator.at_least, value=2)
    day_182 = year_fraction(2007, date(2007, 7, 1))
    on_track = evaluate(spec, 1, flow=True, fraction=day_182)  # 1 × 365 / 182 = 2.0055
    assert (on_track.status, on_track.basis) == (Status.met, "projection")
    assert on_track.projected == pytest.approx(365 / 182, abs=1e-6)
    day_183 = year_fraction(2007, date(2007, 7, 2))
    short = evaluate(spec, 1, flow=True, fraction=day_183)  # 1 × 365 / 183 = 1.9945
    assert (short.status, short.attainment) == (Status.at_risk, round(365 / 183 / 2, 6))
    behind = evaluate(spec, 0, flow=True, fraction=day_182)
    assert (behind.status, behind.projected) == (Status.at_risk, 0.0)
    reached = evaluate(spec, 2, flow=True, fraction=0.1)
    assert (reached.status, reached.basis) == (Status.met, "actual")


def test_projection_of_a_capped_count() -> None:
    spec = TargetSpec(Comparator.at_most, value=10)
    half = 0.5
    assert evaluate(spec, 4, flow=True, fraction=half).status is Status.met
    assert evaluate(spec, 6, flow=True, fraction=half).status is Status.at_risk
    assert evaluate(spec, 11, flow=True, fraction=half).status is Status.missed


def test_a_level_is_not_projected() -> None:
    spec = TargetSpec(Comparator.at_least, value=0.95)
    result = evaluate(spec, 0.9, flow=False, fraction=0.5)
    assert (result.status, result.basis, result.projected) == (Status.at_risk, "actual", None)


def test_rating_uses_the_thresholds() -> None:
    spec = TargetSpec(Comparator.at_least, value=100)
    assert rated(spec, 90).value == "green"
    assert rated(spec, 75).value == "amber"
    assert rated(spec, 74).value == "red"
    assert rated(spec, 74, green=0.7, amber=0.5).value == "green"


def test_weighted_score_counts_missing_data_as_zero() -> None:
    assert weighted_score([(8, 1.0), (2, 0.5)]) == 90.0
    assert weighted_score([(8, 1.0), (2, None)]) == 80.0


def test_ranking_ties_share_a_rank_after_the_missed_count() -> None:
    ranks = rank([("a", 90.0, 0), ("b", 95.0, 1), ("c", 90.0, 1), ("d", 90.0, 0), ("e", 80.0, 0)])
    assert ranks == {"b": 1, "a": 2, "d": 2, "c": 4, "e": 5}


def test_ranking_compares_scores_to_the_hundredth() -> None:
    assert rank([("a", 90.001, 0), ("b", 90.004, 0)]) == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100, "excellent"),
        (90, "excellent"),
        (89.99, "good"),
        (80, "good"),
        (60, "pass"),
        (59.99, "fail"),
        (0, "fail"),
    ],
)
def test_grade_bands(score: float, grade: str) -> None:
    assert grade_of(score, GRADES).grade == grade


def test_veto_criticizes_even_the_best_grade() -> None:
    outcome, _ = outcome_of(
        grade="excellent",
        veto_statuses=[Status.missed],
        commended_grades=["excellent"],
        criticized_grades=["fail"],
    )
    assert outcome is Outcome.criticized


def test_commendation_needs_every_veto_indicator_met() -> None:
    kwargs = {"commended_grades": ["excellent"], "criticized_grades": ["fail"]}
    assert (
        outcome_of(grade="excellent", veto_statuses=[Status.met], **kwargs)[0] is Outcome.commended
    )
    assert (
        outcome_of(grade="excellent", veto_statuses=[Status.no_data], **kwargs)[0] is Outcome.none
    )
    assert outcome_of(grade="good", veto_statuses=[Status.met], **kwargs)[0] is Outcome.none
    assert outcome_of(grade="fail", veto_statuses=[Status.met], **kwargs)[0] is Outcome.criticized


def test_worst_status_wins() -> None:
    assert worst_status([Status.met, Status.at_risk]) is Status.at_risk
    assert worst_status([Status.met, Status.no_data, Status.at_risk]) is Status.no_data
    assert worst_status([Status.no_data, Status.missed]) is Status.missed


def _missed_by(value: float) -> TargetSpec:
    """A floor the actual 1.0 attains to `value`."""
    return TargetSpec(Comparator.at_least, value=1 / value)


@pytest.mark.parametrize(
    ("scheme", "amber_credit", "red_credit"),
    [
        (ScoringScheme.proportional, 0.8, 0.5),
        (ScoringScheme.all_or_nothing, 0.0, 0.0),
        (ScoringScheme.stepped, 0.4, 0.0),
    ],
)
def test_each_scoring_scheme_credits_a_miss_its_own_way(
    scheme: ScoringScheme, amber_credit: float, red_credit: float
) -> None:
    def credit(spec: TargetSpec, actual: float) -> float | None:
        return evaluate(
            spec, actual, flow=False, fraction=1, scheme=scheme, stepped_credit=0.4
        ).credit

    assert credit(TargetSpec(Comparator.at_least, value=2), 2) == 1.0
    assert credit(TargetSpec(Comparator.at_least, value=10), 8) == amber_credit
    assert credit(TargetSpec(Comparator.at_least, value=10), 7.5) == (
        0.75 if scheme is ScoringScheme.proportional else amber_credit
    )
    assert credit(TargetSpec(Comparator.at_least, value=10), 5) == red_credit


def test_no_verdict_earns_no_credit() -> None:
    spec = TargetSpec(Comparator.at_least, value=2)
    assert evaluate(spec, None, flow=True, fraction=1).credit is None
    waiting = evaluate(spec, 0, flow=True, fraction=0.5, pending_until=date(2007, 12, 8))
    assert (waiting.status, waiting.credit) == (Status.pending, None)


ABOUT_15 = {"value": 15, "tolerance": 20, "tolerance_unit": ToleranceUnit.percent}


@pytest.mark.parametrize(
    ("over", "actual", "status", "attainment"),
    [
        (Over.met, 12, Status.met, 1.0),  # lower edge
        (Over.met, 11.99, Status.missed, round(11.99 / 12, 6)),
        (Over.met, 18, Status.met, 1.0),  # upper edge
        (Over.met, 18.01, Status.met, 1.0),  # just above: exceeding "15個左右" is no failure
        (Over.met, 30, Status.met, 1.0),
        (Over.missed, 12, Status.met, 1.0),
        (Over.missed, 11.99, Status.missed, round(11.99 / 12, 6)),
        (Over.missed, 18, Status.met, 1.0),
        (Over.missed, 18.01, Status.missed, round(18 / 18.01, 6)),  # a number to hold
    ],
)
def test_about_in_both_over_modes(
    over: Over, actual: float, status: Status, attainment: float
) -> None:
    spec = TargetSpec(Comparator.about, over=over, **ABOUT_15)  # type: ignore[arg-type]
    result = judge(spec, actual)
    assert (result.status, result.attainment) == (status, attainment)


def test_about_over_met_says_so() -> None:
    spec = TargetSpec(Comparator.about, over=Over.met, **ABOUT_15)  # type: ignore[arg-type]
    result = judge(spec, 20)
    assert result.band is not None
    assert result.band.describe() == "[12, 18] or above (over: met)"
    assert "counts as met (over: met)" in result.formula


def test_a_batch_figure_is_pending_before_its_date_not_projected() -> None:
    spec = TargetSpec(Comparator.at_least, value=2)
    half = year_fraction(2007, date(2007, 6, 30))
    batch = evaluate(spec, 0, flow=False, fraction=half, pending_until=date(2007, 12, 8))
    assert (batch.status, batch.projected, batch.attainment) == (Status.pending, None, None)
    assert batch.reason == "pending: expected on 2007-12-08"
    continuous = evaluate(spec, 0, flow=True, fraction=half)
    assert (continuous.status, continuous.basis) == (Status.at_risk, "projection")
    already = evaluate(spec, 2, flow=False, fraction=half, pending_until=date(2007, 12, 8))
    assert already.status is Status.met
    veto = evaluate(
        TargetSpec(Comparator.zero), 1, flow=False, fraction=half, pending_until=date(2007, 12, 31)
    )
    assert veto.status is Status.missed


def test_weighted_score_adds_a_bonus_up_to_100() -> None:
    assert weighted_score([(8, 1.0), (2, 0.0)], bonus=4) == 84.0
    assert weighted_score([(8, 1.0), (2, 1.0)], bonus=4) == 100.0
    assert weighted_score([(0, 1.0)]) is None


@pytest.mark.parametrize(
    ("quota", "admitted"),
    [
        (None, {"a", "b", "c", "d"}),
        (4, {"a", "b", "c", "d"}),
        (3, {"a", "b", "c"}),
        (2, {"a"}),  # b and c tie at rank 2: both or neither
        (1, {"a"}),
        (0, set()),
    ],
)
def test_the_commendation_quota_admits_ties_together_or_not_at_all(
    quota: int | None, admitted: set[str]
) -> None:
    ranked = [("a", 1), ("b", 2), ("c", 2), ("d", 4)]
    assert within_quota(ranked, quota) == admitted
