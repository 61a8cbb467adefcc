"""an index of first issue dates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 21:00:00.000000

The year's newly certified enterprises are found from the certificates first issued in the
year (`original_issued_on`), instead of grouping every certificate by enterprise.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_certificate_original_issued_on", "certificate", ["original_issued_on"])


def downgrade() -> None:
    op.drop_index("ix_certificate_original_issued_on", table_name="certificate")
