"""reported values under review; evidence files

A reported value is `submitted`, then `accepted` or `returned` with the reviewer's comment,
and carries a version for its ETag. The values stored before counted, so they become
`accepted`. `evidence_file` records the files attached to a reported value (their content is
in the blob store, by SHA-256).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reported_value", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "state",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="accepted",
            )
        )
        batch_op.add_column(
            sa.Column(
                "review_comment", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("reviewed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
    with op.batch_alter_table("reported_value", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None)
        batch_op.alter_column("version", server_default=None)
    op.create_table(
        "evidence_file",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("reported_value_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("uploaded_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_evidence_file_reported_value_id_id",
        "evidence_file",
        ["reported_value_id", "id"],
        unique=False,
    )
    op.create_index("ix_evidence_file_sha256", "evidence_file", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_evidence_file_sha256", table_name="evidence_file")
    op.drop_index("ix_evidence_file_reported_value_id_id", table_name="evidence_file")
    op.drop_table("evidence_file")
    with op.batch_alter_table("reported_value", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("review_comment")
        batch_op.drop_column("state")
