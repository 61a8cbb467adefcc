"""The history's renaming migration (0003) keeps every entry, and its downgrade gives them back;
the licences migration (0005) keeps every certificate as a management-system one."""

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Integer,
    String,
    column,
    insert,
    inspect,
    select,
    table,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql import TableClause
from sqlalchemy.types import TypeEngine

from certification.app import MIGRATIONS, VERSION_TABLE
from certification.models import Certificate, FoodDisposition
from kit.db import as_utc
from kit.migrations import alembic_config
from kit.testing import provision_database

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
_TYPES: dict[str, TypeEngine[Any]] = {
    "sites": JSON(),
    "confidential": Boolean(),
    "version": Integer(),
    **{name: Date() for name in ("issued_on", "expires_on", "original_issued_on", "status_since")},
    **{name: DateTime(timezone=True) for name in ("created_at", "updated_at")},
}
CERTIFICATE_TABLE = table(
    "certificate", *(column(name, _TYPES.get(name, String())) for name in CERTIFICATE)
)
"""The certificate table as it was before licences (0005)."""
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


@pytest.fixture
async def url_at_0004(tmp_path: Path) -> Any:
    """A database migrated to 0004 holding one certificate."""
    async with provision_database("certification_licences", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0004")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(CERTIFICATE_TABLE), [CERTIFICATE])
        finally:
            await engine.dispose()
        yield url


LICENCE: dict[str, Any] = CERTIFICATE | {
    "id": "l-1",
    "kind": "food_production_licence",
    "certificate_number": "QS320301010001",
    "standard": None,
    "certification_body": None,
    "issuing_authority": "徐州市質量技術監督局",
    "product_categories": ["糧食加工品"],
    "status": "valid",
}
DISPOSITION: dict[str, Any] = {
    "id": "d-1",
    "enterprise_credit_code": "91320303000000001X",
    "enterprise_name": "徐州工程機械集團有限公司",
    "county_code": "320323",
    "licence_number": None,
    "disposition": "supported",
    "decided_on": date(2008, 5, 1),
    "deadline": None,
    "reason": "扶持",
    "created_at": AT,
    "updated_at": AT,
    "version": 1,
}


async def _ids(url: str, clause: TableClause) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(clause).order_by(clause.c.id))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


async def test_licences_migration_keeps_certificates_and_drops_licences_down(
    url_at_0004: str,
) -> None:
    await asyncio.to_thread(_migrate, url_at_0004, "head")
    head: Any = Certificate.__table__  # type: ignore[attr-defined]
    [row] = await _ids(url_at_0004, head)
    assert (row["kind"], row["product_categories"], row["issuing_authority"]) == (
        "management_system",
        [],
        None,
    )
    assert row["standard"] == "ISO 9001:2015"
    engine = create_async_engine(url_at_0004)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(head), [LICENCE])
            await connection.execute(insert(FoodDisposition.__table__), [DISPOSITION])  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    assert [r["id"] for r in await _ids(url_at_0004, head)] == ["c-1", "l-1"]

    await asyncio.to_thread(_migrate, url_at_0004, "0004", down=True)
    [kept] = await _ids(url_at_0004, CERTIFICATE_TABLE)
    assert kept["id"] == "c-1"
    assert kept["certificate_number"] == CERTIFICATE["certificate_number"]
    engine = create_async_engine(url_at_0004)
    try:
        async with engine.connect() as connection:
            tables, columns = await connection.run_sync(
                lambda sync: (
                    inspect(sync).get_table_names(),
                    [c["name"] for c in inspect(sync).get_columns("certificate")],
                )
            )
    finally:
        await engine.dispose()
    assert "food_disposition" not in tables
    assert {"kind", "product_categories"}.isdisjoint(columns)
