"""indexes for the filters by status on a date

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:00:00.000000

A list of a county's certificates by status reads the county's unexpired certificates
(`county_code`, `expires_on`) and those whose recorded status is not yet in force
(`status_since`), instead of every certificate of the county.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_certificate_county_expires", "certificate", ["county_code", "expires_on"])
    op.create_index("ix_certificate_status_from", "certificate", ["status_since"])


def downgrade() -> None:
    op.drop_index("ix_certificate_status_from", table_name="certificate")
    op.drop_index("ix_certificate_county_expires", table_name="certificate")
