"""The service's reference data (regions, measures, default rules) and the rules a target set
must follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from assessment.schemas import (
    Allocation,
    AssessmentDefaults,
    BrandTier,
    Cadence,
    Comparator,
    Indicator,
    MeasureKind,
    Region,
    Rules,
    Source,
    TargetSetCreate,
    Unit,
)
from assessment.scoring import GradeRule, GroupRule, ResolvedRules
from assessment.settings import Settings
from kit.errors import FieldError
from kit.identifiers import county_code_error
from kit.settings import load_json


@dataclass(frozen=True)
class MeasureInfo:
    source: Source
    unit: Unit | None
    flow: bool
    description: str


MEASURES: Mapping[MeasureKind, MeasureInfo] = MappingProxyType(
    {
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
        MeasureKind.metrology_pass_rate: MeasureInfo(
            Source.spot_checks,
            Unit.rate,
            False,
            "instruments found conforming over instruments checked by the metrology "
            "programme's special checks in the year",
        ),
        MeasureKind.special_equipment_overdue: MeasureInfo(
            Source.spot_checks,
            Unit.count,
            False,
            "registered special-equipment items whose latest inspection fell due before the "
            "as-of date",
        ),
        MeasureKind.licensed_food_producers: MeasureInfo(
            Source.certificates,
            Unit.count,
            False,
            "enterprises holding a food production licence in force on the as-of date",
        ),
        MeasureKind.food_rectification_open: MeasureInfo(
            Source.food_dispositions,
            Unit.count,
            False,
            "enterprises whose latest food-processing disposition on the as-of date is rectifying",
        ),
        MeasureKind.confirmed_major_incidents: MeasureInfo(
            Source.incidents,
            Unit.count,
            True,
            "major incidents of the year confirmed (or confirmed and closed) by the inspection "
            "service; dismissed ones never count",
        ),
        MeasureKind.new_gi_products: MeasureInfo(
            Source.brands,
            Unit.count,
            True,
            "new geographical-indication products (tier geographical_indication, award_kind=new) "
            "in the year",
        ),
        MeasureKind.awards_won: MeasureInfo(
            Source.awards, Unit.count, True, "quality awards won in the year and not revoked"
        ),
    }
)

NEEDS_TARGET = {Comparator.at_least, Comparator.at_most, Comparator.about, Comparator.maintain}
REFERENCE_COMPARATORS = {Comparator.above_reference, Comparator.below_reference}
ADDITIVE_COMPARATORS = {*NEEDS_TARGET, Comparator.between}


def unit_of(indicator: Indicator) -> Unit:
    """Count, rate or flag: from the catalogue, or as declared for a reported value."""
    info = MEASURES[indicator.measure.kind]
    return info.unit or indicator.measure.unit or Unit.count


def is_flow(indicator: Indicator) -> bool:
    """Whether the measure accumulates over the year, so it can be projected to 31 December."""
    return MEASURES[indicator.measure.kind].flow


def can_fall(indicator: Indicator) -> bool:
    """A count held on a date (items overdue, enterprises still rectifying) that may come back
    to zero before the year ends, so a figure above zero during the year is at risk, not yet
    missed; incidents and reported occurrences, once they happen, stay."""
    info = MEASURES[indicator.measure.kind]
    return not info.flow and info.source is not Source.reported


def is_informational(indicator: Indicator) -> bool:
    """Shown for information: no target, no weight, no effect on any outcome."""
    return indicator.comparator is Comparator.informational


def reported_key(indicator: Indicator) -> str:
    return indicator.measure.key or indicator.key


def allocates_by_county(indicator: Indicator) -> bool:
    """Counts are shared out between counties: a county without an allocation is not assessed."""
    return unit_of(indicator) is Unit.count and indicator.comparator in ADDITIVE_COMPARATORS


def applies_to(indicator: Indicator, county_code: str) -> bool:
    """Whether a county is assessed on the indicator (otherwise it is `not_allocated`)."""
    if allocates_by_county(indicator):
        return county_code in indicator.allocations
    if indicator.comparator is Comparator.milestone:
        return not indicator.allocations or county_code in indicator.allocations
    return True


@dataclass(frozen=True)
class Catalogue:
    """The reference data read once when the app is built: the configured counties and
    districts, the measures a target set may use and the default grading rules."""

    regions: tuple[Region, ...]
    rules: ResolvedRules
    measures: Mapping[MeasureKind, MeasureInfo] = field(default_factory=lambda: MEASURES)
    famous_brand_tiers: tuple[BrandTier, ...] = (
        BrandTier.china_famous,
        BrandTier.provincial_famous,
        BrandTier.city_famous,
    )

    @property
    def county_codes(self) -> frozenset[str]:
        return frozenset(region.code for region in self.regions)

    def county_problem(self, code: str, *, configured: bool = True) -> str | None:
        """Why `code` is not a county-level GB/T 2260 code (nor, with `configured`, one of the
        configured counties), or None: the one county-code check of this service."""
        return county_code_error(code, self.county_codes if configured else None)

    def region(self, code: str) -> Region | None:
        return next((region for region in self.regions if region.code == code), None)


def rules_of(defaults: AssessmentDefaults) -> ResolvedRules:
    """The configured grading rules, as a standing applies them."""
    return ResolvedRules(
        grades=[GradeRule(g.grade, g.label, g.min_score) for g in defaults.grades],
        commended_grades=list(defaults.commended_grades),
        criticized_grades=list(defaults.criticized_grades),
        green=defaults.thresholds.green,
        amber=defaults.thresholds.amber,
        scoring=defaults.scoring,
        stepped_credit=defaults.stepped_credit,
    )


def group_rules(rules: Rules) -> tuple[GroupRule, ...]:
    return tuple(
        GroupRule(g.group, g.label, tuple(g.kinds), g.commendation_quota)
        for g in rules.ranking_groups or []
    )


def load_catalogue(settings: Settings) -> Catalogue:
    """Read and check `regions.json` and `assessment.json` from the configuration folder."""
    regions = tuple(Region.model_validate(entry) for entry in load_json(settings.regions_file))
    defaults = AssessmentDefaults.model_validate(load_json(settings.assessment_file))
    catalogue = Catalogue(
        regions=regions,
        rules=rules_of(defaults),
        famous_brand_tiers=tuple(defaults.famous_brand_tiers),
    )
    for region in regions:
        if problem := catalogue.county_problem(region.code, configured=False):
            raise ValueError(f"{settings.regions_file}: region {region.code!r} {problem}")
    if len(catalogue.county_codes) != len(regions):
        raise ValueError(f"{settings.regions_file}: a region code is listed twice")
    return catalogue


def validate_target_set(body: TargetSetCreate, catalogue: Catalogue) -> list[FieldError]:
    """Every inconsistency of a target set, each named by its field."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, indicator in enumerate(body.indicators):
        path = f"indicators[{index}]"
        if indicator.key in seen:
            errors.append(FieldError(f"{path}.key", f"duplicate indicator key {indicator.key!r}"))
        seen.add(indicator.key)
        errors.extend(_check_indicator(indicator, path, catalogue))
    if body.indicators and sum(i.weight for i in body.indicators) <= 0:
        errors.append(FieldError("indicators", "the weights must not all be zero"))
    if body.rules is not None:
        errors.extend(_check_rules(body.rules, catalogue))
    return errors


def _check_indicator(indicator: Indicator, path: str, catalogue: Catalogue) -> list[FieldError]:
    errors: list[FieldError] = []
    measure = indicator.measure
    info = catalogue.measures[measure.kind]
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
    errors.extend(_check_allocations(indicator, path, unit, catalogue))
    errors.extend(_check_options(indicator, path, unit))
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
    if comparator is Comparator.informational:
        if indicator.weight != 0:
            errors.append(FieldError(f"{path}.weight", "an informational indicator has weight 0"))
        if indicator.veto:
            errors.append(FieldError(f"{path}.veto", "an informational indicator cannot veto"))
        for name in ("target", "low", "high", "reference"):
            if getattr(indicator, name) is not None:
                errors.append(
                    FieldError(f"{path}.{name}", "an informational indicator has no target")
                )
        if indicator.allocations:
            errors.append(
                FieldError(f"{path}.allocations", "an informational indicator has no allocations")
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
    indicator: Indicator, path: str, unit: Unit, catalogue: Catalogue
) -> list[FieldError]:
    errors: list[FieldError] = []
    for code, allocation in indicator.allocations.items():
        where = f"{path}.allocations.{code}"
        problem = catalogue.county_problem(code)
        if problem:
            errors.append(FieldError(where, problem))
            continue
        errors.extend(_check_allocation(indicator.comparator, allocation, where, unit))
    if errors or not indicator.allocations or not allocates_by_county(indicator):
        return errors
    return _check_allocation_totals(indicator, path)


def _check_options(indicator: Indicator, path: str, unit: Unit) -> list[FieldError]:
    """The members that belong to one kind of indicator only."""
    errors: list[FieldError] = []
    if indicator.over is not None and indicator.comparator is not Comparator.about:
        errors.append(FieldError(f"{path}.over", "over belongs to the about comparator"))
    if indicator.expected_on is not None and indicator.cadence is not Cadence.batch:
        errors.append(FieldError(f"{path}.expected_on", "expected_on belongs to cadence batch"))
    if indicator.measure.incidents is not None and not (
        indicator.measure.kind is MeasureKind.confirmed_major_incidents
        or (indicator.measure.kind is MeasureKind.reported_value and unit is Unit.count)
    ):
        errors.append(
            FieldError(
                f"{path}.measure.incidents",
                "incidents are added to a reported count or choose the kinds of "
                "confirmed_major_incidents",
            )
        )
    if indicator.measure.award_kinds is not None and (
        indicator.measure.kind is not MeasureKind.awards_won
    ):
        errors.append(FieldError(f"{path}.measure.award_kinds", "award_kinds belong to awards_won"))
    if indicator.measure.findings is not None and (
        indicator.measure.kind is not MeasureKind.reported_value or unit is not Unit.count
    ):
        errors.append(
            FieldError(f"{path}.measure.findings", "findings are added to a reported count")
        )
    if indicator.city_value is not None and indicator.source is not Source.reported:
        errors.append(
            FieldError(f"{path}.city_value", "a city-level value replaces a reported roll-up")
        )
    allocated = allocates_by_county(indicator) or indicator.comparator is Comparator.milestone
    if indicator.unallocated_credit is not None and not (allocated and indicator.allocations):
        errors.append(
            FieldError(
                f"{path}.unallocated_credit",
                "a credit for counties without an allocation needs allocations",
            )
        )
    return errors


def _check_allocation(
    comparator: Comparator, allocation: Allocation, where: str, unit: Unit
) -> list[FieldError]:
    """The figures one county's allocation needs under `comparator`."""
    if comparator in REFERENCE_COMPARATORS or comparator is Comparator.zero:
        if allocation.target is not None or allocation.low is not None:
            return [FieldError(where, f"{comparator.value} takes no per-county figures")]
        return []
    if comparator is Comparator.milestone:
        return []
    if comparator is Comparator.between:
        if allocation.low is None or allocation.high is None or allocation.low > allocation.high:
            return [FieldError(where, "between needs low ≤ high for each county")]
        return []
    if allocation.target is None:
        return [FieldError(f"{where}.target", "the county's target is missing")]
    if allocation.target < 0 or (unit is Unit.rate and allocation.target > 1):
        return [FieldError(f"{where}.target", "out of range for this measure")]
    return []


def _check_allocation_totals(indicator: Indicator, path: str) -> list[FieldError]:
    """Counts are shared out: the county figures add up to the city figure."""
    pairs: tuple[tuple[str, float | None], ...]
    if indicator.comparator is Comparator.between:
        pairs = (("low", indicator.low), ("high", indicator.high))
    else:
        pairs = (("target", indicator.target),)
    errors: list[FieldError] = []
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


def _check_groups(rules: Rules, catalogue: Catalogue) -> list[FieldError]:
    """Ranking groups are named once each, and each kind of region is in at most one."""
    errors: list[FieldError] = []
    kinds = {region.kind for region in catalogue.regions}
    names: set[str] = set()
    placed: set[str] = set()
    for index, group in enumerate(rules.ranking_groups or []):
        where = f"rules.ranking_groups[{index}]"
        if group.group in names:
            errors.append(FieldError(f"{where}.group", f"group {group.group!r} is named twice"))
        names.add(group.group)
        for kind in group.kinds:
            if kind not in kinds:
                known = ", ".join(sorted(kinds))
                errors.append(
                    FieldError(f"{where}.kinds", f"unknown kind {kind!r}; known: {known}")
                )
            elif kind in placed:
                errors.append(FieldError(f"{where}.kinds", f"kind {kind!r} is in two groups"))
            placed.add(kind)
    return errors


def _check_rules(rules: Rules, catalogue: Catalogue) -> list[FieldError]:
    errors: list[FieldError] = _check_groups(rules, catalogue)
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
