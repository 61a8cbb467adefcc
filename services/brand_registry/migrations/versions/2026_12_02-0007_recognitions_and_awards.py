"""recognitions and awards: geographical-indication listings, quality awards, counterfeit notices

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:40:37.811104

A geographical-indication listing carries its protected name and area and the approval it
rests on, and may have no `valid_until` (it never expires); every listing counts the
counterfeiting cases notified against it (`counterfeit_notice`). `award` and `award_history`
hold the quality awards. The downgrade drops awards and notices; it stops while a listing
has no `valid_until`, for an operator to give it one or remove it first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "award",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column(
            "enterprise_credit_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False
        ),
        sa.Column("enterprise_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("county_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("awarded_on", sa.Date(), nullable=False),
        sa.Column("excellence_score", sa.Float(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("revoked_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_award")),
    )
    with op.batch_alter_table("award", schema=None) as batch_op:
        batch_op.create_index("ix_award_county_year", ["county_code", "year"], unique=False)
        batch_op.create_index(batch_op.f("ix_award_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_award_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_award_year"), ["year"], unique=False)
        batch_op.create_index(
            "uq_award_enterprise_kind_level_year",
            ["enterprise_credit_code", "kind", "level", "year"],
            unique=True,
        )

    op.create_table(
        "award_history",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("award_id", sa.String(length=36), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["award_id"], ["award.id"], name=op.f("fk_award_history_award_id_award")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_award_history")),
    )
    with op.batch_alter_table("award_history", schema=None) as batch_op:
        batch_op.create_index("ix_award_history_award_changed", ["award_id", "id"], unique=False)

    op.create_table(
        "counterfeit_notice",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("brand_id", sa.String(length=36), nullable=False),
        sa.Column("case_kind", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("county_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("raised_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brand.id"], name=op.f("fk_counterfeit_notice_brand_id_brand")
        ),
        sa.PrimaryKeyConstraint("source", "reference", name=op.f("pk_counterfeit_notice")),
    )
    with op.batch_alter_table("counterfeit_notice", schema=None) as batch_op:
        batch_op.create_index(
            "ix_counterfeit_notice_brand_created", ["brand_id", "created_at"], unique=False
        )

    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("protected_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("protected_area", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "approval_authority", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("notice_number", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.add_column(
            sa.Column("counterfeit_cases", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.alter_column("valid_until", existing_type=sa.DATE(), nullable=True)


def downgrade() -> None:
    brand = sa.table("brand", sa.column("id"), sa.column("valid_until"))
    open_ended = (
        op.get_bind()
        .execute(sa.select(brand.c.id).where(brand.c.valid_until.is_(None)).limit(5))
        .scalars()
        .all()
    )
    if open_ended:
        raise RuntimeError(
            "Listings without valid_until cannot go back to a revision that requires it "
            f"(first ones: {', '.join(open_ended)}); give them a validity or remove them first."
        )
    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.alter_column("valid_until", existing_type=sa.DATE(), nullable=False)
        batch_op.drop_column("counterfeit_cases")
        batch_op.drop_column("notice_number")
        batch_op.drop_column("approval_authority")
        batch_op.drop_column("protected_area")
        batch_op.drop_column("protected_name")

    with op.batch_alter_table("counterfeit_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_counterfeit_notice_brand_created")

    op.drop_table("counterfeit_notice")
    with op.batch_alter_table("award_history", schema=None) as batch_op:
        batch_op.drop_index("ix_award_history_award_changed")

    op.drop_table("award_history")
    with op.batch_alter_table("award", schema=None) as batch_op:
        batch_op.drop_index("uq_award_enterprise_kind_level_year")
        batch_op.drop_index(batch_op.f("ix_award_year"))
        batch_op.drop_index(batch_op.f("ix_award_level"))
        batch_op.drop_index(batch_op.f("ix_award_kind"))
        batch_op.drop_index("ix_award_county_year")

    op.drop_table("award")
