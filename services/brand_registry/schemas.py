"""Request and response shapes of the brand_registry API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kit.identifiers import CountyCode, CreditCode
from kit.schemas import StrictModel


class Tier(StrEnum):
    """The listing tiers; each tier's label, validity and closing date come from configuration."""

    china_famous = "china_famous"
    national_inspection_exempt = "national_inspection_exempt"
    provincial_famous = "provincial_famous"
    city_famous = "city_famous"
    geographical_indication = "geographical_indication"


class Sector(StrEnum):
    industry = "industry"
    agriculture = "agriculture"
    service = "service"


class AwardKind(StrEnum):
    """`new` counts as 新增; a `renewal` continues an earlier listing."""

    new = "new"
    renewal = "renewal"


class BrandStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"


class BrandCreate(StrictModel):
    """A new listing; `valid_until` defaults to `awarded_on` plus the tier's validity."""

    product_name: str = Field(min_length=1, max_length=200)
    brand_name: str = Field(min_length=1, max_length=200)
    enterprise_credit_code: CreditCode
    enterprise_name: str = Field(min_length=1, max_length=200)
    county_code: CountyCode
    tier: Tier
    sector: Sector
    award_kind: AwardKind = AwardKind.new
    awarded_on: date
    valid_until: date | None = None
    international_standard: bool = False
    standard_code: str | None = Field(default=None, max_length=100)
    batch_code: str | None = Field(
        default=None, max_length=100, description="The award announcement the listing came from."
    )
    protected_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The protected product name (geographical_indication only, required there).",
    )
    protected_area: list[CountyCode] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="The counties of the protected area (geographical_indication only, required"
        " there); in CSV, codes separated by `;`.",
    )
    approval_authority: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who approved the protection, e.g. 國家質量監督檢驗檢疫總局"
        " (geographical_indication only, required there).",
    )
    notice_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The approval's announcement, e.g. 2006年第XX號"
        " (geographical_indication only, required there).",
    )


class ListingFilters(BaseModel):
    """The filters of the list and the export, read from the query string (which also
    carries `limit` and `cursor`, so other parameters are ignored); `status` is judged on
    `as_of`."""

    model_config = ConfigDict(use_enum_values=True, str_strip_whitespace=True, frozen=True)

    county_code: CountyCode | None = None
    tier: Tier | None = None
    sector: Sector | None = None
    status: BrandStatus | None = Field(
        default=None, description="Status on `as_of` (default today)."
    )
    as_of: date | None = None
    award_kind: AwardKind | None = None
    awarded_from: date | None = None
    awarded_to: date | None = None
    enterprise_credit_code: CreditCode | None = None
    international_standard: bool | None = None
    review_required: bool | None = None
    batch_code: str | None = Field(default=None, max_length=100)
    expiring_within_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Only listings in force on `as_of` (default today) whose validity ends"
        " within this many days of it.",
    )
    overdue_suspension: bool | None = Field(
        default=None, description="Only suspensions longer than the configured limit."
    )
    enterprise_credit_code_prefix: str | None = Field(
        default=None,
        min_length=2,
        max_length=18,
        pattern=r"^[0-9A-Za-z]+$",
        description="The start of the enterprise's credit code (either case).",
    )
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Text in the product, brand or enterprise name.",
    )


class BrandUpdate(StrictModel):
    """Field edits; tier, enterprise and award kind identify the award and are not edited."""

    product_name: str | None = Field(default=None, min_length=1, max_length=200)
    brand_name: str | None = Field(default=None, min_length=1, max_length=200)
    enterprise_name: str | None = Field(default=None, min_length=1, max_length=200)
    county_code: CountyCode | None = None
    sector: Sector | None = None
    awarded_on: date | None = None
    valid_until: date | None = None
    international_standard: bool | None = None
    standard_code: str | None = Field(default=None, max_length=100)
    batch_code: str | None = Field(default=None, max_length=100)
    protected_name: str | None = Field(default=None, min_length=1, max_length=200)
    protected_area: list[CountyCode] | None = Field(default=None, min_length=1, max_length=50)
    approval_authority: str | None = Field(default=None, min_length=1, max_length=200)
    notice_number: str | None = Field(default=None, min_length=1, max_length=100)


class BrandRead(BaseModel):
    """A listing as served; `status` is the status today, expiry included."""

    id: str
    product_name: str
    brand_name: str
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    tier: Tier
    tier_label: str
    sector: Sector
    award_kind: AwardKind
    awarded_on: date
    valid_until: date | None = Field(description="Null: the listing never expires.")
    international_standard: bool
    standard_code: str | None
    batch_code: str | None
    protected_name: str | None
    protected_area: list[str] | None
    approval_authority: str | None
    notice_number: str | None
    counterfeit_cases: int = Field(
        description="Counterfeiting cases against the product that were notified to the registry."
    )
    status: BrandStatus
    renewal_of: str | None
    superseded_on: date | None
    review_required: bool
    review_reason: str | None
    suspension_overdue: bool = Field(
        description="Suspended today for longer than the configured limit (6 months)."
    )
    created_at: datetime
    updated_at: datetime


class BrandStatusUpdate(StrictModel):
    """A status action; `clear_review` with the current status clears the review flag."""

    status: BrandStatus
    reason: str = Field(min_length=1, max_length=2000)
    clear_review: bool = False
    effective_on: date | None = Field(
        default=None, description="The date the change takes effect (default today)."
    )


class BrandHistoryRead(BaseModel):
    """One change to a listing; `from_status`, `to_status` and `changes` (`{field: [old,
    new]}`) are read from the entry's `before` and `after`."""

    id: str
    changed_at: datetime
    actor_id: str
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    effective_on: date | None
    changes: dict[str, Any] | None
    reason: str | None


class ReviewFlagCreate(StrictModel):
    enterprise_credit_code: CreditCode
    source: str = Field(min_length=1, max_length=50)
    reference: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class ReviewFlagRead(BaseModel):
    reference: str
    source: str
    flagged_brand_ids: list[str]
    created: bool


class ReviewFlagClear(StrictModel):
    """Why the raiser withdraws its flag (kept in each listing's history)."""

    reason: str = Field(min_length=1, max_length=2000)


class ReviewFlagClearRead(BaseModel):
    """A withdrawn flag: the listings no longer under review, and those another standing
    flag keeps under review; `changed` is false on a repeat, which changes nothing."""

    source: str
    reference: str
    enterprise_credit_code: str
    cleared_at: datetime
    cleared_brand_ids: list[str]
    still_flagged_brand_ids: list[str]
    changed: bool


class TierRead(BaseModel):
    code: Tier
    label: str
    validity_years: int | None
    awards_closed_after: date | None
    renewal_grace_days: int = 0


class Counts(BaseModel):
    new_awards: int
    in_force: int
    in_force_international: int


class StatsGroup(Counts):
    county_code: str
    tier: Tier


class CountyCounts(Counts):
    county_code: str


class TierCounts(Counts):
    tier: Tier


class BrandStatsRead(BaseModel):
    """New awards in `year` and listings in force on `as_of`, by county and tier."""

    year: int
    as_of: date
    groups: list[StatsGroup]
    by_county: list[CountyCounts]
    by_tier: list[TierCounts]
    totals: Counts


IMPORT_FIELDS = tuple(BrandCreate.model_fields)
IMPORT_REQUIRED = tuple(
    name for name, field in BrandCreate.model_fields.items() if field.is_required()
)
EXPORT_FIELDS = tuple(BrandRead.model_fields)

LABELS: dict[str, str] = {
    "id": "编号",
    "product_name": "产品名称",
    "brand_name": "品牌",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "county_code": "县区代码",
    "tier": "名牌类别",
    "tier_label": "名牌类别名称",
    "sector": "产业",
    "award_kind": "认定类型",
    "awarded_on": "认定日期",
    "valid_until": "有效期至",
    "international_standard": "采用国际标准",
    "standard_code": "标准编号",
    "batch_code": "认定批次",
    "status": "状态",
    "renewal_of": "续认定的名牌编号",
    "superseded_on": "被续认定日期",
    "review_required": "需复核",
    "review_reason": "复核原因",
    "suspension_overdue": "暂停超期",
    "protected_name": "保护产品名称",
    "protected_area": "保护范围县区代码",
    "approval_authority": "批准机关",
    "notice_number": "批准公告号",
    "counterfeit_cases": "假冒案件数",
    "created_at": "创建时间",
    "updated_at": "更新时间",
}
"""The Chinese column label of each field: an export's workbook header, and what an import
workbook's header may say instead of the field name."""

IMPORT_ENUMS: dict[str, list[str]] = {
    "tier": [str(tier) for tier in Tier],
    "sector": [str(sector) for sector in Sector],
    "award_kind": [str(kind) for kind in AwardKind],
    "international_standard": ["true", "false"],
}
"""The choices of the import template's list validations."""

IMPORT_EXAMPLE: dict[str, Any] = {
    "product_name": "维维豆奶粉",
    "brand_name": "维维",
    "enterprise_credit_code": "91320300134789719F",
    "enterprise_name": "维维集团股份有限公司",
    "county_code": "320323",
    "tier": "provincial_famous",
    "sector": "industry",
    "award_kind": "new",
    "awarded_on": date(2024, 12, 1),
    "valid_until": None,
    "international_standard": "false",
    "standard_code": "GB/T 18738-2006",
    "batch_code": "苏名牌〔2024〕1号",
    "protected_name": None,
    "protected_area": None,
    "approval_authority": None,
    "notice_number": None,
}
"""The example row of the import template."""


class CounterfeitNoticeCreate(StrictModel):
    """A counterfeiting case against a listed product, reported by another service."""

    source: str = Field(min_length=1, max_length=50)
    reference: str = Field(min_length=1, max_length=200)
    brand_id: str = Field(min_length=1, max_length=36)
    case_kind: str = Field(
        min_length=1,
        max_length=50,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="The reporter's code for the case, e.g. `counterfeiting_case`.",
    )
    occurred_on: date
    county_code: CountyCode
    summary: str = Field(min_length=1, max_length=2000)


class CounterfeitNoticeRead(BaseModel):
    source: str
    reference: str
    brand_id: str
    case_kind: str
    occurred_on: date
    county_code: str
    summary: str
    raised_by: str
    created_at: datetime


# Quality awards ------------------------------------------------------------------------


class AwardLevel(StrEnum):
    national = "national"
    provincial = "provincial"
    city = "city"


class AwardStatus(StrEnum):
    awarded = "awarded"
    revoked = "revoked"


AWARD_KIND_PATTERN = r"^[a-z][a-z0-9_]*$"


class AwardCreate(StrictModel):
    """A quality award or 卓越績效 self-assessment; `kind` and its levels come from
    `config/award_kinds.json`."""

    kind: str = Field(min_length=1, max_length=60, pattern=AWARD_KIND_PATTERN)
    level: AwardLevel
    year: int = Field(ge=1980, le=2100)
    enterprise_credit_code: CreditCode
    enterprise_name: str = Field(min_length=1, max_length=200)
    county_code: CountyCode
    awarded_on: date
    excellence_score: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="The GB/T 19580 score out of 1000 (required for a self-assessment).",
    )


class AwardUpdate(StrictModel):
    """Field edits; kind, level, year and enterprise identify the award and are not edited."""

    enterprise_name: str | None = Field(default=None, min_length=1, max_length=200)
    county_code: CountyCode | None = None
    awarded_on: date | None = None
    excellence_score: float | None = Field(default=None, ge=0, le=1000)


class AwardRead(BaseModel):
    id: str
    kind: str
    kind_label: str
    level: AwardLevel
    year: int
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    awarded_on: date
    excellence_score: float | None
    status: AwardStatus
    revoked_on: date | None
    created_at: datetime
    updated_at: datetime


class AwardStatusUpdate(StrictModel):
    """The one status action: `awarded` to `revoked`, with its reason."""

    status: AwardStatus
    reason: str = Field(min_length=1, max_length=2000)
    effective_on: date | None = Field(
        default=None, description="The date the revocation takes effect (default today)."
    )


class AwardFilters(BaseModel):
    """The filters of the award list, read from the query string."""

    model_config = ConfigDict(use_enum_values=True, str_strip_whitespace=True, frozen=True)

    kind: str | None = Field(default=None, max_length=60, pattern=AWARD_KIND_PATTERN)
    level: AwardLevel | None = None
    year: int | None = Field(default=None, ge=1980, le=2100)
    county_code: CountyCode | None = None
    enterprise_credit_code: CreditCode | None = None
    status: AwardStatus | None = None


class AwardCounts(BaseModel):
    awards: int
    by_kind: dict[str, int]
    by_level: dict[str, int]


class CountyAwardCounts(AwardCounts):
    county_code: str


class AwardStatsRead(BaseModel):
    """Awards of `year` conferred by `as_of` and not revoked on it, by county, kind and level."""

    year: int
    as_of: date
    by_county: list[CountyAwardCounts]
    totals: AwardCounts


AWARD_IMPORT_FIELDS = tuple(AwardCreate.model_fields)
AWARD_IMPORT_REQUIRED = tuple(
    name for name, field in AwardCreate.model_fields.items() if field.is_required()
)
AWARD_EXPORT_FIELDS = tuple(AwardRead.model_fields)

AWARD_LABELS: dict[str, str] = {
    "id": "编号",
    "kind": "奖项类别",
    "kind_label": "奖项名称",
    "level": "级别",
    "year": "年度",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "county_code": "县区代码",
    "awarded_on": "授予日期",
    "excellence_score": "卓越绩效评分",
    "status": "状态",
    "revoked_on": "撤销日期",
    "created_at": "创建时间",
    "updated_at": "更新时间",
}
"""The Chinese column label of each award field (export header, accepted on import)."""

AWARD_IMPORT_EXAMPLE: dict[str, Any] = {
    "kind": "city_quality_management_award",
    "level": "city",
    "year": 2024,
    "enterprise_credit_code": "91320300134789719F",
    "enterprise_name": "维维集团股份有限公司",
    "county_code": "320323",
    "awarded_on": date(2024, 12, 1),
    "excellence_score": None,
}
"""The example row of the award import template."""
