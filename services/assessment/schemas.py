"""Request and response models of the assessment service."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from kit.identifiers import CountyCode
from kit.schemas import StrictModel

KEY_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"


class Source(StrEnum):
    brands = "brands"
    certificates = "certificates"
    spot_checks = "spot_checks"
    reported = "reported"
    incidents = "incidents"
    awards = "awards"
    food_dispositions = "food_dispositions"


class MeasureKind(StrEnum):
    new_awards = "new_awards"
    in_force = "in_force"
    international_share = "international_share"
    new_certified_enterprises = "new_certified_enterprises"
    pass_rate = "pass_rate"  # noqa: S105
    reported_value = "reported_value"
    metrology_pass_rate = "metrology_pass_rate"  # noqa: S105
    special_equipment_overdue = "special_equipment_overdue"
    licensed_food_producers = "licensed_food_producers"
    food_rectification_open = "food_rectification_open"
    confirmed_major_incidents = "confirmed_major_incidents"
    new_gi_products = "new_gi_products"
    awards_won = "awards_won"


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
    informational = "informational"


class ToleranceUnit(StrEnum):
    absolute = "absolute"
    percent = "percent"


class BrandTier(StrEnum):
    china_famous = "china_famous"
    national_inspection_exempt = "national_inspection_exempt"
    provincial_famous = "provincial_famous"
    city_famous = "city_famous"
    geographical_indication = "geographical_indication"


class CheckLevel(StrEnum):
    national = "national"
    provincial = "provincial"
    city = "city"


class Status(StrEnum):
    met = "met"
    missed = "missed"
    at_risk = "at_risk"
    pending = "pending"
    pending_review = "pending_review"
    no_data = "no_data"
    not_allocated = "not_allocated"
    informational = "informational"


class ReviewState(StrEnum):
    """Where a reported value is in review: only `accepted` values count."""

    submitted = "submitted"
    accepted = "accepted"
    returned = "returned"


class ReviewDecision(StrEnum):
    accepted = "accepted"
    returned = "returned"


class WorklistState(StrEnum):
    missing = "missing"
    submitted = "submitted"
    returned = "returned"
    accepted = "accepted"


class ScoringScheme(StrEnum):
    """How an indicator's weight is earned: in proportion to its attainment, all or nothing,
    or in steps (full when met, a fraction inside the amber band, nothing below)."""

    proportional = "proportional"
    all_or_nothing = "all_or_nothing"
    stepped = "stepped"


class Over(StrEnum):
    """Whether a figure above an `about` band is met (a count of new awards) or missed (a
    number to hold)."""

    met = "met"
    missed = "missed"


class Cadence(StrEnum):
    """`continuous`: accrues through the year and may be projected; `batch`: arrives at once
    (an award list, an acceptance, a year-end report) and is pending before its date."""

    continuous = "continuous"
    batch = "batch"


class FindingKind(StrEnum):
    """Findings the inspection service records on a spot-check."""

    unlicensed_referral = "unlicensed_referral"
    mandatory_standard_violation = "mandatory_standard_violation"
    refused = "refused"


class IncidentKind(StrEnum):
    """Incidents the inspection service records."""

    quality_incident = "quality_incident"
    food_safety_incident = "food_safety_incident"
    unlicensed_production = "unlicensed_production"
    counterfeiting_case = "counterfeiting_case"


class Rating(StrEnum):
    green = "green"
    amber = "amber"
    red = "red"


class Outcome(StrEnum):
    commended = "commended"
    criticized = "criticized"
    none = "none"
    not_assessed = "not_assessed"


class Measure(StrictModel):
    """What is counted: a measure of the catalogue and its parameters."""

    kind: MeasureKind
    tier: BrandTier | None = Field(default=None, description="new_awards, in_force")
    tiers: list[BrandTier] | None = Field(
        default=None,
        description="international_share (default: the famous-brand tiers of "
        "config/assessment.json)",
    )
    families: list[str] | None = Field(
        default=None, description="new_certified_enterprises (default: the service's families)"
    )
    levels: list[CheckLevel] | None = Field(
        default=None, description="pass_rate (default: national and provincial)"
    )
    key: str | None = Field(default=None, pattern=KEY_PATTERN, description="reported_value")
    unit: Unit | None = Field(default=None, description="reported_value: count, rate or flag")
    findings: list[FindingKind] | None = Field(
        default=None,
        description="reported_value (count): add the inspection service's findings of these "
        "kinds in the county to the reported figure",
    )
    findings_levels: list[CheckLevel] | None = Field(
        default=None, description="the spot-check levels whose findings count (default: all)"
    )
    incidents: list[IncidentKind] | None = Field(
        default=None,
        description="reported_value (count): add the inspection service's confirmed major "
        "incidents of these kinds in the county to the reported figure; "
        "confirmed_major_incidents: count these kinds only (default: every kind)",
    )
    award_kinds: list[str] | None = Field(
        default=None, description="awards_won: count these award kinds only (default: every kind)"
    )


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
    over: Over | None = Field(
        default=None,
        description="about: a figure above the band is met or missed (default: met for a "
        "count accumulated over the year, missed for a level to hold)",
    )
    weight: float = Field(ge=0, le=1000)
    scoring: ScoringScheme | None = Field(
        default=None, description="default: the set's rules.scoring, else proportional"
    )
    stepped_credit: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="stepped: the share of the weight earned inside the amber band "
        "(default: the set's rules.stepped_credit, else 0.5)",
    )
    thresholds: Thresholds | None = None
    veto: bool = False
    cadence: Cadence = Cadence.continuous
    expected_on: str | None = Field(
        default=None,
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="batch: the month and day (MM-DD) the figure is expected; default 12-31",
    )
    allocations: dict[str, Allocation] = Field(default_factory=dict)
    unallocated_credit: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="points added to the score of a county without an allocation, per unit "
        "it achieves anyway (a reached milestone is one unit)",
    )
    city_value: str | None = Field(
        default=None,
        pattern=KEY_PATTERN,
        description="reported: the reference value holding the city-level figure, instead of "
        "the roll-up of the counties' reports",
    )
    due_on: date | None = Field(
        default=None,
        description="reported: the day the counties' figure is due (shown in their worklist)",
    )


class GradeBand(StrictModel):
    grade: str = Field(pattern=KEY_PATTERN)
    label: str = Field(min_length=1, max_length=20)
    min_score: float = Field(ge=0, le=100)


class RankingGroup(StrictModel):
    """Regions ranked among themselves, chosen by their `kind` in `config/regions.json`."""

    group: str = Field(pattern=KEY_PATTERN)
    label: str = Field(min_length=1, max_length=40)
    kinds: list[str] = Field(min_length=1)
    commendation_quota: int | None = Field(
        default=None, ge=0, description="at most this many of the group commended, best first"
    )


class Rules(StrictModel):
    """How a set scores and judges; each member left out falls back to configuration."""

    grades: list[GradeBand] | None = None
    commended_grades: list[str] | None = None
    criticized_grades: list[str] | None = None
    scoring: ScoringScheme | None = None
    stepped_credit: float | None = Field(default=None, ge=0, le=1)
    commendation_quota: int | None = Field(
        default=None, ge=0, description="at most this many counties commended, best first"
    )
    ranking_groups: list[RankingGroup] | None = None


class TargetSetCreate(BaseModel):
    """A target set as sent with PUT, which creates the year's set or replaces it; the
    read-only members of a GET are ignored, so what a GET returns a PUT to another year accepts."""

    model_config = ConfigDict(extra="ignore")

    indicators: list[Indicator] = Field(min_length=1, max_length=200)
    rules: Rules | None = None
    reason: str | None = Field(default=None, max_length=1000)
    supersedes_published: bool = Field(
        default=False,
        description="required once a run of the year is published, with a reason",
    )


class AssessmentDefaults(StrictModel):
    """`config/assessment.json`: grade bands, which commend or criticize, rating thresholds,
    the default scoring scheme and the tiers counted as famous-brand products."""

    grades: list[GradeBand] = Field(min_length=1)
    commended_grades: list[str]
    criticized_grades: list[str]
    thresholds: Thresholds = Field(default_factory=Thresholds)
    scoring: ScoringScheme = ScoringScheme.proportional
    stepped_credit: float = Field(default=0.5, ge=0, le=1)
    famous_brand_tiers: list[BrandTier] = Field(
        default_factory=lambda: [
            BrandTier.china_famous,
            BrandTier.provincial_famous,
            BrandTier.city_famous,
        ]
    )


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


County = Annotated[CountyCode, Field(description="GB/T 2260 county code", examples=["320323"])]


class ReportedValueCreate(StrictModel):
    county_code: County
    year: int = Field(ge=1990, le=2100)
    indicator: str = Field(pattern=KEY_PATTERN)
    value: float
    evidence: Evidence
    reported_by: str = Field(min_length=1, max_length=200)
    measured_on: date | None = Field(
        default=None, description="The date the figure describes (default: today or year end)."
    )
    numerator: float | None = Field(
        default=None, ge=0, description="A rate's numerator (e.g. products covered by a standard)"
    )
    denominator: float | None = Field(
        default=None, gt=0, description="A rate's denominator (e.g. products made)"
    )


class ReportedValueRead(BaseModel):
    id: str
    county_code: str
    year: int
    indicator: str
    value: float
    numerator: float | None = None
    denominator: float | None = None
    evidence: Evidence
    reported_by: str
    measured_on: date
    reported_at: datetime
    recorded_by: str
    current: bool
    superseded_by: str | None
    state: ReviewState
    comment: str | None = Field(description="the reviewer's comment (required when returned)")
    reviewed_by: str | None
    reviewed_at: datetime | None


class ReviewCreate(StrictModel):
    """A reviewer's decision on a submitted value."""

    state: ReviewDecision
    comment: str | None = Field(
        default=None, max_length=2000, description="required when the value is returned"
    )


class ReportedValueHistory(BaseModel):
    """Every report of one county's indicator in a year, oldest first, and each change."""

    county_code: str
    year: int
    indicator: str
    items: list[ReportedValueRead]
    entries: list[AssessmentHistoryRead]


class EvidenceRead(BaseModel):
    id: str
    reported_value_id: str
    name: str
    size: int
    content_type: str
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    download_url: str


class WorklistItem(BaseModel):
    indicator: str
    label: str
    due_on: date | None
    state: WorklistState
    value: float | None
    reported_value_id: str | None
    comment: str | None
    submitted_at: datetime | None
    reviewed_at: datetime | None


class Worklist(BaseModel):
    """One county's reported indicators of a year and where each stands."""

    year: int
    county_code: str
    county_name: str
    items: list[WorklistItem]


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


class RunPublish(StrictModel):
    """Publishing a run; once the year has a published run, the new one names it and why."""

    supersedes: str | None = Field(
        default=None, max_length=36, description="the year's published run this one replaces"
    )
    reason: str | None = Field(default=None, min_length=1, max_length=1000)


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
    provisional: bool = False
    supersedes: str | None = None
    superseded_by: str | None = None
    publication_reason: str | None = None


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
    scoring: ScoringScheme | None = None
    credit: float | None = None
    bonus: float | None = None


class ExplainedIndicator(IndicatorStanding):
    """An indicator with its inputs, comparator, formula, thresholds and contribution."""

    explanation: dict[str, Any]


class Standing(Open):
    """A county's (or the city's) standing: score, grade, rank, outcome, indicators."""

    county_code: str | None
    county_name: str
    kind: str
    score: float | None
    grade: str | None
    grade_label: str | None
    status: Status
    rating: Rating | None
    missed: int
    total_weight: float
    indicators: list[IndicatorStanding]
    rank: int | None = None
    outcome: Outcome | None = None
    outcome_reason: str | None = None
    provisional: bool = False
    group: str | None = None
    group_label: str | None = None
    group_rank: int | None = None
    not_assessed: list[str] | None = None
    bonus: float | None = None


class StandingsMeta(Open):
    """Completeness of the inputs (`ok` or the reason per source) and the rules applied."""

    completeness: dict[str, str]
    complete: bool


class StandingsRead(BaseModel):
    """Every county's standing and the city-wide roll-up for a year."""

    year: int
    as_of: date
    provisional: bool = False
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


ReportedValueHistory.model_rebuild()


class RecordSection(BaseModel):
    """One data service's records of an enterprise, as that service serves them."""

    items: list[dict[str, Any]]
    count: int
    truncated: bool = Field(
        description="More records exist than the view reads (the first 1,000 are shown)."
    )


class ListingSection(RecordSection):
    """Brand listings or certificates, with how many are in each status today."""

    by_status: dict[str, int]


class SpotCheckSection(RecordSection):
    """Spot-checks, with the originals failed after their re-inspections and the latest one."""

    failed: int
    latest: dict[str, Any] | None


class EnterpriseReviewFlag(BaseModel):
    """A listing under review (a failed spot-check flagged it, for one)."""

    brand_id: str
    product_name: str
    tier: str
    reason: str | None


class EnterpriseAlert(BaseModel):
    """Something that needs attention now, named as the event that announces it."""

    type: str = Field(examples=["certificate.expiring_soon"])
    subject: str = Field(examples=["certificates/0192…"])
    county_code: str | None
    detail: str
    due_on: date | None = None
    days_left: int | None = None
    ids: list[str] = []


class EnterpriseMeta(Open):
    """How each data service answered (`ok`, `not_permitted: …`, `truncated: …` or why it is
    missing), the sections the caller may not read and those cut short."""

    completeness: dict[str, str]
    complete: bool
    not_permitted: list[str]
    truncated: list[str]
    as_of: date


class EnterpriseRead(BaseModel):
    """What the data services know of one enterprise; a section whose read scope the caller
    lacks is omitted (and named in `meta.not_permitted`)."""

    credit_code: str
    name: str | None
    county_codes: list[str]
    brands: ListingSection | None = None
    certificates: ListingSection | None = None
    spot_checks: SpotCheckSection | None = None
    review_flags: list[EnterpriseReviewFlag] | None = None
    alerts: list[EnterpriseAlert]
    meta: EnterpriseMeta


class EnterpriseMatch(BaseModel):
    """One enterprise a search found, with the records of each kind found for it."""

    credit_code: str
    name: str
    county_code: str
    brands: int | None = None
    certificates: int | None = None
    spot_checks: int | None = None


class EnterpriseSearchRead(BaseModel):
    """Enterprises whose name holds the text or whose credit code starts with it."""

    items: list[EnterpriseMatch]
    meta: EnterpriseMeta
