"""certificate history: the table and columns every service's history uses

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:30:00.000000

`certificate_event` becomes `certificate_history` (its primary key, foreign key, index and,
on PostgreSQL, id sequence renamed with it); `kind` becomes `action`, `actor_id` `actor` and
`occurred_at` `at`. An edit's `changes`, `{field: [old, new]}`, moves into `before`
(`{field: old}`) and `after` (`{field: new}`); entries without changes keep both null. The
status columns, `effective_on`, `reason` and `actor_name` stay as they are. The downgrade puts
`changes` back together from the two and every name back, so no entry loses anything either
way.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = "certificate_event", "certificate_history"
RENAMED_COLUMNS = [
    ("kind", "action", sa.String(length=16)),
    ("actor_id", "actor", sa.String(length=200)),
    ("occurred_at", "at", sa.DateTime(timezone=True)),
]
BATCH = 1000


def _history(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Integer()),
        sa.column("changes", sa.JSON(none_as_null=True)),
        sa.column("before", sa.JSON(none_as_null=True)),
        sa.column("after", sa.JSON(none_as_null=True)),
    )


def split(changes: dict[str, Any] | None) -> dict[str, Any]:
    """The `before` and `after` of an entry written with `changes`."""
    if not changes:
        return {"before": None, "after": None}
    return {
        "before": {name: pair[0] for name, pair in changes.items()},
        "after": {name: pair[1] for name, pair in changes.items()},
    }


def join(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The `changes` of an entry written with `before` and `after`."""
    if not after:
        return {"changes": None}
    before = before or {}
    return {"changes": {name: [before.get(name), value] for name, value in after.items()}}


def _rewrite(
    table: str, convert: Callable[..., dict[str, Any]], source: list[str], target: list[str]
) -> None:
    """Fill the `target` columns of every entry that has a `source` value, in batches."""
    history = _history(table)
    bind = op.get_bind()
    rows = [
        row
        for row in bind.execute(
            sa.select(history.c.id, *(history.c[name] for name in source)).order_by(history.c.id)
        ).all()
        if any(value is not None for value in row[1:])
    ]
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


def _rename_table(old: str, new: str) -> None:
    """Rename the table with its primary key, foreign key and index (and id sequence)."""
    with op.batch_alter_table(old, schema=None) as batch_op:
        batch_op.drop_index(f"ix_{old}_certificate_effective")
    op.rename_table(old, new)
    fk_old, fk_new = f"fk_{old}_certificate_id_certificate", f"fk_{new}_certificate_id_certificate"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {fk_old} TO {fk_new}")
        op.execute(f"ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq")
        with op.batch_alter_table(new, schema=None) as batch_op:
            batch_op.create_index(
                f"ix_{new}_certificate_effective", ["certificate_id", "effective_on"]
            )
        return
    # SQLite keeps constraint names in the table's definition: the copy made in batch mode
    # takes the new ones.
    with op.batch_alter_table(new, schema=None) as batch_op:
        batch_op.drop_constraint(f"pk_{old}", type_="primary")
        batch_op.create_primary_key(f"pk_{new}", ["id"])
        batch_op.drop_constraint(fk_old, type_="foreignkey")
        batch_op.create_foreign_key(fk_new, "certificate", ["certificate_id"], ["id"])
        batch_op.create_index(f"ix_{new}_certificate_effective", ["certificate_id", "effective_on"])


def upgrade() -> None:
    _rename_table(OLD, NEW)
    with op.batch_alter_table(NEW, schema=None) as batch_op:
        for old_name, new_name, type_ in RENAMED_COLUMNS:
            batch_op.alter_column(
                old_name, new_column_name=new_name, existing_type=type_, existing_nullable=False
            )
        batch_op.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("after", sa.JSON(), nullable=True))

    _rewrite(NEW, split, ["changes"], ["before", "after"])

    with op.batch_alter_table(NEW, schema=None) as batch_op:
        batch_op.drop_column("changes")


def downgrade() -> None:
    with op.batch_alter_table(NEW, schema=None) as batch_op:
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))

    _rewrite(NEW, join, ["before", "after"], ["changes"])

    with op.batch_alter_table(NEW, schema=None) as batch_op:
        batch_op.drop_column("after")
        batch_op.drop_column("before")
        for old_name, new_name, type_ in RENAMED_COLUMNS:
            batch_op.alter_column(
                new_name, new_column_name=old_name, existing_type=type_, existing_nullable=False
            )
    _rename_table(NEW, OLD)
