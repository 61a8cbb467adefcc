"""unique listing award: one unrevoked listing per product, enterprise, tier and award day

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:20:00.000000

The award rules refuse a listing overlapping another of the same product, enterprise and
tier; two requests checking at the same time could both store theirs. Two unrevoked
listings of one key awarded the same day always overlap, so a unique index on the award
stores one of them. A database already holding such a pair breaks the rule: the upgrade
stops, naming the first pairs, for an operator to revoke one listing of each.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_brand_listing_award"
KEY = ["enterprise_credit_code", "product_name", "tier", "awarded_on"]
UNREVOKED = sa.text("revoked_on IS NULL")


def _duplicated_awards() -> list[sa.Row[tuple[str, ...]]]:
    brand = sa.table("brand", *(sa.column(name) for name in [*KEY, "id", "revoked_on"]))
    key = [brand.c[name] for name in KEY]
    query = (
        sa.select(*key, sa.func.min(brand.c.id), sa.func.max(brand.c.id))
        .where(brand.c.revoked_on.is_(None))
        .group_by(*key)
        .having(sa.func.count() > 1)
        .order_by(*key)
        .limit(5)
    )
    return list(op.get_bind().execute(query).all())


def upgrade() -> None:
    duplicated = _duplicated_awards()
    if duplicated:
        pairs = "; ".join(
            f"{row[0]} {row[1]!r} {row[2]} awarded {row[3]}: listings {row[4]} and {row[5]}"
            for row in duplicated
        )
        raise RuntimeError(
            "Unrevoked listings of one product, enterprise and tier share an award day "
            f"(first ones: {pairs}); revoke the extra listing of each before upgrading."
        )
    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.create_index(
            INDEX, KEY, unique=True, sqlite_where=UNREVOKED, postgresql_where=UNREVOKED
        )


def downgrade() -> None:
    with op.batch_alter_table("brand", schema=None) as batch_op:
        batch_op.drop_index(INDEX, sqlite_where=UNREVOKED, postgresql_where=UNREVOKED)
