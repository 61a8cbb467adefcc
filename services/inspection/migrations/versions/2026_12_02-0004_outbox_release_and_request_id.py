"""outbox release day and request id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:45:00.000000

A notice to the brand registry waits for the bulletin day of the check it is about
(`release_on`; `held` while that day is not known), and carries on the ID of the request
that caused it (`request_id`). Notices already written keep being sent at once; the worker
checks each one against its check's bulletin day before sending it. The downgrade gives held
notices back to the old worker, which sends them at once, and withdraws the clearing notices
it does not know.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

outbox = sa.table(
    "outbox_message",
    sa.column("kind", sa.String()),
    sa.column("status", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )


def downgrade() -> None:
    undelivered = outbox.c.status.in_(["pending", "held"])
    op.execute(
        outbox.update()
        .where(outbox.c.kind == "brand_review_clear", undelivered)
        .values(status="withdrawn")
    )
    op.execute(outbox.update().where(outbox.c.status == "held").values(status="pending"))
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("release_on")
