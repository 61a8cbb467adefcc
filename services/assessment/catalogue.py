"""The catalogue of measures and the rules a target set must follow."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from assessment.schemas import (
    Comparator,
    Indicator,
    MeasureKind,
    Rules,
    Source,
    TargetSetWrite,
    Unit,
)
from kit.errors import FieldError
from kit.identifiers import county_code_error


@dataclass(frozen=True)
class MeasureInfo:
    source: Source
    unit: Unit | None
    flow: bool
    description: str


CATALOGUE: dict[MeasureKind, MeasureInfo] = {
    MeasureKind.new_awards: MeasureInfo(
        Source.brands, Unit.count, True, "new awards (award_kind=new) of a tier in the year"
    ),
    MeasureKind.in_force: MeasureInfo(
        Source.brands, Unit.count, False, "listings of a tier in force on the as-of date"
    ),
    MeasureKind.international_share: MeasureInfo(
        Source.brands,
        Unit.rate,
        False,
        "share of listings in force made to international or advanced foreign standards",
    ),
    MeasureKind.new_certified_enterprises: MeasureInfo(
        Source.certificates,
        Unit.count,
        True,
        "enterprises whose first certificate of the counted families was issued in the year",
    ),
    MeasureKind.pass_rate: MeasureInfo(
        Source.spot_checks, Unit.rate, False, "spot-check pass rate of the chosen levels"
    ),
    MeasureKind.reported_value: MeasureInfo(
        Source.reported, None, False, "a value reported by the county with evidence"
    ),
}

NEEDS_TARGET = {Comparator.at_least, Comparator.at_most, Comparator.about, Comparator.maintain}
REFERENCE_COMPARATORS = {Comparator.above_reference, Comparator.below_reference}
ADDITIVE_COMPARATORS = {*NEEDS_TARGET, Comparator.between}


def unit_of(indicator: Indicator) -> Unit:
    """Count, rate or flag: from the catalogue, or as declared for a reported value."""
    info = CATALOGUE[indicator.measure.kind]
    return info.unit or indicator.measure.unit or Unit.count


def is_flow(indicator: Indicator) -> bool:
    """Whether the measure accumulates over the year, so it can be projected to 31 December."""
    return CATALOGUE[indicator.measure.kind].flow


def reported_key(indicator: Indicator) -> str:
    return indicator.measure.key or indicator.key


def allocates_by_county(indicator: Indicator) -> bool:
    """Counts are shared out between counties: a county without an allocation is not assessed."""
    return unit_of(indicator) is Unit.count and indicator.comparator in ADDITIVE_COMPARATORS


def validate_target_set(body: TargetSetWrite, known_counties: Collection[str]) -> list[FieldError]:
    """Every inconsistency of a target set, each named by its field."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, indicator in enumerate(body.indicators):
        path = f"indicators[{index}]"
        if indicator.key in seen:
            errors.append(FieldError(f"{path}.key", f"duplicate indicator key {indicator.key!r}"))
        seen.add(indicator.key)
        errors.extend(_check_indicator(indicator, path, known_counties))
    if body.indicators and sum(i.weight for i in body.indicators) <= 0:
        errors.append(FieldError("indicators", "the weights must not all be zero"))
    if body.rules is not None:
        errors.extend(_check_rules(body.rules))
    return errors


def _check_indicator(
    indicator: Indicator, path: str, known_counties: Collection[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    measure = indicator.measure
    info = CATALOGUE[measure.kind]
    if info.source is not indicator.source:
        errors.append(
            FieldError(
                f"{path}.measure.kind",
                f"{measure.kind.value} is a measure of {info.source.value}, "
                f"not {indicator.source.value}",
            )
        )
    if measure.kind in (MeasureKind.new_awards, MeasureKind.in_force) and measure.tier is None:
        errors.append(FieldError(f"{path}.measure.tier", f"{measure.kind.value} needs a tier"))
    if measure.kind is MeasureKind.reported_value and measure.unit is None:
        errors.append(
            FieldError(f"{path}.measure.unit", "a reported value needs a unit (count, rate, flag)")
        )
    unit = unit_of(indicator)
    errors.extend(_check_comparator(indicator, path, unit))
    errors.extend(_check_allocations(indicator, path, unit, known_counties))
    if indicator.thresholds and indicator.thresholds.amber > indicator.thresholds.green:
        errors.append(
            FieldError(f"{path}.thresholds.amber", "amber must not exceed green attainment")
        )
    return errors


def _check_comparator(indicator: Indicator, path: str, unit: Unit) -> list[FieldError]:
    errors: list[FieldError] = []
    comparator = indicator.comparator
    if comparator in NEEDS_TARGET and indicator.target is None:
        errors.append(FieldError(f"{path}.target", f"{comparator.value} needs a target"))
    if comparator is Comparator.about and indicator.tolerance is None:
        errors.append(FieldError(f"{path}.tolerance", "about needs a tolerance"))
    if comparator is Comparator.between:
        if indicator.low is None or indicator.high is None:
            errors.append(FieldError(f"{path}.low", "between needs low and high"))
        elif indicator.low > indicator.high:
            errors.append(FieldError(f"{path}.low", "low must not exceed high"))
    if comparator in REFERENCE_COMPARATORS and indicator.reference is None:
        errors.append(
            FieldError(f"{path}.reference", f"{comparator.value} needs a named reference value")
        )
    if comparator is Comparator.milestone and unit is not Unit.flag:
        errors.append(FieldError(f"{path}.comparator", "milestone needs a flag measure (0 or 1)"))
    for name in ("target", "low", "high"):
        value = getattr(indicator, name)
        if value is None:
            continue
        if value < 0:
            errors.append(FieldError(f"{path}.{name}", "must not be negative"))
        elif unit is Unit.rate and value > 1:
            errors.append(
                FieldError(f"{path}.{name}", "rates and shares are fractions between 0 and 1")
            )
    return errors


def _check_allocations(
    indicator: Indicator, path: str, unit: Unit, known_counties: Collection[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    comparator = indicator.comparator
    for code, allocation in indicator.allocations.items():
        where = f"{path}.allocations.{code}"
        problem = county_code_error(code, known_counties)
        if problem:
            errors.append(FieldError(where, problem))
            continue
        if comparator in REFERENCE_COMPARATORS or comparator is Comparator.zero:
            if allocation.target is not None or allocation.low is not None:
                errors.append(FieldError(where, f"{comparator.value} takes no per-county figures"))
            continue
        if comparator is Comparator.milestone:
            continue
        if comparator is Comparator.between:
            if (
                allocation.low is None
                or allocation.high is None
                or allocation.low > allocation.high
            ):
                errors.append(FieldError(where, "between needs low ≤ high for each county"))
            continue
        if allocation.target is None:
            errors.append(FieldError(f"{where}.target", "the county's target is missing"))
        elif allocation.target < 0 or (unit is Unit.rate and allocation.target > 1):
            errors.append(FieldError(f"{where}.target", "out of range for this measure"))
    if errors or not indicator.allocations or not allocates_by_county(indicator):
        return errors
    if comparator is Comparator.between:
        pairs = (("low", indicator.low), ("high", indicator.high))
    else:
        pairs = (("target", indicator.target),)
    for name, city in pairs:
        total = sum(getattr(a, name) or 0.0 for a in indicator.allocations.values())
        if city is not None and abs(total - city) > 1e-6:
            errors.append(
                FieldError(
                    f"{path}.allocations",
                    f"the county {name}s add up to {total:g}, not the city {name} {city:g}",
                )
            )
    return errors


def _check_rules(rules: Rules) -> list[FieldError]:
    errors: list[FieldError] = []
    if rules.grades is not None:
        if not rules.grades:
            errors.append(FieldError("rules.grades", "at least one grade band is needed"))
        elif min(g.min_score for g in rules.grades) > 0:
            errors.append(FieldError("rules.grades", "the lowest band must start at 0"))
        names = [g.grade for g in rules.grades]
        if len(set(names)) != len(names):
            errors.append(FieldError("rules.grades", "grade codes must be unique"))
        known = set(names)
        for field in ("commended_grades", "criticized_grades"):
            for grade in getattr(rules, field) or []:
                if grade not in known:
                    errors.append(FieldError(f"rules.{field}", f"unknown grade {grade!r}"))
    return errors
