"""brand listings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:13:00.013188
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Trigram index for substring search on names, Chinese included.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "brand",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("product_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("brand_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "enterprise_credit_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False
        ),
        sa.Column("enterprise_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("county_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("sector", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("award_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("awarded_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("international_standard", sa.Boolean(), nullable=False),
        sa.Column("standard_code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("batch_code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status_changed_on", sa.Date(), nullable=True),
        sa.Column("revoked_on", sa.Date(), nullable=True),
        sa.Column("superseded_on", sa.Date(), nullable=True),
        sa.Column("renewal_of", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("search_text", sqlmodel.sql.sqltypes.AutoString(length=700), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand")),
    )
    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_brand_award_kind"), ["award_kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_awarded_on"), ["awarded_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_batch_code"), ["batch_code"], unique=False)
        batch_op.create_index(
            "ix_brand_county_tier_valid", ["county_code", "tier", "valid_until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_brand_international_standard"), ["international_standard"], unique=False
        )
        batch_op.create_index(
            "ix_brand_listing_key", ["enterprise_credit_code", "product_name", "tier"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_brand_renewal_of"), ["renewal_of"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_brand_review_required"), ["review_required"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_brand_revoked_on"), ["revoked_on"], unique=False)
        batch_op.create_index(
            "ix_brand_search_text",
            ["search_text"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
        batch_op.create_index(batch_op.f("ix_brand_sector"), ["sector"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_superseded_on"), ["superseded_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_tier"), ["tier"], unique=False)
        batch_op.create_index(batch_op.f("ix_brand_valid_until"), ["valid_until"], unique=False)

    op.create_table(
        "review_flag",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "enterprise_credit_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("flagged_brand_ids", sa.JSON(), nullable=False),
        sa.Column("raised_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "reference", name=op.f("pk_review_flag")),
    )
    with op.batch_alter_table("review_flag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_flag_enterprise_credit_code"),
            ["enterprise_credit_code"],
            unique=False,
        )

    op.create_table(
        "brand_history",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("brand_id", sa.String(length=36), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brand.id"], name=op.f("fk_brand_history_brand_id_brand")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_history")),
    )
    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        batch_op.create_index("ix_brand_history_brand_changed", ["brand_id", "id"], unique=False)

    op.create_table(
        "brand_suspension",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("brand_id", sa.String(length=36), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brand.id"], name=op.f("fk_brand_suspension_brand_id_brand")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_suspension")),
    )
    with op.batch_alter_table("brand_suspension", schema=None) as batch_op:
        batch_op.create_index(
            "ix_brand_suspension_period", ["brand_id", "started_on", "ended_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("brand_suspension", schema=None) as batch_op:
        batch_op.drop_index("ix_brand_suspension_period")

    op.drop_table("brand_suspension")
    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        batch_op.drop_index("ix_brand_history_brand_changed")

    op.drop_table("brand_history")
    with op.batch_alter_table("review_flag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_flag_enterprise_credit_code"))

    op.drop_table("review_flag")
    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_brand_valid_until"))
        batch_op.drop_index(batch_op.f("ix_brand_tier"))
        batch_op.drop_index(batch_op.f("ix_brand_superseded_on"))
        batch_op.drop_index(batch_op.f("ix_brand_status"))
        batch_op.drop_index(batch_op.f("ix_brand_sector"))
        batch_op.drop_index(
            "ix_brand_search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
        batch_op.drop_index(batch_op.f("ix_brand_revoked_on"))
        batch_op.drop_index(batch_op.f("ix_brand_review_required"))
        batch_op.drop_index(batch_op.f("ix_brand_renewal_of"))
        batch_op.drop_index("ix_brand_listing_key")
        batch_op.drop_index(batch_op.f("ix_brand_international_standard"))
        batch_op.drop_index("ix_brand_county_tier_valid")
        batch_op.drop_index(batch_op.f("ix_brand_batch_code"))
        batch_op.drop_index(batch_op.f("ix_brand_awarded_on"))
        batch_op.drop_index(batch_op.f("ix_brand_award_kind"))

    op.drop_table("brand")
