"""change events: the outbox of published changes and the keys of events owed once

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:00:00.000000

`event` holds each change event written in the transaction of its change; `sequence` stays
NULL until the event is due and committed, when the service numbers it (kit.events).
`event_once` keeps the key of every event owed only once (an alert per item and threshold).
The shape is frozen here as it was at this revision, not imported from the kit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSEQUENCED = sa.text("sequence IS NULL")


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_event"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("uq_event_id", ["id"], unique=True)
        batch_op.create_index("uq_event_sequence", ["sequence"], unique=True)
        batch_op.create_index(
            "ix_event_unsequenced_due",
            ["due_at"],
            sqlite_where=UNSEQUENCED,
            postgresql_where=UNSEQUENCED,
        )
        batch_op.create_index("ix_event_subject", ["subject"])
    op.create_table(
        "event_once",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_event_once"),
    )


def downgrade() -> None:
    op.drop_table("event_once")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_subject")
        batch_op.drop_index(
            "ix_event_unsequenced_due", sqlite_where=UNSEQUENCED, postgresql_where=UNSEQUENCED
        )
        batch_op.drop_index("uq_event_sequence")
        batch_op.drop_index("uq_event_id")
    op.drop_table("event")
