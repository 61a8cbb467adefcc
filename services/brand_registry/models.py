"""Tables of the brand_registry service, on its own registry."""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, String, Text, text
from sqlmodel import Field, SQLModel

from kit.db import new_registry, version_column
from kit.events import event_tables
from kit.idempotency import idempotency_table

registry = new_registry()
metadata = registry.metadata


class Base(SQLModel, registry=registry):
    """Base of every table of this service."""


idempotency_record = idempotency_table(metadata)
event_record, event_once_record = event_tables(metadata)

_brand_version = version_column()
_award_version = version_column()

UNREVOKED = text("revoked_on IS NULL")
LISTING_AWARD_INDEX = "uq_brand_listing_award"
"""Two unrevoked listings of one product, enterprise and tier awarded the same day always
overlap (a listing counts from its award day, and a renewal is awarded after the listing it
replaces), so the database refuses the second: concurrent identical awards store one."""


class Brand(Base, table=True):
    """A famous-brand listing (名牌產品) of one product of one enterprise in one tier.

    A geographical-indication product (地理標志產品) is a listing of its own tier, carrying the
    protected name and area and the approval it rests on; without a configured validity its
    `valid_until` is null and it never expires.

    `status` holds the last recorded state (active, suspended, revoked); expiry is not stored
    but follows from `valid_until` and `superseded_on` (the award date of the renewal that
    replaced this listing). `revoked_on` and the suspension periods date each state so that
    the status on any past date can be computed in SQL.
    """

    __tablename__ = "brand"
    __table_args__ = (
        Index("ix_brand_listing_key", "enterprise_credit_code", "product_name", "tier"),
        Index(
            LISTING_AWARD_INDEX,
            "enterprise_credit_code",
            "product_name",
            "tier",
            "awarded_on",
            unique=True,
            sqlite_where=UNREVOKED,
            postgresql_where=UNREVOKED,
        ),
        Index("ix_brand_county_tier_valid", "county_code", "tier", "valid_until"),
        Index(
            "ix_brand_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    product_name: str = Field(max_length=200)
    brand_name: str = Field(max_length=200)
    enterprise_credit_code: str = Field(max_length=18)
    enterprise_name: str = Field(max_length=200)
    county_code: str = Field(max_length=6)
    tier: str = Field(max_length=40, index=True)
    sector: str = Field(max_length=20, index=True)
    award_kind: str = Field(max_length=10, index=True)
    awarded_on: date = Field(index=True)
    valid_until: date | None = Field(default=None, index=True)
    international_standard: bool = Field(default=False, index=True)
    standard_code: str | None = Field(default=None, max_length=100)
    batch_code: str | None = Field(default=None, max_length=100, index=True)
    status: str = Field(default="active", max_length=20, index=True)
    status_changed_on: date | None = Field(default=None)
    revoked_on: date | None = Field(default=None, index=True)
    superseded_on: date | None = Field(default=None, index=True)
    renewal_of: str | None = Field(default=None, max_length=36, index=True)
    review_required: bool = Field(default=False, index=True)
    review_reason: str | None = Field(default=None, sa_type=Text)
    protected_name: str | None = Field(default=None, max_length=200)
    protected_area: list[str] | None = Field(default=None, sa_type=JSON)
    approval_authority: str | None = Field(default=None, max_length=200)
    notice_number: str | None = Field(default=None, max_length=100)
    counterfeit_cases: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    search_text: str = Field(max_length=700)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    version: int = Field(default=1, sa_column=_brand_version)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _brand_version}


class BrandSuspension(Base, table=True):
    """One period during which a listing was suspended; open while `ended_on` is null."""

    __tablename__ = "brand_suspension"
    __table_args__ = (Index("ix_brand_suspension_period", "brand_id", "started_on", "ended_on"),)

    id: str = Field(primary_key=True, max_length=36)
    brand_id: str = Field(sa_column=Column(String(36), ForeignKey("brand.id"), nullable=False))
    started_on: date
    ended_on: date | None = Field(default=None)


class BrandHistory(Base, table=True):
    """One change to a listing: what was done, by whom, when and why, and the values it
    replaced (`before`) and wrote (`after`), the status among them. Keys only in `after`
    describe the change itself (a review flag's source and reference)."""

    __tablename__ = "brand_history"
    __table_args__ = (Index("ix_brand_history_brand_changed", "brand_id", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    brand_id: str = Field(sa_column=Column(String(36), ForeignKey("brand.id"), nullable=False))
    action: str = Field(max_length=30)
    actor: str = Field(max_length=200)
    actor_name: str = Field(max_length=200)
    reason: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    effective_on: date | None = Field(default=None)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class ReviewFlag(Base, table=True):
    """A review request raised by another service, kept so a repeat is answered, not re-applied.

    Once its raiser withdraws it (`cleared_at`), the listings it flagged and no other standing
    flag holds are no longer under review (`cleared_brand_ids`); those another flag still holds
    stay so (`still_flagged_brand_ids`)."""

    __tablename__ = "review_flag"

    source: str = Field(primary_key=True, max_length=50)
    reference: str = Field(primary_key=True, max_length=200)
    enterprise_credit_code: str = Field(max_length=18, index=True)
    reason: str = Field(sa_type=Text)
    flagged_brand_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    raised_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    cleared_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    cleared_by: str | None = Field(default=None, max_length=200)
    clear_reason: str | None = Field(default=None, sa_type=Text)
    cleared_brand_ids: list[str] | None = Field(default=None, sa_type=JSON)
    still_flagged_brand_ids: list[str] | None = Field(default=None, sa_type=JSON)


AWARD_INDEX = "uq_award_enterprise_kind_level_year"
"""An enterprise receives one award of a kind and level in a year."""


class Award(Base, table=True):
    """A quality award (質量獎) or 卓越績效 self-assessment of one enterprise in one year.

    `status` is `awarded` until a revocation, dated by `revoked_on`."""

    __tablename__ = "award"
    __table_args__ = (
        Index(AWARD_INDEX, "enterprise_credit_code", "kind", "level", "year", unique=True),
        Index("ix_award_county_year", "county_code", "year"),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=60, index=True)
    level: str = Field(max_length=20, index=True)
    year: int = Field(index=True)
    enterprise_credit_code: str = Field(max_length=18)
    enterprise_name: str = Field(max_length=200)
    county_code: str = Field(max_length=6)
    awarded_on: date
    excellence_score: float | None = Field(default=None)
    status: str = Field(default="awarded", max_length=20)
    revoked_on: date | None = Field(default=None)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    version: int = Field(default=1, sa_column=_award_version)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _award_version}


class AwardHistory(Base, table=True):
    """One change to an award, shaped like a listing's history entry."""

    __tablename__ = "award_history"
    __table_args__ = (Index("ix_award_history_award_changed", "award_id", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    award_id: str = Field(sa_column=Column(String(36), ForeignKey("award.id"), nullable=False))
    action: str = Field(max_length=30)
    actor: str = Field(max_length=200)
    actor_name: str = Field(max_length=200)
    reason: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    effective_on: date | None = Field(default=None)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class CounterfeitNotice(Base, table=True):
    """A counterfeiting case against a listed product, reported by another service (an
    inspection incident); kept so a repeat is answered, not counted again."""

    __tablename__ = "counterfeit_notice"
    __table_args__ = (Index("ix_counterfeit_notice_brand_created", "brand_id", "created_at"),)

    source: str = Field(primary_key=True, max_length=50)
    reference: str = Field(primary_key=True, max_length=200)
    brand_id: str = Field(sa_column=Column(String(36), ForeignKey("brand.id"), nullable=False))
    case_kind: str = Field(max_length=50)
    occurred_on: date
    county_code: str = Field(max_length=6)
    summary: str = Field(sa_type=Text)
    raised_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
