"""certificates and their history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:13:08.146780
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certificate",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("certificate_number", sa.String(length=100), nullable=False),
        sa.Column("standard", sa.String(length=50), nullable=False),
        sa.Column("certification_body", sa.String(length=200), nullable=False),
        sa.Column("accreditation_body", sa.String(length=200), nullable=True),
        sa.Column("enterprise_credit_code", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("original_issued_on", sa.Date(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_since", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint(
            "certificate_number",
            "certification_body",
            name=op.f("uq_certificate_certificate_number_certification_body"),
        ),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_certification_body"), ["certification_body"], unique=False
        )
        batch_op.create_index(
            "ix_certificate_county_standard", ["county_code", "standard"], unique=False
        )
        batch_op.create_index(
            "ix_certificate_enterprise_first_issue",
            ["enterprise_credit_code", "original_issued_on"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_certificate_expires_on"), ["expires_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_issued_on"), ["issued_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_standard"), ["standard"], unique=False)
        batch_op.create_index(
            "ix_certificate_status_since", ["status", "status_since"], unique=False
        )

    op.create_table(
        "certificate_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("actor_id", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificate.id"],
            name=op.f("fk_certificate_event_certificate_id_certificate"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_event")),
    )
    with op.batch_alter_table("certificate_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_certificate_event_certificate_effective",
            ["certificate_id", "effective_on"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_event", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_event_certificate_effective")

    op.drop_table("certificate_event")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_status_since")
        batch_op.drop_index(batch_op.f("ix_certificate_standard"))
        batch_op.drop_index(batch_op.f("ix_certificate_issued_on"))
        batch_op.drop_index(batch_op.f("ix_certificate_expires_on"))
        batch_op.drop_index("ix_certificate_enterprise_first_issue")
        batch_op.drop_index("ix_certificate_county_standard")
        batch_op.drop_index(batch_op.f("ix_certificate_certification_body"))

    op.drop_table("certificate")
