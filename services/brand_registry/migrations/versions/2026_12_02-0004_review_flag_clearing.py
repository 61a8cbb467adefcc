"""review flag clearing: who withdrew a flag, when, why, and what it lifted

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:30:00.000000

A review flag raised by another service may be withdrawn by it (the inspection service, when
a re-inspection overturns the failure it reported). Every existing flag stands.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_flag", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("cleared_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("clear_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cleared_brand_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("still_flagged_brand_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_flag", schema=None) as batch_op:
        batch_op.drop_column("still_flagged_brand_ids")
        batch_op.drop_column("cleared_brand_ids")
        batch_op.drop_column("clear_reason")
        batch_op.drop_column("cleared_by")
        batch_op.drop_column("cleared_at")
