"""The move of `audit_entry` to `assessment_history` (0003) keeps every entry, and reference
values stored before it get a version; 0004 adds a rate's fractions and a run's supersedes;
the downgrade gives back the tables it started from."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from assessment.app import MIGRATIONS, VERSION_TABLE
from assessment.models import AssessmentHistory
from assessment.schemas import AssessmentHistoryRead
from kit.db import create_engine
from kit.migrations import alembic_config
from kit.testing import provision_database

AT = datetime(2008, 1, 20, 9, 0, tzinfo=UTC)
ENTRY = {
    "id": "h1",
    "entity": "reference_value",
    "entity_id": "2007/provincial_spot_check_pass_rate",
    "action": "create",
    "year": 2007,
    "actor": "bureau-ui",
    "at": AT,
    "request_id": "r1",
    "before": None,
    "after": {"value": 0.9},
}
REFERENCE = {
    "id": "v1",
    "year": 2007,
    "key": "provincial_spot_check_pass_rate",
    "value": 0.9,
    "source": "江蘇省質監局通報",
    "published_on": date(2008, 1, 20),
    "updated_at": AT,
    "updated_by": "bureau-ui",
}


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


async def _tables(engine: AsyncEngine) -> dict[str, sa.Table]:
    metadata = sa.MetaData()
    async with engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
    return dict(metadata.tables)


async def _rows(engine: AsyncEngine, table: sa.Table) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(table).order_by(table.c.id))
        return [dict(row) for row in result.mappings()]


async def test_history_and_reference_values_survive_the_upgrade_and_the_downgrade(
    tmp_path: Path,
) -> None:
    async with provision_database("assessment_migrations", tmp_path) as url:
        await _migrate(url, "0002")
        engine = create_engine(url)
        try:
            tables = await _tables(engine)
            async with engine.begin() as connection:
                await connection.execute(tables["audit_entry"].insert(), [ENTRY])
                await connection.execute(tables["reference_value"].insert(), [REFERENCE])
            old = await _rows(engine, tables["audit_entry"])

            await _migrate(url, "head")
            tables = await _tables(engine)
            assert "audit_entry" not in tables
            (row,) = await _rows(engine, tables["assessment_history"])
            read = AssessmentHistoryRead.model_validate(AssessmentHistory(**row))
            assert read.model_dump(exclude={"at", "reason"}) == {
                k: v for k, v in ENTRY.items() if k != "at"
            }
            assert (read.at.replace(tzinfo=UTC), read.reason) == (AT, None)
            (reference,) = await _rows(engine, tables["reference_value"])
            assert reference["version"] == 1
            assert {"numerator", "denominator"} <= set(tables["reported_value"].c.keys())
            assert {"supersedes", "superseded_by", "publication_reason"} <= set(
                tables["assessment_run"].c.keys()
            )

            await _migrate(url, "0002", down=True)
            tables = await _tables(engine)
            assert "assessment_history" not in tables
            assert await _rows(engine, tables["audit_entry"]) == old
            assert "version" not in tables["reference_value"].c
            assert "numerator" not in tables["reported_value"].c
            assert "superseded_by" not in tables["assessment_run"].c
        finally:
            await engine.dispose()


REPORTED = {
    "id": "r1",
    "county_code": "320323",
    "year": 2007,
    "indicator": "industrial_standard_coverage",
    "value": 0.96,
    "numerator": None,
    "denominator": None,
    "evidence_document": "銅山縣2007年標準化工作報告.pdf",
    "evidence_text": "縣質監局年度報告",
    "reported_by": "銅山縣質監局",
    "measured_on": date(2007, 12, 31),
    "reported_at": AT,
    "recorded_by": "bureau-ui",
    "superseded_by": None,
}


async def test_values_reported_before_review_existed_are_accepted(tmp_path: Path) -> None:
    """0005: the values stored before counted, so they are `accepted` (version 1); the
    downgrade drops the review columns and the evidence table."""
    async with provision_database("assessment_migrations", tmp_path) as url:
        await _migrate(url, "0004")
        engine = create_engine(url)
        try:
            tables = await _tables(engine)
            async with engine.begin() as connection:
                await connection.execute(tables["reported_value"].insert(), [REPORTED])
            await _migrate(url, "head")
            tables = await _tables(engine)
            (row,) = await _rows(engine, tables["reported_value"])
            assert (row["state"], row["version"], row["review_comment"]) == ("accepted", 1, None)
            assert row["value"] == 0.96
            assert "evidence_file" in tables
            await _migrate(url, "0004", down=True)
            tables = await _tables(engine)
            assert "evidence_file" not in tables
            (row,) = await _rows(engine, tables["reported_value"])
            assert "state" not in row
            assert row["value"] == 0.96
        finally:
            await engine.dispose()
