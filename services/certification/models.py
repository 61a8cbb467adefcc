"""Tables of the certification service, on its own registry."""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, text
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

_version = version_column()
_disposition_version = version_column()


NUMBER_CONSTRAINT = "uq_certificate_certificate_number_certification_body"
"""A certification body issues each certificate number once."""

LICENCE_NUMBER_INDEX = "uq_certificate_licence_number"
"""Each licence number exists once per kind (a licence has no certification body)."""
LICENCES_ONLY = text("certification_body IS NULL")


class Certificate(Base, table=True):
    """A management-system certificate (`kind` management_system: a standard and a
    certification body) or a market-access licence (an issuing authority and product
    categories). `status` is the recorded status; `expired` is never stored but follows from
    `expires_on`."""

    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("certificate_number", "certification_body", name=NUMBER_CONSTRAINT),
        Index(
            "ix_certificate_enterprise_first_issue", "enterprise_credit_code", "original_issued_on"
        ),
        Index("ix_certificate_status_since", "status", "status_since"),
        Index("ix_certificate_county_standard", "county_code", "standard"),
        Index(
            LICENCE_NUMBER_INDEX,
            "kind",
            "certificate_number",
            unique=True,
            sqlite_where=LICENCES_ONLY,
            postgresql_where=LICENCES_ONLY,
        ),
        Index("ix_certificate_kind_county", "kind", "county_code"),
        # The county lists of certificates in force (`repository.status_is`): the county's
        # unexpired ones, and those whose recorded status is not yet in force.
        Index("ix_certificate_county_expires", "county_code", "expires_on"),
        Index("ix_certificate_status_from", "status_since"),
        # The year's newly certified enterprises (`repository.new_certified_by_county`).
        Index("ix_certificate_original_issued_on", "original_issued_on"),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(default="management_system", max_length=50)
    certificate_number: str = Field(max_length=100)
    standard: str | None = Field(default=None, max_length=50, index=True)
    certification_body: str | None = Field(default=None, max_length=200, index=True)
    issuing_authority: str | None = Field(default=None, max_length=200)
    product_categories: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    accreditation_body: str | None = Field(default=None, max_length=200)
    enterprise_credit_code: str = Field(max_length=18)
    enterprise_name: str = Field(max_length=200)
    county_code: str = Field(max_length=6)
    scope: str = Field(sa_column=Column(Text, nullable=False))
    sites: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    issued_on: date = Field(index=True)
    expires_on: date = Field(index=True)
    original_issued_on: date
    confidential: bool = Field(default=False)
    status: str = Field(max_length=16)
    status_since: date
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = Field(default=1, sa_column=_version)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _version}


class CertificateHistory(Base, table=True):
    """One entry of a certificate's history: creation, import, field edits and status changes.
    An edit keeps the fields it changed in `before` and `after`; a status change its
    `from_status`, `to_status` and `effective_on`, from which the status on any date follows."""

    __tablename__ = "certificate_history"
    __table_args__ = (
        Index("ix_certificate_history_certificate_effective", "certificate_id", "effective_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    certificate_id: str = Field(max_length=36, foreign_key="certificate.id")
    action: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    actor_name: str = Field(max_length=200)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    after: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    effective_on: date | None = None


DISPOSITION_ENTERPRISE_CONSTRAINT = "uq_food_disposition_enterprise_credit_code"
"""One current disposition per enterprise."""


class FoodDisposition(Base, table=True):
    """The current disposition of one enterprise in the food-processing rectification
    (supported, rectifying or closed); its decisions over time are `FoodDispositionDecision`."""

    __tablename__ = "food_disposition"
    __table_args__ = (
        UniqueConstraint("enterprise_credit_code", name=DISPOSITION_ENTERPRISE_CONSTRAINT),
        Index("ix_food_disposition_county_disposition", "county_code", "disposition"),
    )

    id: str = Field(primary_key=True, max_length=36)
    enterprise_credit_code: str = Field(max_length=18)
    enterprise_name: str = Field(max_length=200)
    county_code: str = Field(max_length=6)
    licence_number: str | None = Field(default=None, max_length=100)
    disposition: str = Field(max_length=16)
    decided_on: date
    deadline: date | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = Field(default=1, sa_column=_disposition_version)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _disposition_version}


class FoodDispositionDecision(Base, table=True):
    """One decision on an enterprise: the disposition it took from `decided_on` until the
    next decision, from which the disposition on any date follows."""

    __tablename__ = "food_disposition_decision"
    __table_args__ = (
        Index("ix_food_disposition_decision_decided", "disposition_id", "decided_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    disposition_id: str = Field(max_length=36, foreign_key="food_disposition.id")
    disposition: str = Field(max_length=16)
    decided_on: date
    deadline: date | None = None


class FoodDispositionHistory(Base, table=True):
    """One entry of a disposition's history: who changed what, when and why, with the old
    and new value of every field changed."""

    __tablename__ = "food_disposition_history"
    __table_args__ = (Index("ix_food_disposition_history_disposition", "disposition_id"),)

    id: int | None = Field(default=None, primary_key=True)
    disposition_id: str = Field(max_length=36, foreign_key="food_disposition.id")
    action: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    actor_name: str = Field(max_length=200)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    after: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
