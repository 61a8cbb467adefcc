"""The history's move to `actor`, `at`, `before` and `after` (0003) keeps every entry: the API
reads the same entry after the upgrade, and the downgrade gives back the columns it started
from."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from brand_registry import models
from brand_registry.app import MIGRATIONS, VERSION_TABLE
from brand_registry.models import BrandHistory
from brand_registry.service import history_read
from kit.db import create_engine
from kit.migrations import alembic_config
from kit.testing import provision_database

AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
# One entry of each kind the service wrote before 0003, as (action, from, to, changes).
ENTRIES: list[tuple[str, str | None, str | None, dict[str, Any] | None]] = [
    ("created", None, "active", None),
    ("renewed", None, None, {"superseded_on": [None, "2023-08-15"]}),
    ("updated", None, None, {"brand_name": ["維維", "維維股份"], "standard_code": [None, "CAC"]}),
    ("status_changed", "active", "suspended", None),
    ("status_changed", "suspended", "active", {"review_required": [True, False]}),
    ("review_cleared", "active", "active", {"review_required": [True, False]}),
    (
        "review_flagged",
        None,
        None,
        {"review_required": [None, True], "source": "inspection", "reference": "r1"},
    ),
]
OLD_HISTORY = sa.table(
    "brand_history",
    *(sa.column(name) for name in ["id", "action", "actor_id", "changed_at"]),
    sa.column("from_status"),
    sa.column("to_status"),
    sa.column("changes", sa.JSON()),
)
BRAND = {
    "id": "b1",
    "product_name": "維維豆奶粉",
    "brand_name": "維維",
    "enterprise_credit_code": "913203030000000010",
    "enterprise_name": "維維集團股份有限公司",
    "county_code": "320323",
    "tier": "china_famous",
    "sector": "industry",
    "award_kind": "new",
    "awarded_on": date(2020, 9, 1),
    "valid_until": date(2023, 9, 1),
    "international_standard": False,
    "status": "active",
    "review_required": False,
    "search_text": "維維豆奶粉",
    "created_at": AT,
    "updated_at": AT,
    "version": 1,
}


def _old_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"h{number}",
            "brand_id": "b1",
            "changed_at": AT,
            "actor_id": "test-client",
            "actor_name": "Test client",
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "effective_on": None,
            "changes": changes,
            "reason": "why",
        }
        for number, (action, from_status, to_status, changes) in enumerate(ENTRIES)
    ]


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


async def _rows(engine: AsyncEngine, table: sa.TableClause) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(table).order_by(table.c.id))
        return [dict(row) for row in result.mappings()]


async def test_history_entries_survive_the_upgrade_and_the_downgrade(tmp_path: Path) -> None:
    async with provision_database("brand_registry_migrations", tmp_path) as url:
        await _migrate(url, "0002")
        engine = create_engine(url)
        try:
            metadata = sa.MetaData()
            async with engine.begin() as connection:
                await connection.run_sync(metadata.reflect)
                await connection.execute(metadata.tables["brand"].insert(), [BRAND])
                await connection.execute(metadata.tables["brand_history"].insert(), _old_rows())
            old = await _rows(engine, OLD_HISTORY)

            await _migrate(url, "head")
            new = await _rows(engine, models.metadata.tables[BrandHistory.__tablename__])
            for entry, row in zip(old, new, strict=True):
                read = history_read(BrandHistory(**row)).model_dump()
                assert read["from_status"] == entry["from_status"]
                assert read["to_status"] == entry["to_status"]
                assert read["changes"] == entry["changes"]
                assert (read["actor_id"], read["action"]) == (entry["actor_id"], entry["action"])
            assert new[1]["before"] == {"superseded_on": None}
            assert new[1]["after"] == {"superseded_on": "2023-08-15"}

            await _migrate(url, "0002", down=True)
            assert await _rows(engine, OLD_HISTORY) == old
        finally:
            await engine.dispose()


GI_LISTING = {
    **BRAND,
    "id": "b2",
    "product_name": "邳州銀杏",
    "tier": "geographical_indication",
    "valid_until": None,
    "protected_name": "邳州銀杏",
    "protected_area": ["320382"],
    "approval_authority": "國家質量監督檢驗檢疫總局",
    "notice_number": "2006年第185號",
    "counterfeit_cases": 0,
}
AWARD = {
    "id": "a1",
    "kind": "city_quality_management_award",
    "level": "city",
    "year": 2008,
    "enterprise_credit_code": "913203030000000010",
    "enterprise_name": "維維集團股份有限公司",
    "county_code": "320323",
    "awarded_on": date(2008, 5, 1),
    "excellence_score": None,
    "status": "awarded",
    "revoked_on": None,
    "created_at": AT,
    "updated_at": AT,
    "version": 1,
}
NOTICE = {
    "source": "inspection",
    "reference": "incidents/1",
    "brand_id": "b1",
    "case_kind": "counterfeiting_case",
    "occurred_on": date(2024, 10, 8),
    "county_code": "320382",
    "summary": "假冒",
    "raised_by": "inspection",
    "created_at": AT,
}


async def test_recognitions_upgrade_keeps_listings_and_the_downgrade_guards_open_validity(
    tmp_path: Path,
) -> None:
    async with provision_database("brand_registry_migrations_0007", tmp_path) as url:
        await _migrate(url, "0006")
        engine = create_engine(url)
        try:
            old = sa.MetaData()
            async with engine.begin() as connection:
                await connection.run_sync(old.reflect)
                await connection.execute(old.tables["brand"].insert(), [BRAND])
            before = await _rows(engine, sa.table("brand", *(sa.column(k) for k in BRAND)))

            await _migrate(url, "0007")
            tables = models.metadata.tables
            (upgraded,) = await _rows(engine, tables["brand"])
            assert {k: upgraded[k] for k in BRAND if k not in ("created_at", "updated_at")} == {
                k: v for k, v in BRAND.items() if k not in ("created_at", "updated_at")
            }
            assert upgraded["counterfeit_cases"] == 0
            assert upgraded["protected_area"] is None
            async with engine.begin() as connection:
                await connection.execute(tables["brand"].insert(), [GI_LISTING])
                await connection.execute(tables["award"].insert(), [AWARD])
                await connection.execute(tables["counterfeit_notice"].insert(), [NOTICE])
            (award,) = await _rows(engine, tables["award"])
            assert award["kind"] == AWARD["kind"]

            with pytest.raises(RuntimeError, match="b2"):
                await _migrate(url, "0006", down=True)
            async with engine.begin() as connection:
                await connection.execute(
                    tables["brand"].delete().where(tables["brand"].c.id == "b2")
                )
            await _migrate(url, "0006", down=True)
            assert await _rows(engine, sa.table("brand", *(sa.column(k) for k in BRAND))) == before
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            assert not {"award", "award_history", "counterfeit_notice"} & set(names)
            await _migrate(url, "head")
        finally:
            await engine.dispose()
