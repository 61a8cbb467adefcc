"""The history's renaming migration (0003) keeps every entry, and its downgrade gives them back."""

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    column,
    insert,
    select,
    table,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql import TableClause
from sqlalchemy.types import TypeEngine

from certification.app import MIGRATIONS, VERSION_TABLE
from certification.models import Certificate
from kit.db import as_utc
from kit.migrations import alembic_config
from kit.testing import provision_database

CERTIFICATE_TABLE: Table = Certificate.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CERTIFICATE: dict[str, Any] = {
    "id": "c-1",
    "certificate_number": "00120Q31234R2M",
    "standard": "ISO 9001:2015",
    "certification_body": "中國質量認證中心",
    "accreditation_body": None,
    "enterprise_credit_code": "91320303000000001X",
    "enterprise_name": "徐州工程機械集團有限公司",
    "county_code": "320323",
    "scope": "工程機械",
    "sites": [],
    "issued_on": date(2020, 3, 1),
    "expires_on": date(2023, 3, 1),
    "original_issued_on": date(2020, 3, 1),
    "confidential": False,
    "status": "suspended",
    "status_since": date(2021, 5, 1),
    "created_at": AT,
    "updated_at": AT,
    "version": 3,
}
ACTOR: dict[str, Any] = {"certificate_id": "c-1", "actor_name": "Test client"}
OLD_ENTRIES: list[dict[str, Any]] = [
    {"id": 1, "kind": "created", "from_status": None, "to_status": "valid",
     "effective_on": date(2020, 3, 1), "reason": None, "changes": None,
     "actor_id": "platform", "occurred_at": AT, **ACTOR},
    {"id": 2, "kind": "updated", "from_status": None, "to_status": None, "effective_on": None,
     "reason": None, "changes": {"expires_on": ["2023-02-28", "2023-03-01"], "sites": [[], ["徐州"]]},
     "actor_id": "platform", "occurred_at": AT, **ACTOR},
    {"id": 3, "kind": "status", "from_status": "valid", "to_status": "suspended",
     "effective_on": date(2021, 5, 1), "reason": "監督審核", "changes": None,
     "actor_id": "cqc", "occurred_at": AT, **ACTOR},
]  # fmt: skip
_COMMON = ["certificate_id", "actor_name", "from_status", "to_status", "reason"]


def _history(name: str, **typed: TypeEngine[Any]) -> TableClause:
    return table(
        name,
        column("id", Integer()),
        column("effective_on", Date()),
        *(column(field, String()) for field in _COMMON),
        *(column(field, type_) for field, type_ in typed.items()),
    )


OLD_HISTORY = _history(
    "certificate_event",
    kind=String(),
    actor_id=String(),
    occurred_at=DateTime(timezone=True),
    changes=JSON(none_as_null=True),
)
NEW_HISTORY = _history(
    "certificate_history",
    action=String(),
    actor=String(),
    at=DateTime(timezone=True),
    before=JSON(none_as_null=True),
    after=JSON(none_as_null=True),
)


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    (command.downgrade if down else command.upgrade)(config, revision)


async def _rows(url: str, history: TableClause) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(history).order_by(history.c.id))
            return [
                {name: as_utc(v) if isinstance(v, datetime) else v for name, v in row.items()}
                for row in result.mappings()
            ]
    finally:
        await engine.dispose()


@pytest.fixture
async def url_at_0002(tmp_path: Path) -> Any:
    """A database migrated to 0002 holding one certificate and three history entries."""
    async with provision_database("certification_migration", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0002")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(CERTIFICATE_TABLE), [CERTIFICATE])
                await connection.execute(insert(OLD_HISTORY), OLD_ENTRIES)
        finally:
            await engine.dispose()
        yield url


async def test_history_is_renamed_and_changes_split_both_ways(url_at_0002: str) -> None:
    await asyncio.to_thread(_migrate, url_at_0002, "head")
    upgraded = await _rows(url_at_0002, NEW_HISTORY)
    assert [(row["id"], row["action"], row["actor"]) for row in upgraded] == [
        (1, "created", "platform"),
        (2, "updated", "platform"),
        (3, "status", "cqc"),
    ]
    assert upgraded[1]["before"] == {"expires_on": "2023-02-28", "sites": []}
    assert upgraded[1]["after"] == {"expires_on": "2023-03-01", "sites": ["徐州"]}
    assert [(row["before"], row["after"]) for row in (upgraded[0], upgraded[2])] == [
        (None, None)
    ] * 2
    assert upgraded[2]["reason"] == "監督審核"
    assert upgraded[2]["at"] == AT

    await asyncio.to_thread(_migrate, url_at_0002, "0002", down=True)
    restored = await _rows(url_at_0002, OLD_HISTORY)
    assert restored == OLD_ENTRIES
