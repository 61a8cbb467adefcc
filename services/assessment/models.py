"""Tables of the assessment service, on its own registry."""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, UniqueConstraint, text
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


def _json() -> Any:
    return Field(sa_column=Column(JSON, nullable=False))


def _json_or_null() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


def _timestamp() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False))


_target_set_revision = Column("revision", Integer, nullable=False, default=1)


class TargetSet(Base, table=True):
    """One version of a year's target set; the highest version is the current one."""

    __tablename__ = "target_set"
    __table_args__ = (UniqueConstraint("year", "version"),)

    id: str = Field(primary_key=True, max_length=36)
    year: int = Field(index=True)
    version: int
    reason: str | None = Field(default=None, max_length=1000)
    document: dict[str, Any] = _json()
    created_at: datetime = _timestamp()
    created_by: str = Field(max_length=200)
    updated_at: datetime = _timestamp()
    revision: int = Field(default=1, sa_column=_target_set_revision)

    __mapper_args__: ClassVar = {"version_id_col": _target_set_revision}


_reported_value_version = version_column()


class ReportedValue(Base, table=True):
    """A county's reported figure, `submitted` until a reviewer has `accepted` or `returned` it;
    a later report for the same indicator supersedes it."""

    __tablename__ = "reported_value"
    __table_args__ = (
        Index("ix_reported_value_year_county_indicator", "year", "county_code", "indicator"),
        Index("ix_reported_value_year_indicator", "year", "indicator"),
    )

    id: str = Field(primary_key=True, max_length=36)
    county_code: str = Field(max_length=6, index=True)
    year: int
    indicator: str = Field(max_length=64)
    value: float
    numerator: float | None = None
    denominator: float | None = None
    evidence_document: str = Field(max_length=500)
    evidence_text: str = Field(max_length=4000)
    reported_by: str = Field(max_length=200)
    measured_on: date
    reported_at: datetime = _timestamp()
    recorded_by: str = Field(max_length=200)
    superseded_by: str | None = Field(default=None, max_length=36)
    state: str = Field(default="submitted", max_length=16)
    review_comment: str | None = Field(default=None, max_length=2000)
    reviewed_by: str | None = Field(default=None, max_length=200)
    reviewed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    version: int = Field(default=1, sa_column=_reported_value_version)

    __mapper_args__: ClassVar = {"version_id_col": _reported_value_version}


class EvidenceFile(Base, table=True):
    """A file attached to a reported value; its content is stored by SHA-256 in the blob store,
    so one content attached twice is stored once."""

    __tablename__ = "evidence_file"
    __table_args__ = (Index("ix_evidence_file_reported_value_id_id", "reported_value_id", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    reported_value_id: str = Field(max_length=36)
    name: str = Field(max_length=255)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_type: str = Field(max_length=100)
    sha256: str = Field(max_length=64, index=True)
    uploaded_by: str = Field(max_length=200)
    uploaded_at: datetime = _timestamp()


_reference_value_version = version_column()


class ReferenceValue(Base, table=True):
    """A named figure a comparator measures against, such as the provincial pass rate."""

    __tablename__ = "reference_value"
    __table_args__ = (UniqueConstraint("year", "key"),)

    id: str = Field(primary_key=True, max_length=36)
    year: int = Field(index=True)
    key: str = Field(max_length=64, index=True)
    value: float
    source: str = Field(max_length=500)
    published_on: date
    updated_at: datetime = _timestamp()
    updated_by: str = Field(max_length=200)
    version: int = Field(default=1, sa_column=_reference_value_version)

    __mapper_args__: ClassVar = {"version_id_col": _reference_value_version}


_run_version = version_column()


CURRENT_PUBLICATION = text("status = 'published' AND superseded_by IS NULL")


class AssessmentRun(Base, table=True):
    """Stored standings with the inputs they were computed from; frozen once published. A year
    has at most one current publication: a later one supersedes it by name."""

    __tablename__ = "assessment_run"
    __table_args__ = (
        Index("ix_assessment_run_year_id", "year", "id"),
        Index("ix_assessment_run_target_set_id_status", "target_set_id", "status"),
        Index(
            "ux_assessment_run_year_published",
            "year",
            unique=True,
            sqlite_where=CURRENT_PUBLICATION,
            postgresql_where=CURRENT_PUBLICATION,
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    year: int
    as_of: date
    status: str = Field(max_length=16)
    complete: bool
    completeness: dict[str, str] = _json()
    target_set_id: str = Field(max_length=36)
    target_set_version: int
    note: str | None = Field(default=None, max_length=1000)
    inputs: dict[str, Any] = _json()
    standings: dict[str, Any] = _json()
    created_at: datetime = _timestamp()
    created_by: str = Field(max_length=200)
    published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    published_by: str | None = Field(default=None, max_length=200)
    supersedes: str | None = Field(default=None, max_length=36)
    superseded_by: str | None = Field(default=None, max_length=36)
    publication_reason: str | None = Field(default=None, max_length=1000)
    version: int = Field(default=1, sa_column=_run_version)

    __mapper_args__: ClassVar = {"version_id_col": _run_version}


class AssessmentHistory(Base, table=True):
    """The append-only history of every record of this service (target sets, reported and
    reference values, runs): one entry per change, named by `entity` and `entity_id`, with
    the state before and after it."""

    __tablename__ = "assessment_history"
    __table_args__ = (
        Index("ix_assessment_history_entity_entity_id", "entity", "entity_id"),
        Index("ix_assessment_history_year_id", "year", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=80)
    action: str = Field(max_length=32)
    year: int | None = None
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
    at: datetime = _timestamp()
    request_id: str | None = Field(default=None, max_length=128)
    before: dict[str, Any] | None = _json_or_null()
    after: dict[str, Any] | None = _json_or_null()
