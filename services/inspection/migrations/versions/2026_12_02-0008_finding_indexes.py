"""indexes of the checks that record a finding

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:30:00.000000

The year's stats list each finding of the chains they count: the originals that record one
by `sampled_on`, the re-inspections that do by `root_id`, each from a partial index of those
few checks, instead of every check of the year and every finding in the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINDING = "(refused OR mandatory_standard_violation OR unlicensed_referral)"
ORIGINAL_FINDINGS = sa.text(f"reinspection_of IS NULL AND {FINDING}")
REINSPECTION_FINDINGS = sa.text(f"reinspection_of IS NOT NULL AND {FINDING}")


def upgrade() -> None:
    op.create_index(
        "ix_spot_check_original_findings",
        "spot_check",
        ["sampled_on"],
        sqlite_where=ORIGINAL_FINDINGS,
        postgresql_where=ORIGINAL_FINDINGS,
    )
    op.create_index(
        "ix_spot_check_reinspection_findings",
        "spot_check",
        ["root_id"],
        sqlite_where=REINSPECTION_FINDINGS,
        postgresql_where=REINSPECTION_FINDINGS,
    )


def downgrade() -> None:
    op.drop_index("ix_spot_check_reinspection_findings", table_name="spot_check")
    op.drop_index("ix_spot_check_original_findings", table_name="spot_check")
