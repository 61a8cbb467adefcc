"""Request and response models of the assessment service."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kit.schemas import StrictModel

KEY_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"


class Source(StrEnum):
    brands = "brands"
    certificates = "certificates"
    spot_checks = "spot_checks"
    reported = "reported"


class MeasureKind(StrEnum):
    new_awards = "new_awards"
    in_force = "in_force"
    international_share = "international_share"
    new_certified_enterprises = "new_certified_enterprises"
    pass_rate = "pass_rate"  # noqa: S105
    reported_value = "reported_value"


class Unit(StrEnum):
    # The member shadows `str.count`, which mypy reports; "count" is the API's value.
    count = "count"  # type: ignore[assignment]
    rate = "rate"
    flag = "flag"


class Comparator(StrEnum):
    at_least = "at_least"
    at_most = "at_most"
    about = "about"
    between = "between"
    maintain = "maintain"
    above_reference = "above_reference"
    below_reference = "below_reference"
    milestone = "milestone"
    zero = "zero"


class ToleranceUnit(StrEnum):
    absolute = "absolute"
    percent = "percent"


class BrandTier(StrEnum):
    china_famous = "china_famous"
    national_inspection_exempt = "national_inspection_exempt"
    provincial_famous = "provincial_famous"
    city_famous = "city_famous"


class CheckLevel(StrEnum):
    national = "national"
    provincial = "provincial"
    city = "city"


class Status(StrEnum):
    met = "met"
    missed = "missed"
    at_risk = "at_risk"
    no_data = "no_data"


class Rating(StrEnum):
    green = "green"
    amber = "amber"
    red = "red"


class Outcome(StrEnum):
    commended = "commended"
    criticized = "criticized"
    none = "none"


class Measure(StrictModel):
    """What is counted: a measure of the catalogue and its parameters."""

    kind: MeasureKind
    tier: BrandTier | None = Field(default=None, description="new_awards, in_force")
    tiers: list[BrandTier] | None = Field(
        default=None, description="international_share (default: every tier)"
    )
    families: list[str] | None = Field(
        default=None, description="new_certified_enterprises (default: the service's families)"
    )
    levels: list[CheckLevel] | None = Field(
        default=None, description="pass_rate (default: national and provincial)"
    )
    key: str | None = Field(default=None, pattern=KEY_PATTERN, description="reported_value")
    unit: Unit | None = Field(default=None, description="reported_value: count, rate or flag")


class Thresholds(StrictModel):
    """Attainment at or above `green` rates green, at or above `amber` amber, else red."""

    green: float = Field(default=0.9, gt=0, le=1)
    amber: float = Field(default=0.75, ge=0, le=1)


class Allocation(StrictModel):
    """One county's share of an indicator's target."""

    target: float | None = None
    low: float | None = None
    high: float | None = None


class Indicator(StrictModel):
    """One indicator of a target set."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    source: Source
    measure: Measure
    comparator: Comparator
    target: float | None = None
    low: float | None = None
    high: float | None = None
    tolerance: float | None = Field(default=None, ge=0)
    tolerance_unit: ToleranceUnit = ToleranceUnit.absolute
    reference: str | None = Field(default=None, pattern=KEY_PATTERN)
    margin: float = 0.0
    weight: float = Field(ge=0, le=1000)
    thresholds: Thresholds | None = None
    veto: bool = False
    allocations: dict[str, Allocation] = Field(default_factory=dict)


class GradeBand(StrictModel):
    grade: str = Field(pattern=KEY_PATTERN)
    label: str = Field(min_length=1, max_length=20)
    min_score: float = Field(ge=0, le=100)


class Rules(StrictModel):
    """Grade bands and which bands commend or criticize; defaults from configuration."""

    grades: list[GradeBand] | None = None
    commended_grades: list[str] | None = None
    criticized_grades: list[str] | None = None


class TargetSetCreate(BaseModel):
    """A target set as sent with PUT, which creates the year's set or replaces it; the
    read-only members of a GET are ignored, so what a GET returns a PUT to another year accepts."""

    model_config = ConfigDict(extra="ignore")

    indicators: list[Indicator] = Field(min_length=1, max_length=200)
    rules: Rules | None = None
    reason: str | None = Field(default=None, max_length=1000)


class AssessmentDefaults(StrictModel):
    """`config/assessment.json`: grade bands, which commend or criticize, rating thresholds."""

    grades: list[GradeBand] = Field(min_length=1)
    commended_grades: list[str]
    criticized_grades: list[str]
    thresholds: Thresholds = Field(default_factory=Thresholds)


class TargetSetRead(BaseModel):
    year: int
    version: int
    reason: str | None
    frozen: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    indicators: list[Indicator]
    rules: Rules | None


class TargetSetSummary(BaseModel):
    year: int
    version: int
    reason: str | None
    current: bool
    frozen: bool
    indicator_count: int
    created_at: datetime
    created_by: str


class Region(StrictModel):
    """A county or district of `config/regions.json`."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    kind: str


class Evidence(StrictModel):
    document: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=4000)


class ReportedValueCreate(StrictModel):
    county_code: str
    year: int = Field(ge=1990, le=2100)
    indicator: str = Field(pattern=KEY_PATTERN)
    value: float
    evidence: Evidence
    reported_by: str = Field(min_length=1, max_length=200)
    measured_on: date | None = Field(
        default=None, description="The date the figure describes (default: today or year end)."
    )


class ReportedValueRead(BaseModel):
    id: str
    county_code: str
    year: int
    indicator: str
    value: float
    evidence: Evidence
    reported_by: str
    measured_on: date
    reported_at: datetime
    recorded_by: str
    current: bool
    superseded_by: str | None


class ReferenceValueCreate(StrictModel):
    """A reference value as sent with PUT, which creates it or replaces it."""

    value: float = Field(ge=0)
    source: str = Field(min_length=1, max_length=500)
    published_on: date


class ReferenceValueRead(BaseModel):
    id: str
    key: str
    year: int
    value: float
    source: str
    published_on: date
    updated_at: datetime
    updated_by: str


class RunCreate(StrictModel):
    as_of: date | None = None
    note: str | None = Field(default=None, max_length=1000)


class RunSummary(BaseModel):
    id: str
    year: int
    as_of: date
    status: str
    complete: bool
    completeness: dict[str, str]
    target_set_version: int
    note: str | None
    created_at: datetime
    created_by: str
    published_at: datetime | None
    published_by: str | None


class RunRead(RunSummary):
    standings: dict[str, Any]
    inputs: dict[str, Any]


class AssessmentHistoryRead(BaseModel):
    """One entry of the append-only log of changes (`GET /audit-entries`)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    entity: str
    entity_id: str
    action: str
    year: int | None
    actor: str
    reason: str | None = None
    at: datetime
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Open(BaseModel):
    """A response shape that documents its members and keeps any added later."""

    model_config = ConfigDict(extra="allow")


class Provenance(Open):
    """Where an actual value came from: the service, the request and the field read."""

    service: str
    query: str | None = None
    fetched_at: datetime | None = None
    field: str | None = None


class IndicatorStanding(Open):
    """One indicator of one county (or the city): actual against target."""

    indicator: str
    name: str
    source: Source
    unit: Unit
    actual: float | None
    target: float | None
    comparator: Comparator
    status: Status
    attainment: float | None
    rating: Rating | None
    basis: str | None
    projected: float | None
    weight: float
    veto: bool
    reason: str | None
    provenance: Provenance
    contribution: float | None = None


class ExplainedIndicator(IndicatorStanding):
    """An indicator with its inputs, comparator, formula, thresholds and contribution."""

    explanation: dict[str, Any]


class Standing(Open):
    """A county's (or the city's) standing: score, grade, rank, outcome, indicators."""

    county_code: str | None
    county_name: str
    kind: str
    score: float
    grade: str
    grade_label: str
    status: Status
    rating: Rating | None
    missed: int
    total_weight: float
    indicators: list[IndicatorStanding]
    rank: int | None = None
    outcome: Outcome | None = None
    outcome_reason: str | None = None


class StandingsMeta(Open):
    """Completeness of the inputs (`ok` or the reason per source) and the rules applied."""

    completeness: dict[str, str]
    complete: bool


class StandingsRead(BaseModel):
    """Every county's standing and the city-wide roll-up for a year."""

    year: int
    as_of: date
    items: list[Standing]
    city: Standing
    meta: StandingsMeta


class CountyStandingRead(Standing):
    """One county's standing with every figure explained."""

    indicators: list[ExplainedIndicator]  # type: ignore[assignment]
    year: int
    as_of: date
    explanation: dict[str, Any]
    meta: StandingsMeta
