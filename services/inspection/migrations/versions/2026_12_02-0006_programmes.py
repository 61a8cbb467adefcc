"""programmes: every spot-check belongs to a supervision programme

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 08:00:00.000000

Every existing record becomes a `product_quality` check. The programme's own fields are new
nullable columns; `product_category`, `product_name` and `sample_code` become nullable, since
a special-equipment inspection has no sample (config/programmes.json says which programme
requires which). The stats index leads with the programme and covers the metrology counts;
a partial index on the equipment code serves the special-equipment items. The downgrade
refuses while records of another programme exist: the old table cannot hold them.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORIGINALS_ONLY = sa.text("reinspection_of IS NULL")
EQUIPMENT_ONLY = sa.text("equipment_code IS NOT NULL AND reinspection_of IS NULL")
SAMPLE_INDEX = "uq_spot_check_plan_code_sample_code"
STATS_INDEX = "ix_spot_check_stats"
EQUIPMENT_INDEX = "ix_spot_check_equipment"
EQUIPMENT_DAY_INDEX = "uq_spot_check_equipment_code_sampled_on"
OLD_STATS_COLUMNS = [
    "sampled_on",
    "county_code",
    "level",
    "product_category",
    "result",
    "final_result",
    "published_on",
    "overturned_on",
]
NEW_STATS_COLUMNS = [
    "programme",
    *OLD_STATS_COLUMNS,
    "metrology_subject",
    "instruments_checked",
    "instruments_nonconforming",
]
EQUIPMENT_COLUMNS = [
    "equipment_code",
    "sampled_on",
    "id",
    "programme",
    "county_code",
    "equipment_kind",
    "next_due_on",
    "published_on",
    "major_hazard_source",
]
SAMPLE_FIELDS = {"product_category": 32, "product_name": 200, "sample_code": 64}
NEW_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("metrology_subject", sa.String(length=32)),
    ("instruments_checked", sa.Integer()),
    ("instruments_nonconforming", sa.Integer()),
    ("nominal_quantity", sa.String(length=32)),
    ("quantity_unit", sa.String(length=16)),
    ("measured_shortfall", sa.String(length=32)),
    ("tolerated_deficiency", sa.String(length=32)),
    ("equipment_code", sa.String(length=64)),
    ("equipment_kind", sa.String(length=32)),
    ("next_due_on", sa.Date()),
    ("major_hazard_source", sa.Boolean()),
]


def _partial(name: str, columns: list[str], where: sa.TextClause, unique: bool = False) -> None:
    op.create_index(
        name, "spot_check", columns, unique=unique, sqlite_where=where, postgresql_where=where
    )


def upgrade() -> None:
    op.drop_index(STATS_INDEX, table_name="spot_check")
    op.drop_index(SAMPLE_INDEX, table_name="spot_check")
    with op.batch_alter_table("spot_check", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "programme",
                sa.String(length=32),
                server_default="product_quality",
                nullable=False,
            )
        )
        for name, type_ in NEW_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        for name, length in SAMPLE_FIELDS.items():
            batch_op.alter_column(name, existing_type=sa.String(length=length), nullable=True)
    _partial(SAMPLE_INDEX, ["plan_code", "sample_code"], ORIGINALS_ONLY, unique=True)
    _partial(STATS_INDEX, NEW_STATS_COLUMNS, ORIGINALS_ONLY)
    _partial(EQUIPMENT_INDEX, EQUIPMENT_COLUMNS, EQUIPMENT_ONLY)
    _partial(EQUIPMENT_DAY_INDEX, ["equipment_code", "sampled_on"], EQUIPMENT_ONLY, unique=True)


def downgrade() -> None:
    others = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM spot_check WHERE programme <> 'product_quality'")
    )
    if others:
        raise RuntimeError(
            f"{others} spot-check record(s) belong to programmes other than product_quality; "
            "export and remove them before downgrading below revision 0006"
        )
    op.drop_index(EQUIPMENT_DAY_INDEX, table_name="spot_check")
    op.drop_index(EQUIPMENT_INDEX, table_name="spot_check")
    op.drop_index(STATS_INDEX, table_name="spot_check")
    op.drop_index(SAMPLE_INDEX, table_name="spot_check")
    with op.batch_alter_table("spot_check", schema=None) as batch_op:
        for name, length in SAMPLE_FIELDS.items():
            batch_op.alter_column(name, existing_type=sa.String(length=length), nullable=False)
        for name, _type in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
        batch_op.drop_column("programme")
    _partial(SAMPLE_INDEX, ["plan_code", "sample_code"], ORIGINALS_ONLY, unique=True)
    _partial(STATS_INDEX, OLD_STATS_COLUMNS, ORIGINALS_ONLY)
