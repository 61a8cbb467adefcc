"""`fetch_rows` answers what SQLAlchemy answers for the same statement, on both backends, and
keeps the pool healthy when a statement or its connection fails."""

import asyncio
import enum
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    TypeDecorator,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit.db import (
    as_utc,
    create_engine,
    fetch_rows,
    is_database_unavailable,
    read_concurrently,
)
from kit.testing import TEST_DATABASE_URL, provision_database


class Shade(enum.Enum):
    light = "light"
    dark = "dark"


class Upper(TypeDecorator[str]):
    """A type with a result processor of its own."""

    impl = String(20)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return value.upper() if value is not None else None


metadata = MetaData()
thing = Table(
    "thing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("code", Upper, nullable=True),
    Column("shade", Enum(Shade), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("made_on", Date, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("kept", Boolean, nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
    Column("ratio", Float, nullable=False),
)
c = thing.c

BY_SHADE = (
    select(
        c.id,
        c.name,
        c.code,
        c.shade,
        c.tags,
        c.made_on,
        c.seen_at,
        c.kept,
        c.price,
        c.ratio,
        (c.price * 2).label("doubled"),
        case((c.made_on <= bindparam("on"), "made"), else_="planned").label("state"),
    )
    .where(c.shade == bindparam("shade"), c.kept.is_(True), c.id > 1)
    .order_by(c.id)
)
"""A kept statement with bound values, literal values and a computed column."""

BY_IDS = select(c.id, c.name).where(c.id.in_(bindparam("ids", expanding=True))).order_by(c.id)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with provision_database("kit_fetch_rows", tmp_path) as url:
        made = create_engine(url, pool_size=1)
        async with made.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                insert(thing),
                [
                    {
                        "id": i,
                        "name": f"thing {i}",
                        "code": f"c{i}" if i % 2 else None,
                        "shade": Shade.dark if i % 3 else Shade.light,
                        "tags": {"n": i, "words": ["a", "ü"]},
                        "made_on": date(2026, 1, i),
                        "seen_at": datetime(2026, 1, i, 8, 30, tzinfo=UTC),
                        "kept": i != 4,
                        "price": Decimal(f"{i}.25"),
                        "ratio": i / 4,
                    }
                    for i in range(1, 8)
                ],
            )
        try:
            yield made
        finally:
            await made.dispose()


async def _sqlalchemy_rows(
    engine: AsyncEngine, statement: Any, values: dict[str, Any]
) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(statement, values)).all())


async def test_rows_are_those_sqlalchemy_reads(engine: AsyncEngine) -> None:
    values = {"shade": Shade.dark, "on": date(2026, 1, 4)}
    expected = await _sqlalchemy_rows(engine, BY_SHADE, values)
    for _ in range(2):  # compiled the first time, reused the second
        rows = await fetch_rows(engine, BY_SHADE, values)
        assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
        assert [row._asdict() for row in rows] == [row._asdict() for row in expected]
    assert [row.id for row in rows] == [2, 5, 7]
    first = rows[0]
    assert first.shade is Shade.dark
    assert first.code is None
    assert rows[1].code == "C5"
    assert first.tags == {"n": 2, "words": ["a", "ü"]}
    assert as_utc(first.seen_at) == datetime(2026, 1, 2, 8, 30, tzinfo=UTC)
    assert first.price == Decimal("2.25")
    assert first.ratio == 0.5
    assert first.doubled == Decimal("4.50")
    assert [row.state for row in rows] == ["made", "planned", "planned"]


async def test_a_list_of_values_is_expanded_as_sqlalchemy_expands_it(engine: AsyncEngine) -> None:
    rows = await fetch_rows(engine, BY_IDS, {"ids": [3, 1, 6]})
    assert [tuple(row) for row in rows] == [(1, "thing 1"), (3, "thing 3"), (6, "thing 6")]
    assert await fetch_rows(engine, BY_IDS, {"ids": [2]}) == await _sqlalchemy_rows(
        engine, BY_IDS, {"ids": [2]}
    )


async def _backend_pid(engine: AsyncEngine) -> int:
    (row,) = await fetch_rows(engine, select(func.pg_backend_pid()))
    return int(row[0])


async def test_a_refused_statement_keeps_its_connection(engine: AsyncEngine) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only")
    pid = await _backend_pid(engine)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await fetch_rows(engine, select(c.id / bindparam("zero", type_=Integer)), {"zero": 0})
    assert not is_database_unavailable(refused.value)
    assert await _backend_pid(engine) == pid


async def test_a_connection_lost_under_a_read_is_replaced(engine: AsyncEngine) -> None:
    """The read fails as an outage (a 503 to its caller); the next one gets a new
    connection instead of the dead one."""
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only")
    pid = await _backend_pid(engine)
    other = create_engine(str(engine.url.render_as_string(hide_password=False)), pool_size=1)
    try:
        async with other.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()
    await asyncio.sleep(0.2)
    with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError, OSError)) as lost:
        await _backend_pid(engine)
    assert is_database_unavailable(lost.value)
    assert await _backend_pid(engine) != pid


async def test_reads_run_together_on_postgresql_and_in_turn_elsewhere(engine: AsyncEngine) -> None:
    """On PostgreSQL the first read waits for the second to have run, which it can only do
    at the same time, on a connection of its own; elsewhere they run in turn, in order."""
    second_ran = asyncio.Event()
    together = engine.dialect.name == "postgresql"

    async def first(session: AsyncSession) -> str:
        if together:
            await asyncio.wait_for(second_ran.wait(), timeout=10)
        return str((await session.execute(select(c.name).where(c.id == 1))).scalar_one())

    async def second(session: AsyncSession) -> int:
        second_ran.set()
        return int((await session.execute(select(func.count()).select_from(thing))).scalar_one())

    assert await read_concurrently(engine, first, second) == ["thing 1", 7]
    assert second_ran.is_set()


async def test_a_value_left_out_is_refused_as_sqlalchemy_refuses_it(engine: AsyncEngine) -> None:
    """Not bound as NULL (which would answer no rows and hide the mistake)."""
    with pytest.raises(SQLAlchemyError, match="value is required for bind parameter 'shade'"):
        await fetch_rows(engine, BY_SHADE, {"on": date(2026, 1, 4)})
