"""brand history columns: actor, at, before and after

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:10:00.000000

The history's columns take the names every service's history uses: `actor_id` becomes
`actor`, `changed_at` becomes `at`, and the status pair and the changed fields move into
`before` and `after`: `from_status` becomes `before["status"]`, `to_status`
`after["status"]`, and each `{field: [old, new]}` of `changes` `before[field] = old`,
`after[field] = new`; a value of `changes` that is not such a pair (a review flag's source
and reference) goes to `after` alone. The downgrade puts the three columns back together from
the two, exactly.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
history = sa.table(
    "brand_history",
    sa.column("id", sa.String()),
    sa.column("from_status", sa.String()),
    sa.column("to_status", sa.String()),
    sa.column("changes", sa.JSON(none_as_null=True)),
    sa.column("before", sa.JSON(none_as_null=True)),
    sa.column("after", sa.JSON(none_as_null=True)),
)
OLD = ["from_status", "to_status", "changes"]
NEW = ["before", "after"]


def split(
    from_status: str | None, to_status: str | None, changes: dict[str, Any] | None
) -> dict[str, Any]:
    """The `before` and `after` of an entry written with the status pair and `changes`."""
    before: dict[str, Any] = {} if from_status is None else {"status": from_status}
    after: dict[str, Any] = {} if to_status is None else {"status": to_status}
    for name, value in (changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            before[name], after[name] = value
        else:
            after[name] = value
    return {"before": before or None, "after": after or None}


def join(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The status pair and `changes` of an entry written with `before` and `after`."""
    before, after = before or {}, after or {}
    changes = {
        name: [before[name], value] if name in before else value
        for name, value in after.items()
        if name != "status"
    }
    return {
        "from_status": before.get("status"),
        "to_status": after.get("status"),
        "changes": changes or None,
    }


def _rewrite(convert: Callable[..., dict[str, Any]], source: list[str], target: list[str]) -> None:
    """Fill the `target` columns of every entry from its `source` columns, in batches."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(history.c.id, *(history.c[name] for name in source)).order_by(history.c.id)
    ).all()
    statement = (
        history.update()
        .where(history.c.id == sa.bindparam("row_id"))
        .values({name: sa.bindparam(f"new_{name}") for name in target})
    )
    for start in range(0, len(rows), BATCH):
        updates = []
        for row in rows[start : start + BATCH]:
            values = convert(*row[1:])
            updates.append({"row_id": row[0], **{f"new_{name}": values[name] for name in target}})
        bind.execute(statement, updates)


def upgrade() -> None:
    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        batch_op.alter_column(
            "actor_id",
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

    _rewrite(split, OLD, NEW)

    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        for name in OLD:
            batch_op.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch_op.add_column(
            sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))

    _rewrite(join, NEW, OLD)

    with op.batch_alter_table("brand_history", schema=None) as batch_op:
        for name in NEW:
            batch_op.drop_column(name)
        batch_op.alter_column(
            "at",
            new_column_name="changed_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "actor",
            new_column_name="actor_id",
            existing_type=sa.String(length=200),
            existing_nullable=False,
        )
