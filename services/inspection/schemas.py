"""Request and response shapes of the inspection service."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, Field, StringConstraints, model_validator

from kit.identifiers import CountyCode, CreditCode
from kit.schemas import StrictModel


class Level(StrEnum):
    """Who ordered the check."""

    national = "national"
    provincial = "provincial"
    city = "city"


LEVEL_LABELS = {
    Level.national: "國家監督抽查",
    Level.provincial: "省級監督抽查",
    Level.city: "市級監督抽查",
}


class Result(StrEnum):
    """The verdict on the sample."""

    passed = "pass"
    failed = "fail"


RESULT_LABELS = {Result.passed: "合格", Result.failed: "不合格"}


class Programme(StrEnum):
    """The supervision programme a record belongs to; config/programmes.json says which
    fields each requires and allows."""

    product_quality = "product_quality"
    metrology = "metrology"
    food_safety = "food_safety"
    special_equipment = "special_equipment"


# Text is stripped of outer whitespace by StrictModel before these lengths are checked.
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Requirement = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ReportNumber = Annotated[str, StringConstraints(max_length=100)]
SpotCheckId = Annotated[str, StringConstraints(max_length=36)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
ShortCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]
UnitCode = Annotated[str, StringConstraints(min_length=1, max_length=16)]
InstrumentCount = Annotated[int, Field(ge=1, le=1_000_000)]
NonconformingCount = Annotated[int, Field(ge=0, le=1_000_000)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Shortfall = Annotated[Decimal, Field(max_digits=12, decimal_places=3)]
Deficiency = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=3)]


class NonconformingItem(StrictModel):
    """One failed test item: what was tested, what the standard requires, what was measured."""

    item: Name
    requirement: Requirement
    measured: Name


class SpotCheckFields(StrictModel):
    """The recorded facts of a spot-check, validated field by field; which of the
    programme's fields a record needs is the catalogue's rule (service.py)."""

    plan_code: Code
    level: Level
    product_category: Code | None = None
    product_name: Name | None = None
    enterprise_credit_code: CreditCode
    enterprise_name: Name
    county_code: CountyCode
    sample_code: Code | None = None
    sampled_on: date = Field(
        description="The sampling day; a special-equipment inspection's day, which a request "
        "may also send as `inspected_on`."
    )
    result: Result
    nonconforming_items: list[NonconformingItem] = Field(default_factory=list, max_length=200)
    mandatory_standard_violation: bool = False
    testing_lab: ShortText | None = None
    report_number: ReportNumber | None = None
    refused: bool = False
    unlicensed_referral: bool = False
    published_on: date | None = None
    programme: Programme = Programme.product_quality
    metrology_subject: ShortCode | None = None
    instruments_checked: InstrumentCount | None = None
    instruments_nonconforming: NonconformingCount | None = None
    nominal_quantity: Quantity | None = None
    quantity_unit: UnitCode | None = None
    measured_shortfall: Shortfall | None = Field(
        default=None, description="Nominal minus actual content (negative: more than nominal)."
    )
    tolerated_deficiency: Deficiency | None = None
    equipment_code: Code | None = Field(
        default=None, description="The item's registration code (特種設備使用登記), its identity."
    )
    equipment_kind: ShortCode | None = None
    next_due_on: date | None = None
    major_hazard_source: bool | None = Field(default=None, description="重大危險源")
    inspected_on: date | None = Field(
        default=None,
        description="A special-equipment inspection's day: `sampled_on` under its own name "
        "(either may be sent; both must agree). Not stored apart.",
    )

    @model_validator(mode="before")
    @classmethod
    def _sampled_on_from_inspected_on(cls, data: Any) -> Any:
        """A record sending only `inspected_on` was sampled (inspected) on that day."""
        if isinstance(data, dict) and data.get("inspected_on") and "sampled_on" not in data:
            return {**data, "sampled_on": data["inspected_on"]}
        return data


class SpotCheckCreate(SpotCheckFields):
    """A new spot-check; `reinspection_of` names the failed check it re-inspects."""

    reinspection_of: SpotCheckId | None = None
    reason: Reason | None = Field(default=None, description="Note kept in the history.")


class SpotCheckUpdate(StrictModel):
    """A correction: the fields to change and why (a correction is never a delete)."""

    reason: Reason
    plan_code: Code | None = None
    level: Level | None = None
    product_category: Code | None = None
    product_name: Name | None = None
    enterprise_credit_code: CreditCode | None = None
    enterprise_name: Name | None = None
    county_code: CountyCode | None = None
    sample_code: Code | None = None
    sampled_on: date | None = None
    result: Result | None = None
    nonconforming_items: list[NonconformingItem] | None = Field(default=None, max_length=200)
    mandatory_standard_violation: bool | None = None
    testing_lab: ShortText | None = None
    report_number: ReportNumber | None = None
    refused: bool | None = None
    unlicensed_referral: bool | None = None
    published_on: date | None = None
    programme: Programme | None = None
    metrology_subject: ShortCode | None = None
    instruments_checked: InstrumentCount | None = None
    instruments_nonconforming: NonconformingCount | None = None
    nominal_quantity: Quantity | None = None
    quantity_unit: UnitCode | None = None
    measured_shortfall: Shortfall | None = None
    tolerated_deficiency: Deficiency | None = None
    equipment_code: Code | None = None
    equipment_kind: ShortCode | None = None
    next_due_on: date | None = None
    major_hazard_source: bool | None = None
    inspected_on: date | None = Field(
        default=None, description="A special-equipment inspection's day: its `sampled_on`."
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, other than the reason; `inspected_on` alone corrects
        `sampled_on` too."""
        changes = self.model_dump(exclude_unset=True, exclude={"reason"})
        if changes.get("inspected_on") is not None:
            changes.setdefault("sampled_on", changes["inspected_on"])
        return changes


class SpotCheckRead(BaseModel):
    """A spot-check as served."""

    id: str
    programme: Programme
    programme_label: str
    plan_code: str
    level: Level
    level_label: str
    product_category: str | None
    product_category_label: str | None
    product_name: str | None
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    sample_code: str | None
    sampled_on: date
    result: Result
    result_label: str
    nonconforming_items: list[NonconformingItem]
    mandatory_standard_violation: bool
    testing_lab: str | None
    report_number: str | None
    refused: bool
    unlicensed_referral: bool
    published_on: date | None
    published: bool = Field(description="The bulletin date is set and reached.")
    reinspection_of: str | None
    root_id: str = Field(description="The original check of this sample's re-inspection chain.")
    final_result: Result | None = Field(
        description="On an original: its result after every re-inspection; null on a re-inspection."
    )
    metrology_subject: str | None = None
    metrology_subject_label: str | None = None
    instruments_checked: int | None = None
    instruments_nonconforming: int | None = None
    nominal_quantity: Decimal | None = None
    quantity_unit: str | None = None
    measured_shortfall: Decimal | None = None
    tolerated_deficiency: Decimal | None = None
    equipment_code: str | None = None
    equipment_kind: str | None = None
    equipment_kind_label: str | None = None
    inspected_on: date | None = Field(
        default=None, description="A special-equipment inspection's day (its `sampled_on`)."
    )
    next_due_on: date | None = None
    major_hazard_source: bool | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


class SpotCheckHistoryRead(BaseModel):
    """One change of a spot-check: `changes` is `{field: [old, new]}` for a correction and
    every recorded field for a check as it was recorded."""

    id: str
    version: int
    action: str
    changed_by: str
    changed_at: datetime
    reason: str
    changes: dict[str, Any]


class SpotCheckHistoryList(BaseModel):
    """Every change of one spot-check, oldest first."""

    spot_check_id: str
    items: list[SpotCheckHistoryRead]


@dataclass(frozen=True)
class SpotCheckFilters:
    """The list and export filters, already validated."""

    plan_code: str | None = None
    level: Level | None = None
    county_code: str | None = None
    product_category: str | None = None
    result: Result | None = None
    sampled_from: date | None = None
    sampled_to: date | None = None
    enterprise_credit_code: str | None = None
    enterprise_credit_code_prefix: str | None = None
    q: str | None = None
    include_unpublished: bool = False
    county_codes: frozenset[str] | None = None
    """The caller's readable counties (None: all), from its binding."""
    programmes: frozenset[str] | None = None
    """The programmes listed (None: every programme)."""
    equipment_code: str | None = None


class PassRate(BaseModel):
    checked: int
    passed: int
    pass_rate: float | None


class GroupStats(PassRate):
    county_code: str
    level: Level


class CountyStats(PassRate):
    county_code: str


class CategoryStats(PassRate):
    product_category: str
    product_category_label: str


class FindingCounts(BaseModel):
    """Chains of checks with a finding, by kind; a violation or refusal whose chain ends in a
    pass (overturned on re-inspection) is no finding."""

    unlicensed_referral: int = 0
    mandatory_standard_violation: int = 0
    refused: int = 0
    total: int = 0


class CountyFindings(FindingCounts):
    county_code: str


class FindingRecord(BaseModel):
    """One sample whose chain of checks carries a finding, with the checks that recorded it."""

    id: str = Field(description="the original check of the sample")
    record_ids: list[str] = Field(description="the checks of the chain that record a finding")
    county_code: str
    level: Level
    plan_code: str
    sample_code: str | None
    enterprise_credit_code: str
    enterprise_name: str
    product_name: str | None
    sampled_on: date
    published_on: date | None
    kinds: list[str]


class SpotCheckStats(BaseModel):
    """Samples of a year after re-inspections, per county and level, county, and category;
    and the findings (refusals, mandatory-standard violations, referrals for unlicensed
    production) per county, in total and record by record. The product-quality and
    food-safety programmes' stats."""

    programme: Literal["product_quality", "food_safety"] = "product_quality"
    year: int
    as_of: date
    levels: list[Level]
    include_unpublished: bool
    groups: list[GroupStats]
    by_county: list[CountyStats]
    by_category: list[CategoryStats]
    totals: PassRate
    findings_by_county: list[CountyFindings] = []
    findings_totals: FindingCounts = FindingCounts()
    finding_records: list[FindingRecord] = []


class FindingRow(NamedTuple):
    """A check carrying a finding, with the final result of its chain: a row as the database
    gives it (a year can carry thousands)."""

    id: str
    root_id: str
    county_code: str
    level: str
    plan_code: str
    sample_code: str | None
    enterprise_credit_code: str
    enterprise_name: str
    product_name: str | None
    sampled_on: date
    published_on: date | None
    refused: bool
    mandatory_standard_violation: bool
    unlicensed_referral: bool
    chain_passed: bool


class MetrologyCounts(BaseModel):
    """Metrology checks (records) and how many found nonconformities, and the instruments
    (or packages) they checked and found nonconforming."""

    checked: int = 0
    nonconforming: int = 0
    instruments_checked: int = 0
    instruments_nonconforming: int = 0


class MetrologyGroupStats(MetrologyCounts):
    county_code: str
    level: Level


class MetrologyCountyStats(MetrologyCounts):
    county_code: str


class MetrologySubjectStats(MetrologyCounts):
    metrology_subject: str
    metrology_subject_label: str


class MetrologyStats(BaseModel):
    """Metrology checks sampled in `year` by `as_of`, per county and level, county and
    subject; a check is nonconforming when its result is a failure."""

    programme: Literal["metrology"] = "metrology"
    year: int
    as_of: date
    levels: list[Level]
    include_unpublished: bool
    groups: list[MetrologyGroupStats]
    by_county: list[MetrologyCountyStats]
    by_subject: list[MetrologySubjectStats]
    totals: MetrologyCounts


class InspectionCounts(BaseModel):
    inspected: int = 0
    failed: int = 0


class EquipmentGroupStats(InspectionCounts):
    county_code: str
    level: Level


class EquipmentCounts(InspectionCounts):
    """Inspections of the year by `as_of` and how many failed; and the items (distinct
    equipment codes) registered by `as_of`, counted in the county of their latest inspection:
    those whose latest inspection's next due day is before `as_of` are overdue."""

    items_registered: int = 0
    items_overdue: int = 0
    items_major_hazard: int = Field(
        default=0, description="Items whose latest inspection marks a major hazard source."
    )
    items_major_hazard_overdue: int = 0


class EquipmentCountyStats(EquipmentCounts):
    county_code: str
    overdue_equipment_codes: list[str] = Field(
        default_factory=list, description="The overdue items' codes, for the explanation."
    )


class EquipmentKindStats(EquipmentCounts):
    equipment_kind: str
    equipment_kind_label: str


class SpecialEquipmentStats(BaseModel):
    """Special-equipment inspections and items per county (and level, and kind)."""

    programme: Literal["special_equipment"] = "special_equipment"
    year: int
    as_of: date
    levels: list[Level]
    include_unpublished: bool
    groups: list[EquipmentGroupStats]
    by_county: list[EquipmentCountyStats]
    by_kind: list[EquipmentKindStats]
    totals: EquipmentCounts


ProgrammeStats = SpotCheckStats | MetrologyStats | SpecialEquipmentStats


@dataclass(frozen=True)
class CountRow:
    """One GROUP BY row of a programme's counts: the group's key and its counts."""

    county_code: str
    level: str
    kind: str | None
    records: int
    failed: int
    instruments_checked: int = 0
    instruments_nonconforming: int = 0


@dataclass(frozen=True)
class ItemRow:
    """How many special-equipment items of a county and kind, overdue or not, a major hazard
    source or not, as their latest inspection by the cut-off day records them."""

    county_code: str
    equipment_kind: str | None
    overdue: bool
    major_hazard_source: bool
    items: int


@dataclass(frozen=True)
class StatsRow:
    """One GROUP BY row of the stats query."""

    county_code: str
    level: str
    product_category: str
    checked: int
    passed: int


LABELS: dict[str, str] = {
    "id": "编号",
    "plan_code": "抽查计划编号",
    "level": "抽查级别",
    "product_category": "产品类别",
    "product_name": "产品名称",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "county_code": "县区代码",
    "sample_code": "样品编号",
    "sampled_on": "抽样日期",
    "result": "检验结论",
    "nonconforming_items": "不合格项目",
    "mandatory_standard_violation": "违反强制性标准",
    "testing_lab": "检验机构",
    "report_number": "检验报告编号",
    "refused": "拒检",
    "unlicensed_referral": "无证移送",
    "published_on": "公布日期",
    "reinspection_of": "复检的原抽查编号",
    "root_id": "首次抽查编号",
    "final_result": "最终结论",
    "created_by": "录入者",
    "created_at": "创建时间",
    "updated_at": "更新时间",
    "programme": "监管项目",
    "metrology_subject": "计量检查对象",
    "instruments_checked": "检查器具数",
    "instruments_nonconforming": "不合格器具数",
    "nominal_quantity": "标注净含量",
    "quantity_unit": "计量单位",
    "measured_shortfall": "实际短缺量",
    "tolerated_deficiency": "允许短缺量",
    "equipment_code": "设备注册代码",
    "equipment_kind": "设备种类",
    "inspected_on": "检验日期",
    "next_due_on": "下次检验日期",
    "major_hazard_source": "重大危险源",
}
"""The Chinese column label of each export column: a workbook export's header, and what an
import workbook's header may say instead of the field name."""

IMPORT_ENUMS: dict[str, list[str]] = {
    "level": [str(level) for level in Level],
    "result": [str(result) for result in Result],
    "mandatory_standard_violation": ["true", "false"],
    "refused": ["true", "false"],
    "unlicensed_referral": ["true", "false"],
    "programme": [str(programme) for programme in Programme],
    "major_hazard_source": ["true", "false"],
}
"""The choices of the import template's list validations."""

IMPORT_EXAMPLE: dict[str, Any] = {
    "plan_code": "2024-GJ-01",
    "level": "national",
    "product_category": "food",
    "product_name": "速冻水饺",
    "enterprise_credit_code": "91320300134789719F",
    "enterprise_name": "徐州市某某食品有限公司",
    "county_code": "320323",
    "sample_code": "S-0001",
    "sampled_on": date(2024, 11, 1),
    "result": "fail",
    "nonconforming_items": '[{"item": "铅含量", "requirement": "≤0.5 mg/kg", '
    '"measured": "0.9 mg/kg"}]',
    "mandatory_standard_violation": "true",
    "testing_lab": "徐州市产品质量监督检验中心",
    "report_number": "XZ2024-0001",
    "refused": "false",
    "unlicensed_referral": "false",
    "published_on": date(2024, 11, 8),
    "programme": "product_quality",
    "metrology_subject": None,
    "instruments_checked": None,
    "instruments_nonconforming": None,
    "nominal_quantity": None,
    "quantity_unit": None,
    "measured_shortfall": None,
    "tolerated_deficiency": None,
    "equipment_code": None,
    "equipment_kind": None,
    "next_due_on": None,
    "major_hazard_source": None,
}
"""The example row of the import template."""


@dataclass(frozen=True)
class FailureWindow:
    """Which failures `GET /spot-checks/repeated-failures` counts, already validated:
    originals sampled after `start` and by `end` whose failure stands after re-inspections
    (as the stats count them), of the caller's readable counties."""

    start: date
    end: date
    min_failures: int
    county_code: str | None = None
    include_unpublished: bool = False
    county_codes: frozenset[str] | None = None


class FailedCheck(BaseModel):
    """One failed spot-check of an enterprise."""

    id: str
    plan_code: str
    level: Level
    product_name: str | None
    county_code: str
    sampled_on: date
    published_on: date | None


class RepeatedFailures(BaseModel):
    """An enterprise with at least `min_failures` failed spot-checks within the window;
    its name and county are those of its latest failure."""

    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    failures: int
    window_from: date = Field(description="The window's first day (sampled on or after).")
    window_to: date = Field(description="The window's last day (`as_of`).")
    checks: list[FailedCheck] = Field(description="The failed checks, oldest sampling first.")


class OverdueEquipment(BaseModel):
    """A special-equipment item whose periodic inspection is overdue: its latest inspection
    by `as_of` named a next due day before it."""

    equipment_code: str
    equipment_kind: str | None
    county_code: str
    enterprise_credit_code: str
    enterprise_name: str
    last_inspection_id: str
    inspected_on: date
    next_due_on: date
    days_overdue: int = Field(description="Days from the next due day to `as_of`.")
    major_hazard_source: bool = Field(
        description="Monitored as a major hazard source (重大危險源)."
    )
