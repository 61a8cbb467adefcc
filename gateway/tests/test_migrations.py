"""The counties migration (0004) keeps every client, city-wide, and its downgrade gives back
the table it started from."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import DateTime, String, column, insert, inspect, select, table, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import MIGRATIONS, VERSION_TABLE
from kit.migrations import alembic_config
from kit.testing import provision_database

AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CLIENT: dict[str, Any] = {
    "id": "c-1",
    "name": "Provincial platform",
    "scopes": "brands:read certificates:read",
    "rate_limit": "600/minute",
    "status": "active",
    "created_at": AT,
    "revoked_at": None,
}
API_CLIENT = table(
    "api_client",
    *(column(name, String()) for name in ("id", "name", "scopes", "rate_limit", "status")),
    column("created_at", DateTime(timezone=True)),
    column("revoked_at", DateTime(timezone=True)),
)


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    (command.downgrade if down else command.upgrade)(config, revision)


async def _clients(url: str) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(text("*")).select_from(text("api_client")))
            return [dict(row) for row in rows.mappings()]
    finally:
        await engine.dispose()


async def test_clients_become_city_wide_and_come_back_unchanged(tmp_path: Path) -> None:
    async with provision_database("gateway_migration", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0003")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(API_CLIENT), [CLIENT])
        finally:
            await engine.dispose()

        await asyncio.to_thread(_migrate, url, "head")
        [upgraded] = await _clients(url)
        assert upgraded["county_codes"] == ""
        assert upgraded["scopes"] == CLIENT["scopes"]

        await asyncio.to_thread(_migrate, url, "0003", down=True)
        [restored] = await _clients(url)
        assert "county_codes" not in restored
        assert {k: v for k, v in restored.items() if k not in {"created_at"}} == {
            k: v for k, v in CLIENT.items() if k != "created_at"
        }


WEBHOOK_TABLES = {"webhook_subscription", "webhook_delivery", "webhook_attempt", "event_cursor"}


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            return set(names)
    finally:
        await engine.dispose()


async def test_the_webhook_tables_come_and_go_keeping_the_clients(tmp_path: Path) -> None:
    async with provision_database("gateway_webhooks_migration", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0004")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(API_CLIENT), [CLIENT])
        finally:
            await engine.dispose()
        await asyncio.to_thread(_migrate, url, "0005")
        assert await _tables(url) >= WEBHOOK_TABLES
        await asyncio.to_thread(_migrate, url, "0004", down=True)
        assert not WEBHOOK_TABLES & await _tables(url)
        assert [client["id"] for client in await _clients(url)] == ["c-1"]
