"""Request and response shapes of the certification API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from kit.identifiers import CountyCode, CreditCode
from kit.schemas import StrictModel


class CertificateStatus(StrEnum):
    valid = "valid"
    suspended = "suspended"
    withdrawn = "withdrawn"
    expired = "expired"


# Its shape checked by `kit.identifiers.CountyCode`, then against the configured regions by
# the service (`service.county_error`), for bodies, imported rows, filters and statistics alike.
COUNTY_CODE = "GB/T 2260 code of a county or district this deployment serves."

STATUS_LABELS = {
    CertificateStatus.valid: "有效",
    CertificateStatus.suspended: "暫停",
    CertificateStatus.withdrawn: "撤銷",
    CertificateStatus.expired: "過期",
}


KIND = (
    "management_system (a standard and a certification body), or a licence kind of "
    "GET /api/v1/certificates/kinds (an issuing authority and product categories)."
)


class CertificateCreate(StrictModel):
    """A new certificate or licence. `expires_on` defaults to the kind's validity after
    `issued_on`, `original_issued_on` to `issued_on`; `status` other than `valid` is for
    loading records. A management-system certificate needs `standard` and
    `certification_body`; a licence needs `issuing_authority` and `product_categories`
    instead (and has neither of the former)."""

    kind: str = Field(default="management_system", min_length=1, max_length=50, description=KIND)
    certificate_number: str = Field(min_length=1, max_length=100)
    standard: str | None = Field(
        default=None, min_length=1, max_length=50, examples=["ISO 9001:2015"]
    )
    certification_body: str | None = Field(default=None, min_length=1, max_length=200)
    accreditation_body: str | None = Field(default=None, max_length=200)
    issuing_authority: str | None = Field(default=None, min_length=1, max_length=200)
    product_categories: list[str] = Field(default_factory=list, max_length=50)
    enterprise_credit_code: CreditCode
    enterprise_name: str = Field(min_length=1, max_length=200)
    county_code: CountyCode = Field(description=COUNTY_CODE, examples=["320323"])
    scope: str = Field(min_length=1, max_length=4000)
    sites: list[str] = Field(default_factory=list, max_length=100)
    issued_on: date
    expires_on: date | None = None
    original_issued_on: date | None = None
    confidential: bool = False
    status: CertificateStatus = CertificateStatus.valid
    status_since: date | None = None


class CertificateUpdate(StrictModel):
    """Fields to change; status changes go through `POST …/{id}/status`."""

    certificate_number: str | None = Field(default=None, min_length=1, max_length=100)
    standard: str | None = Field(default=None, min_length=1, max_length=50)
    certification_body: str | None = Field(default=None, min_length=1, max_length=200)
    accreditation_body: str | None = Field(default=None, max_length=200)
    enterprise_credit_code: CreditCode | None = None
    enterprise_name: str | None = Field(default=None, min_length=1, max_length=200)
    county_code: CountyCode | None = Field(default=None, description=COUNTY_CODE)
    scope: str | None = Field(default=None, min_length=1, max_length=4000)
    sites: list[str] | None = Field(default=None, max_length=100)
    issued_on: date | None = None
    expires_on: date | None = None
    original_issued_on: date | None = None
    confidential: bool | None = None
    issuing_authority: str | None = Field(default=None, min_length=1, max_length=200)
    product_categories: list[str] | None = Field(default=None, max_length=50)


class CertificateRead(BaseModel):
    id: str
    kind: str
    kind_label: str | None
    certificate_number: str
    standard: str | None
    standard_name: str | None
    family: str | None
    family_label: str | None
    certification_body: str | None
    accreditation_body: str | None
    issuing_authority: str | None
    product_categories: list[str]
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    scope: str
    sites: list[str]
    issued_on: date
    expires_on: date
    original_issued_on: date
    confidential: bool
    status: CertificateStatus
    status_label: str
    status_since: date
    suspension_overdue: bool
    version: int
    created_at: datetime
    updated_at: datetime


class StatusChange(StrictModel):
    """A requested status change; `effective_on` (default today) dates it for `as_of` queries."""

    status: CertificateStatus
    reason: str = Field(min_length=1, max_length=2000)
    effective_on: date | None = None


class CertificateHistoryRead(BaseModel):
    """One entry of a certificate's history."""

    id: int
    kind: str
    from_status: str | None
    to_status: str | None
    effective_on: date | None
    reason: str | None
    changes: dict[str, Any] | None
    actor_id: str
    actor_name: str
    occurred_at: datetime


class Verification(BaseModel):
    """What a purchaser learns about one certificate or licence."""

    kind: str
    certificate_number: str
    certification_body: str | None
    accreditation_body: str | None
    issuing_authority: str | None
    product_categories: list[str]
    standard: str | None
    standard_name: str | None
    family: str | None
    scope: str
    sites: list[str]
    enterprise_credit_code: str
    enterprise_name: str
    issued_on: date
    expires_on: date
    original_issued_on: date
    as_of: date
    status: CertificateStatus | None = Field(description="Status on `as_of`; null before issue.")
    status_label: str | None
    in_force: bool


class VerifyQuery(StrictModel):
    """One question: a certificate number (optionally with its body) or a credit code."""

    number: str | None = Field(default=None, min_length=1, max_length=100)
    body: str | None = Field(default=None, min_length=1, max_length=200)
    enterprise_credit_code: CreditCode | None = None

    @model_validator(mode="after")
    def _one_key(self) -> VerifyQuery:
        if (self.number is None) == (self.enterprise_credit_code is None):
            raise ValueError("give either number (with optional body) or enterprise_credit_code")
        if self.body is not None and self.number is None:
            raise ValueError("body goes with number")
        return self


class VerifyRequest(StrictModel):
    items: list[VerifyQuery] = Field(min_length=1, max_length=100)
    as_of: date | None = None
    kind: str | None = Field(default=None, max_length=50, description="Only this kind.")


class VerifyResult(BaseModel):
    number: str | None
    body: str | None
    enterprise_credit_code: str | None
    found: bool
    certificates: list[Verification]


class VerifyResponse(BaseModel):
    as_of: date
    items: list[VerifyResult]


class CountyStats(BaseModel):
    county_code: str
    new_certified_enterprises: int
    in_force: int
    in_force_by_family: dict[str, int]


class StatsTotals(BaseModel):
    new_certified_enterprises: int
    in_force: int
    in_force_by_family: dict[str, int]


class CertificateStats(BaseModel):
    year: int
    as_of: date
    kind: str = "management_system"
    families: list[str]
    by_county: list[CountyStats]
    totals: StatsTotals


class LicenceCounts(BaseModel):
    licensed_enterprises: int = Field(
        description="Distinct enterprises holding a licence of the kind in force on `as_of`."
    )
    new_licences: int = Field(description="Licences of the kind issued in the year by `as_of`.")


class CountyLicenceStats(LicenceCounts):
    county_code: str


class LicenceStats(BaseModel):
    """Licences of one kind per county (`?kind=` a licence kind)."""

    year: int
    as_of: date
    kind: str
    by_county: list[CountyLicenceStats]
    totals: LicenceCounts


class Disposition(StrEnum):
    supported = "supported"
    rectifying = "rectifying"
    closed = "closed"


DISPOSITION_LABELS = {
    Disposition.supported: "扶持",
    Disposition.rectifying: "整頓",
    Disposition.closed: "關閉",
}


class DispositionCreate(StrictModel):
    """An enterprise's first decision in the food-processing rectification. `deadline` (the
    end of the rectification) goes with `rectifying` only, and is required there."""

    enterprise_credit_code: CreditCode
    enterprise_name: str = Field(min_length=1, max_length=200)
    county_code: CountyCode = Field(description=COUNTY_CODE, examples=["320323"])
    licence_number: str | None = Field(
        default=None, min_length=1, max_length=100, examples=["QS320301010001"]
    )
    disposition: Disposition
    decided_on: date
    deadline: date | None = None
    reason: str = Field(min_length=1, max_length=2000)


class DispositionUpdate(StrictModel):
    """Fields to change. A changed `disposition` is a new decision (dated `decided_on`,
    default today); `decided_on` or `deadline` alone correct the current decision. `reason`
    is kept with the change in the history."""

    enterprise_name: str | None = Field(default=None, min_length=1, max_length=200)
    county_code: CountyCode | None = Field(default=None, description=COUNTY_CODE)
    licence_number: str | None = Field(default=None, min_length=1, max_length=100)
    disposition: Disposition | None = None
    decided_on: date | None = None
    deadline: date | None = None
    reason: str = Field(min_length=1, max_length=2000)


class DispositionRead(BaseModel):
    id: str
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str
    licence_number: str | None
    disposition: Disposition
    disposition_label: str
    decided_on: date
    deadline: date | None
    reason: str
    version: int
    created_at: datetime
    updated_at: datetime


class DispositionHistoryRead(BaseModel):
    """One entry of a disposition's history: `before` and `after` hold the fields changed."""

    id: int
    action: str
    actor: str
    actor_name: str
    at: datetime
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DispositionCounts(BaseModel):
    supported: int
    rectifying: int
    closed: int
    total: int


class CountyDispositionStats(DispositionCounts):
    county_code: str


class DispositionStats(BaseModel):
    """Each enterprise's disposition on `as_of` (its latest decision by then), per county."""

    year: int
    as_of: date
    by_county: list[CountyDispositionStats]
    totals: DispositionCounts


LABELS: dict[str, str] = {
    "id": "编号",
    "certificate_number": "证书编号",
    "standard": "认证标准",
    "family": "标准类别",
    "certification_body": "认证机构",
    "accreditation_body": "认可机构",
    "enterprise_credit_code": "统一社会信用代码",
    "enterprise_name": "企业名称",
    "county_code": "县区代码",
    "scope": "认证范围",
    "sites": "认证场所",
    "issued_on": "发证日期",
    "expires_on": "有效期至",
    "original_issued_on": "初次发证日期",
    "confidential": "保密",
    "status": "状态",
    "status_since": "状态起始日期",
    "kind": "证书类型",
    "issuing_authority": "发证机关",
    "product_categories": "产品类别",
}
"""The Chinese column label of each export column: a workbook export's header, and what an
import workbook's header may say instead of the field name."""

IMPORT_ENUMS: dict[str, list[str]] = {
    "status": [str(status) for status in CertificateStatus],
    "confidential": ["true", "false"],
}
"""The choices of the import template's list validations."""

IMPORT_EXAMPLE: dict[str, Any] = {
    "certificate_number": "00124Q31234R0M",
    "standard": "ISO 9001:2015",
    "certification_body": "中国质量认证中心",
    "accreditation_body": "CNAS",
    "enterprise_credit_code": "91320300134789719F",
    "enterprise_name": "徐州工程机械集团有限公司",
    "county_code": "320323",
    "scope": "工程机械的设计、生产和服务",
    "sites": "徐州市铜山区; 徐州市经济技术开发区",
    "issued_on": date(2024, 12, 1),
    "expires_on": None,
    "original_issued_on": None,
    "confidential": "false",
    "status": "valid",
    "status_since": None,
    "kind": "management_system",
    "issuing_authority": None,
    "product_categories": None,
}
"""The example row of the import template."""
