"""licences beside certificates, and the food-processing dispositions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:00:00.000000

A certificate gains `kind` (every existing row a `management_system` certificate), an
`issuing_authority` and `product_categories`; `standard` and `certification_body` become
optional, as a licence has neither, and a licence number is unique within its kind.
`food_disposition` holds each enterprise's current disposition, `food_disposition_decision`
its decisions by date and `food_disposition_history` every change. The downgrade drops the
licences with the columns that describe them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LICENCES_ONLY = sa.text("certification_body IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=50), nullable=False, server_default="management_system"
            )
        )
        batch_op.add_column(sa.Column("issuing_authority", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "product_categories", sa.JSON(), nullable=False, server_default=sa.text("'[]'")
            )
        )
        batch_op.alter_column("standard", existing_type=sa.String(length=50), nullable=True)
        batch_op.alter_column(
            "certification_body", existing_type=sa.String(length=200), nullable=True
        )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("product_categories", server_default=None)
        batch_op.create_index(
            "uq_certificate_licence_number",
            ["kind", "certificate_number"],
            unique=True,
            sqlite_where=LICENCES_ONLY,
            postgresql_where=LICENCES_ONLY,
        )
        batch_op.create_index("ix_certificate_kind_county", ["kind", "county_code"])

    op.create_table(
        "food_disposition",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_credit_code", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("licence_number", sa.String(length=100), nullable=True),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_food_disposition")),
        sa.UniqueConstraint(
            "enterprise_credit_code", name="uq_food_disposition_enterprise_credit_code"
        ),
    )
    with op.batch_alter_table("food_disposition", schema=None) as batch_op:
        batch_op.create_index(
            "ix_food_disposition_county_disposition", ["county_code", "disposition"]
        )
    op.create_table(
        "food_disposition_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("disposition_id", sa.String(length=36), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["disposition_id"],
            ["food_disposition.id"],
            name=op.f("fk_food_disposition_decision_disposition_id_food_disposition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_food_disposition_decision")),
    )
    with op.batch_alter_table("food_disposition_decision", schema=None) as batch_op:
        batch_op.create_index(
            "ix_food_disposition_decision_decided", ["disposition_id", "decided_on"]
        )
    op.create_table(
        "food_disposition_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("disposition_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["disposition_id"],
            ["food_disposition.id"],
            name=op.f("fk_food_disposition_history_disposition_id_food_disposition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_food_disposition_history")),
    )
    with op.batch_alter_table("food_disposition_history", schema=None) as batch_op:
        batch_op.create_index("ix_food_disposition_history_disposition", ["disposition_id"])


def downgrade() -> None:
    op.drop_table("food_disposition_history")
    op.drop_table("food_disposition_decision")
    op.drop_table("food_disposition")
    op.execute(
        sa.text(
            "DELETE FROM certificate_history WHERE certificate_id IN"
            " (SELECT id FROM certificate WHERE kind <> 'management_system')"
        )
    )
    op.execute(sa.text("DELETE FROM certificate WHERE kind <> 'management_system'"))
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_kind_county")
        batch_op.drop_index(
            "uq_certificate_licence_number",
            sqlite_where=LICENCES_ONLY,
            postgresql_where=LICENCES_ONLY,
        )
        batch_op.alter_column(
            "certification_body", existing_type=sa.String(length=200), nullable=False
        )
        batch_op.alter_column("standard", existing_type=sa.String(length=50), nullable=False)
        batch_op.drop_column("product_categories")
        batch_op.drop_column("issuing_authority")
        batch_op.drop_column("kind")
