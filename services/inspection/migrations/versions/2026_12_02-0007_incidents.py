"""incidents: reported incidents and their history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000

`incident` holds quality and food-safety incidents, unlicensed production and counterfeiting
cases, a source system's reference unique among its incidents; `incident_history` every
change, the status changes with the day each took effect (the stats read an incident's
status on a day from it). A counterfeit notice to the brand registry is an `outbox_message`
row naming the incident, so the outbox needs nothing new.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", _text(36), nullable=False),
        sa.Column("kind", _text(32), nullable=False),
        sa.Column("county_code", _text(6), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("description", _text(4000), nullable=False),
        sa.Column("severity", _text(16), nullable=False),
        sa.Column("severity_criterion", _text(64), nullable=True),
        sa.Column("source_system", _text(64), nullable=False),
        sa.Column("source_reference", _text(128), nullable=False),
        sa.Column("enterprise_credit_code", _text(18), nullable=True),
        sa.Column("enterprise_name", _text(200), nullable=True),
        sa.Column("counterfeits_brand_id", _text(36), nullable=True),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("status_on", sa.Date(), nullable=False),
        sa.Column("status_reason", _text(1000), nullable=True),
        sa.Column("created_by", _text(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_county_code"), ["county_code"])
        batch_op.create_index(
            batch_op.f("ix_incident_enterprise_credit_code"), ["enterprise_credit_code"]
        )
        batch_op.create_index(batch_op.f("ix_incident_kind"), ["kind"])
        batch_op.create_index(batch_op.f("ix_incident_status"), ["status"])
        batch_op.create_index("ix_incident_occurred_on_county_code", ["occurred_on", "county_code"])
        batch_op.create_index(
            "uq_incident_source_system_source_reference",
            ["source_system", "source_reference"],
            unique=True,
        )

    op.create_table(
        "incident_history",
        sa.Column("id", _text(36), nullable=False),
        sa.Column("incident_id", _text(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", _text(16), nullable=False),
        sa.Column("actor", _text(200), nullable=False),
        sa.Column("reason", _text(1000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("from_status", _text(16), nullable=True),
        sa.Column("to_status", _text(16), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
            name=op.f("fk_incident_history_incident_id_incident"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_history")),
    )
    with op.batch_alter_table("incident_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_history_incident_id_effective_on", ["incident_id", "effective_on"]
        )


def downgrade() -> None:
    # The old outbox would send these to a registry that cannot place their incidents.
    op.execute("DELETE FROM outbox_message WHERE kind = 'counterfeit_notice'")
    with op.batch_alter_table("incident_history", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_history_incident_id_effective_on")
    op.drop_table("incident_history")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index("uq_incident_source_system_source_reference")
        batch_op.drop_index("ix_incident_occurred_on_county_code")
        batch_op.drop_index(batch_op.f("ix_incident_status"))
        batch_op.drop_index(batch_op.f("ix_incident_kind"))
        batch_op.drop_index(batch_op.f("ix_incident_enterprise_credit_code"))
        batch_op.drop_index(batch_op.f("ix_incident_county_code"))
    op.drop_table("incident")
