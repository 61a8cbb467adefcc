"""spot check history columns: actor, at, before and after

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:05:00.000000

The history's columns take the names every service's history uses: `changed_by` becomes
`actor`, `changed_at` becomes `at`, and `changes` is split into `before` and `after`. A
correction's `{field: [old, new]}` becomes `before = {field: old}`, `after = {field: new}`;
the snapshot of a recorded, re-inspected or imported check becomes `after` (with `before`
null). The downgrade puts `changes` back together from the two.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CORRECTED = "corrected"
BATCH = 1000
history = sa.table(
    "spot_check_history",
    sa.column("id", sa.String()),
    sa.column("action", sa.String()),
    sa.column("changes", sa.JSON()),
    sa.column("before", sa.JSON(none_as_null=True)),
    sa.column("after", sa.JSON()),
)


def _rewrite_corrections(convert: Any, source: list[str], target: dict[str, str]) -> None:
    """Rewrite the corrections' JSON in batches: `convert` maps the source columns' values
    to the target columns' values."""
    bind = op.get_bind()
    query = (
        sa.select(history.c.id, *(history.c[name] for name in source))
        .where(history.c.action == CORRECTED)
        .order_by(history.c.id)
    )
    statement = (
        history.update()
        .where(history.c.id == sa.bindparam("row_id"))
        .values({column: sa.bindparam(param) for column, param in target.items()})
    )
    rows = bind.execute(query).all()
    for start in range(0, len(rows), BATCH):
        updates = [{"row_id": row[0], **convert(*row[1:])} for row in rows[start : start + BATCH]]
        bind.execute(statement, updates)


def _split(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "new_before": {name: pair[0] for name, pair in changes.items()},
        "new_after": {name: pair[1] for name, pair in changes.items()},
    }


def _join(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    before = before or {}
    return {"new_changes": {name: [before.get(name), value] for name, value in after.items()}}


def upgrade() -> None:
    with op.batch_alter_table("spot_check_history", schema=None) as batch_op:
        batch_op.alter_column(
            "changed_by",
            new_column_name="actor",
            existing_type=sa.String(length=200),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "changed_at",
            new_column_name="at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("after", sa.JSON(), nullable=True))

    op.execute(
        history.update().where(history.c.action != CORRECTED).values(after=history.c.changes)
    )
    _rewrite_corrections(_split, ["changes"], {"before": "new_before", "after": "new_after"})

    with op.batch_alter_table("spot_check_history", schema=None) as batch_op:
        batch_op.alter_column("after", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("changes")


def downgrade() -> None:
    with op.batch_alter_table("spot_check_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))

    op.execute(
        history.update().where(history.c.action != CORRECTED).values(changes=history.c.after)
    )
    _rewrite_corrections(_join, ["before", "after"], {"changes": "new_changes"})

    with op.batch_alter_table("spot_check_history", schema=None) as batch_op:
        batch_op.alter_column("changes", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("after")
        batch_op.drop_column("before")
        batch_op.alter_column(
            "at",
            new_column_name="changed_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "actor",
            new_column_name="changed_by",
            existing_type=sa.String(length=200),
            existing_nullable=False,
        )
