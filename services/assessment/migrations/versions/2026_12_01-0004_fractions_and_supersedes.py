"""reported rates with numerator and denominator; runs that supersede a publication

A reported rate may carry its numerator and denominator, so the city figure is their sums'
quotient. A run records the publication it supersedes (and why), the superseded run the one
that replaced it; at most one publication of a year is current.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_PUBLICATION = sa.text("status = 'published' AND superseded_by IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("reported_value", schema=None) as batch_op:
        batch_op.add_column(sa.Column("numerator", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("denominator", sa.Float(), nullable=True))
    with op.batch_alter_table("assessment_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supersedes", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(
            sa.Column("superseded_by", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "publication_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True
            )
        )
    op.create_index(
        "ux_assessment_run_year_published",
        "assessment_run",
        ["year"],
        unique=True,
        sqlite_where=CURRENT_PUBLICATION,
        postgresql_where=CURRENT_PUBLICATION,
    )


def downgrade() -> None:
    op.drop_index(
        "ux_assessment_run_year_published",
        table_name="assessment_run",
        sqlite_where=CURRENT_PUBLICATION,
        postgresql_where=CURRENT_PUBLICATION,
    )
    with op.batch_alter_table("assessment_run", schema=None) as batch_op:
        batch_op.drop_column("publication_reason")
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("supersedes")
    with op.batch_alter_table("reported_value", schema=None) as batch_op:
        batch_op.drop_column("denominator")
        batch_op.drop_column("numerator")
