"""Tables of the inspection service, on its own registry.

A re-inspection (復檢) chain is one original check followed by re-inspections, each of the
previous link. The original carries the chain's outcome for statistics (`final_result`, and
`overturned_on`, the day the overturning pass became public), so the stats are one GROUP BY
over originals with a covering partial index.
"""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, DateTime, Index, text
from sqlmodel import Field, SQLModel

from kit.db import new_registry, version_column
from kit.events import event_tables
from kit.idempotency import idempotency_table
from kit.outbox import OutboxRecord

registry = new_registry()
metadata = registry.metadata


class Base(SQLModel, registry=registry):
    """Base of every table of this service."""


idempotency_record = idempotency_table(metadata)
event_record, event_once_record = event_tables(metadata)

ORIGINALS_ONLY = text("reinspection_of IS NULL")
EQUIPMENT_ONLY = text("equipment_code IS NOT NULL AND reinspection_of IS NULL")
FINDING = "(refused OR mandatory_standard_violation OR unlicensed_referral)"
ORIGINAL_FINDINGS = text(f"reinspection_of IS NULL AND {FINDING}")
"""The originals that record a finding: a few in a hundred, read by date for the stats."""
REINSPECTION_FINDINGS = text(f"reinspection_of IS NOT NULL AND {FINDING}")
"""The re-inspections that record a finding: fewer still, read by chain for the stats."""
SAMPLE_INDEX = "uq_spot_check_plan_code_sample_code"
"""A sample code is unique within its plan; its re-inspections reuse it."""
REINSPECTION_CONSTRAINT = "uq_spot_check_reinspection_of"
EQUIPMENT_DAY_INDEX = "uq_spot_check_equipment_code_sampled_on"
"""An item of special equipment is inspected once a day."""
"""A check is re-inspected once; the chain goes on from the re-inspection."""
_version = version_column()


class SpotCheck(Base, table=True):
    """One supervision spot-check result (監督抽查) of one sample."""

    __tablename__ = "spot_check"
    __table_args__ = (
        Index(
            SAMPLE_INDEX,
            "plan_code",
            "sample_code",
            unique=True,
            sqlite_where=ORIGINALS_ONLY,
            postgresql_where=ORIGINALS_ONLY,
        ),
        # Covers the stats queries: one programme, a range on sampled_on, every other column
        # read from the index.
        Index(
            "ix_spot_check_stats",
            "programme",
            "sampled_on",
            "county_code",
            "level",
            "product_category",
            "result",
            "final_result",
            "published_on",
            "overturned_on",
            "metrology_subject",
            "instruments_checked",
            "instruments_nonconforming",
            sqlite_where=ORIGINALS_ONLY,
            postgresql_where=ORIGINALS_ONLY,
        ),
        Index(
            EQUIPMENT_DAY_INDEX,
            "equipment_code",
            "sampled_on",
            unique=True,
            sqlite_where=EQUIPMENT_ONLY,
            postgresql_where=EQUIPMENT_ONLY,
        ),
        Index(
            "ix_spot_check_original_findings",
            "sampled_on",
            sqlite_where=ORIGINAL_FINDINGS,
            postgresql_where=ORIGINAL_FINDINGS,
        ),
        Index(
            "ix_spot_check_reinspection_findings",
            "root_id",
            sqlite_where=REINSPECTION_FINDINGS,
            postgresql_where=REINSPECTION_FINDINGS,
        ),
        # Serves the special-equipment items: each code's inspections in date order, every
        # column the latest-inspection window reads.
        Index(
            "ix_spot_check_equipment",
            "equipment_code",
            "sampled_on",
            "id",
            "programme",
            "county_code",
            "equipment_kind",
            "next_due_on",
            "published_on",
            "major_hazard_source",
            sqlite_where=EQUIPMENT_ONLY,
            postgresql_where=EQUIPMENT_ONLY,
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    plan_code: str = Field(max_length=64, index=True)
    level: str = Field(max_length=16, index=True)
    product_category: str | None = Field(default=None, max_length=32, index=True)
    product_name: str | None = Field(default=None, max_length=200)
    enterprise_credit_code: str = Field(max_length=18, index=True)
    enterprise_name: str = Field(max_length=200)
    county_code: str = Field(max_length=6, index=True)
    sample_code: str | None = Field(default=None, max_length=64)
    sampled_on: date = Field(index=True)
    result: str = Field(max_length=8, index=True)
    nonconforming_items: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    mandatory_standard_violation: bool = False
    testing_lab: str | None = Field(default=None, max_length=200)
    report_number: str | None = Field(default=None, max_length=100)
    refused: bool = False
    unlicensed_referral: bool = False
    published_on: date | None = Field(default=None, index=True)
    reinspection_of: str | None = Field(
        default=None, max_length=36, foreign_key="spot_check.id", unique=True
    )
    root_id: str = Field(max_length=36, index=True)
    final_result: str = Field(max_length=8)
    overturned_on: date | None = None
    programme: str = Field(
        default="product_quality",
        max_length=32,
        sa_column_kwargs={"server_default": "product_quality"},
    )
    metrology_subject: str | None = Field(default=None, max_length=32)
    instruments_checked: int | None = None
    instruments_nonconforming: int | None = None
    # Exact decimal text (e.g. "500", "4.5") in `quantity_unit`.
    nominal_quantity: str | None = Field(default=None, max_length=32)
    quantity_unit: str | None = Field(default=None, max_length=16)
    measured_shortfall: str | None = Field(default=None, max_length=32)
    tolerated_deficiency: str | None = Field(default=None, max_length=32)
    equipment_code: str | None = Field(default=None, max_length=64)
    equipment_kind: str | None = Field(default=None, max_length=32)
    next_due_on: date | None = None
    major_hazard_source: bool | None = None
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = Field(default=1, sa_column=_version)

    __mapper_args__: ClassVar = {"version_id_col": _version}


class SpotCheckHistory(Base, table=True):
    """One change to a spot-check: what was done, by whom, why, when, and the values it changed.

    `before` holds the changed fields' old values (null when the check was recorded), `after`
    their new values (every recorded field when the check was recorded).
    """

    __tablename__ = "spot_check_history"

    id: str = Field(primary_key=True, max_length=36)
    spot_check_id: str = Field(max_length=36, foreign_key="spot_check.id", index=True)
    version: int
    action: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    reason: str = Field(max_length=1000)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class OutboxMessage(Base, OutboxRecord, table=True):
    """A notice to another service, written with the change that caused it: the kit's outbox
    columns and the record it is about (a spot-check, or an incident for a counterfeit
    notice). While its bulletin day is not known yet the notice is `held`."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    spot_check_id: str = Field(max_length=36, index=True)


INCIDENT_SOURCE_INDEX = "uq_incident_source_system_source_reference"
"""A source system reports each incident under one reference."""
_incident_version = version_column()


class Incident(Base, table=True):
    """A quality or food-safety incident, a case of unlicensed production or of
    counterfeiting, in one county. `status` took effect on `status_on`; the history holds
    every earlier status and the day it took effect, so the status on any day follows."""

    __tablename__ = "incident"
    __table_args__ = (
        Index(INCIDENT_SOURCE_INDEX, "source_system", "source_reference", unique=True),
        Index("ix_incident_occurred_on_county_code", "occurred_on", "county_code"),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=32, index=True)
    county_code: str = Field(max_length=6, index=True)
    occurred_on: date
    reported_on: date
    title: str = Field(max_length=200)
    description: str = Field(max_length=4000)
    severity: str = Field(max_length=16)
    severity_criterion: str | None = Field(default=None, max_length=64)
    source_system: str = Field(max_length=64)
    source_reference: str = Field(max_length=128)
    enterprise_credit_code: str | None = Field(default=None, max_length=18, index=True)
    enterprise_name: str | None = Field(default=None, max_length=200)
    counterfeits_brand_id: str | None = Field(default=None, max_length=36)
    status: str = Field(max_length=16, index=True)
    status_on: date
    status_reason: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = Field(default=1, sa_column=_incident_version)

    __mapper_args__: ClassVar = {"version_id_col": _incident_version}


class IncidentHistory(Base, table=True):
    """One change to an incident: its report, a correction (`before` and `after` hold the
    changed fields' old and new values) or a status change (`from_status`, `to_status` and
    the day it took effect, `effective_on`; the report's entry carries its first status)."""

    __tablename__ = "incident_history"
    __table_args__ = (
        Index("ix_incident_history_incident_id_effective_on", "incident_id", "effective_on"),
    )

    id: str = Field(primary_key=True, max_length=36)
    incident_id: str = Field(max_length=36, foreign_key="incident.id")
    version: int
    action: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    before: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    effective_on: date | None = None
