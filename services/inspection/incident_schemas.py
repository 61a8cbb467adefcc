"""Request and response shapes of incidents: quality and food-safety incidents, unlicensed
production and counterfeiting cases (§二.5, §三.7 of the plan)."""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from kit.identifiers import CountyCode, CreditCode
from kit.schemas import StrictModel


class IncidentKind(StrEnum):
    """What happened; the labels are in `config/incidents.json`."""

    quality_incident = "quality_incident"
    food_safety_incident = "food_safety_incident"
    unlicensed_production = "unlicensed_production"
    counterfeiting_case = "counterfeiting_case"


class Severity(StrEnum):
    """A major incident names the criterion of `config/incidents.json` that makes it one."""

    ordinary = "ordinary"
    major = "major"


SEVERITY_LABELS = {Severity.ordinary: "一般", Severity.major: "重大"}


class IncidentStatus(StrEnum):
    """`reported` → `confirmed` | `dismissed`; `confirmed` → `closed` | `dismissed`."""

    reported = "reported"
    confirmed = "confirmed"
    closed = "closed"
    dismissed = "dismissed"


STATUS_LABELS = {
    IncidentStatus.reported: "已上報",
    IncidentStatus.confirmed: "已確認",
    IncidentStatus.closed: "已結案",
    IncidentStatus.dismissed: "已排除",
}

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SourceSystem = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SourceReference = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CriterionCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
BrandId = Annotated[str, StringConstraints(min_length=1, max_length=36)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class IncidentCreate(StrictModel):
    """A new incident as the source system reports it; it starts `reported`."""

    kind: IncidentKind
    county_code: CountyCode
    occurred_on: date
    reported_on: date | None = Field(
        default=None, description="The day the bureau learned of it (default today)."
    )
    title: Title
    description: Description = ""
    severity: Severity
    severity_criterion: CriterionCode | None = Field(
        default=None, description="For a major incident: the criterion's code."
    )
    source_system: SourceSystem
    source_reference: SourceReference = Field(
        description="The incident's reference in the source system, unique there."
    )
    enterprise_credit_code: CreditCode | None = None
    enterprise_name: Name | None = None
    counterfeits_brand_id: BrandId | None = Field(
        default=None,
        description="A counterfeiting case against a listed brand: the brand's id. Once"
        " the case is confirmed the brand registry is notified.",
    )


class IncidentUpdate(StrictModel):
    """A correction: the fields to change and why (the status changes by its own action)."""

    reason: Reason
    kind: IncidentKind | None = None
    county_code: CountyCode | None = None
    occurred_on: date | None = None
    title: Title | None = None
    description: Description | None = None
    severity: Severity | None = None
    severity_criterion: CriterionCode | None = None
    source_system: SourceSystem | None = None
    source_reference: SourceReference | None = None
    enterprise_credit_code: CreditCode | None = None
    enterprise_name: Name | None = None
    counterfeits_brand_id: BrandId | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, other than the reason."""
        return self.model_dump(exclude_unset=True, exclude={"reason"})


class IncidentStatusChange(StrictModel):
    """A status action; dismissing needs a reason."""

    status: IncidentStatus
    reason: Reason | None = None
    effective_on: date | None = Field(
        default=None, description="The day it takes effect (default today; never later)."
    )


class IncidentRead(BaseModel):
    """An incident as served, with labels beside the codes."""

    id: str
    kind: IncidentKind
    kind_label: str
    county_code: str
    occurred_on: date
    reported_on: date
    title: str
    description: str
    severity: Severity
    severity_label: str
    severity_criterion: str | None
    severity_criterion_label: str | None
    source_system: str
    source_reference: str
    enterprise_credit_code: str | None
    enterprise_name: str | None
    counterfeits_brand_id: str | None
    status: IncidentStatus
    status_label: str
    status_on: date = Field(description="The day the current status took effect.")
    status_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


class IncidentHistoryRead(BaseModel):
    """One change of an incident: `changes` is `{field: [old, new]}` for a correction, and
    every recorded field for the report."""

    id: str
    version: int
    action: str
    actor: str
    at: datetime
    reason: str | None
    from_status: IncidentStatus | None
    to_status: IncidentStatus | None
    effective_on: date | None
    changes: dict[str, Any]


class IncidentHistoryList(BaseModel):
    """Every change of one incident, oldest first."""

    incident_id: str
    items: list[IncidentHistoryRead]


@dataclass(frozen=True)
class IncidentFilters:
    """The list and export filters, already validated."""

    kind: IncidentKind | None = None
    county_code: str | None = None
    status: IncidentStatus | None = None
    severity: Severity | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None
    county_codes: frozenset[str] | None = None
    """The caller's readable counties (None: all), from its binding."""


class IncidentCounts(BaseModel):
    """Incidents of the year by their status on `as_of`: `reported` counts every one not
    dismissed by then, `confirmed` those confirmed or closed (a closed incident happened),
    `confirmed_major` the major ones among them; a dismissed incident counts only as
    `dismissed`."""

    reported: int = 0
    confirmed: int = 0
    confirmed_major: int = 0
    dismissed: int = 0
    by_kind: dict[str, int] = Field(
        default_factory=dict, description="Confirmed major incidents per kind."
    )


class IncidentCountyStats(IncidentCounts):
    county_code: str
    confirmed_major_ids: list[str] = Field(
        default_factory=list, description="The confirmed major incidents, oldest first."
    )


class ConfirmedMajorIncident(BaseModel):
    """A confirmed major incident, as the veto's explanation names it."""

    id: str
    county_code: str
    kind: IncidentKind
    kind_label: str
    title: str
    occurred_on: date
    severity_criterion: str | None
    severity_criterion_label: str | None
    status: IncidentStatus = Field(description="Its status on `as_of`.")
    source_system: str
    source_reference: str


class IncidentStats(BaseModel):
    """Incidents that occurred in `year` by `as_of`, counted by their status on `as_of`."""

    year: int
    as_of: date
    by_county: list[IncidentCountyStats]
    totals: IncidentCounts
    confirmed_major_records: list[ConfirmedMajorIncident]


@dataclass(frozen=True)
class IncidentStatsRow:
    """One GROUP BY row of the stats query: how many incidents of a county, kind and
    severity had a status on the day."""

    county_code: str
    kind: str
    severity: str
    status: str
    count: int


LABELS: dict[str, str] = {
    "id": "编号",
    "kind": "事件类别",
    "county_code": "县区代码",
    "occurred_on": "发生日期",
    "reported_on": "上报日期",
    "title": "事件名称",
    "description": "事件经过",
    "severity": "严重程度",
    "severity_criterion": "重大事件认定标准",
    "source_system": "来源系统",
    "source_reference": "来源编号",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "counterfeits_brand_id": "被假冒名牌编号",
    "status": "状态",
    "status_on": "状态日期",
    "status_reason": "状态说明",
    "created_by": "录入者",
    "created_at": "创建时间",
    "updated_at": "更新时间",
}
"""The Chinese column label of each export column (a workbook export's header)."""
