"""Tables of the certification service, on its own registry."""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
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


NUMBER_CONSTRAINT = "uq_certificate_certificate_number_certification_body"
"""A certification body issues each certificate number once."""


class Certificate(Base, table=True):
    """A management-system certificate. `status` is the recorded status; `expired` is never
    stored but follows from `expires_on`."""

    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("certificate_number", "certification_body", name=NUMBER_CONSTRAINT),
        Index(
            "ix_certificate_enterprise_first_issue", "enterprise_credit_code", "original_issued_on"
        ),
        Index("ix_certificate_status_since", "status", "status_since"),
        Index("ix_certificate_county_standard", "county_code", "standard"),
    )

    id: str = Field(primary_key=True, max_length=36)
    certificate_number: str = Field(max_length=100)
    standard: str = Field(max_length=50, index=True)
    certification_body: str = Field(max_length=200, index=True)
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
