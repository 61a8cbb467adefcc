"""audit_entry renamed assessment_history, with a reason; reference values versioned

The rows are kept: the table, its primary key and its indexes are renamed, not copied into a
new table. `reference_value.version` starts at 1 for the rows already stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = "audit_entry", "assessment_history"
INDEXES = {"entity_entity_id": ["entity", "entity_id"], "year_id": ["year", "id"]}


def _rename_history(old: str, new: str) -> None:
    """Rename the table with its primary key and indexes, keeping every row."""
    op.rename_table(old, new)
    if op.get_context().dialect.name == "sqlite":
        # SQLite renames neither indexes nor constraints: the table is rebuilt under the new
        # names, its rows copied across.
        with op.batch_alter_table(new, recreate="always") as batch_op:
            for suffix, columns in INDEXES.items():
                batch_op.drop_index(f"ix_{old}_{suffix}")
                batch_op.create_index(f"ix_{new}_{suffix}", columns, unique=False)
            batch_op.drop_constraint(f"pk_{old}", type_="primary")
            batch_op.create_primary_key(f"pk_{new}", ["id"])
        return
    for suffix in INDEXES:
        op.execute(f"ALTER INDEX ix_{old}_{suffix} RENAME TO ix_{new}_{suffix}")
    op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")


def upgrade() -> None:
    _rename_history(OLD, NEW)
    with op.batch_alter_table(NEW, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
        )
    with op.batch_alter_table("reference_value", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    with op.batch_alter_table("reference_value", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table(NEW, schema=None) as batch_op:
        batch_op.drop_column("reason")
    _rename_history(NEW, OLD)
