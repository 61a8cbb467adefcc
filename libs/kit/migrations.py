"""Alembic wiring reused by every service: one history each, its own version table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.db import is_sqlite


def alembic_config(script_location: Path, database_url: str, version_table: str) -> Config:
    """A programmatic alembic configuration for one service."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("version_table", version_table)
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d-%%(rev)s_%%(slug)s")
    return config


def upgrade_to_head(script_location: Path, database_url: str, version_table: str) -> None:
    """Apply every pending migration (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(script_location, database_url, version_table), "head")


def head_revision(script_location: Path) -> str | None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return ScriptDirectory.from_config(config).get_current_head()


async def current_revision(engine: AsyncEngine, version_table: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""

    def read(connection: Connection) -> str | None:
        ctx = MigrationContext.configure(connection, opts={"version_table": version_table})
        return ctx.get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def _configure(connection: Connection, metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData, version_table: str) -> None:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure, metadata, version_table)
        await connection.commit()
    await engine.dispose()


def run_env(*, metadata: MetaData, version_table: str, default_url: str) -> None:
    """The body of a service's `migrations/env.py`."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or default_url
    version_table = config.get_main_option("version_table") or version_table
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=metadata,
            version_table=version_table,
            literal_binds=True,
            render_as_batch=is_sqlite(url),
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _configure(connectable, metadata, version_table)
        return
    asyncio.run(_run_online(url, metadata, version_table))


async def schema_drift(engine: AsyncEngine, metadata: MetaData, version_table: str) -> list[Any]:
    """What autogenerate would change between the migrated database and the models."""

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": version_table}
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(diff)
