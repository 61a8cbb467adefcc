"""The alert sweep: the tightest threshold owed, each alert emitted once across runs, and the
sweeper's schedule and stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit import events
from kit.db import create_engine, create_sessionmaker
from kit.sweeps import DueAlert, Sweeper, emit_due, threshold_reached
from kit.testing import provision_database


def test_the_tightest_threshold_reached_is_owed() -> None:
    thresholds = [90, 30, 7]
    assert threshold_reached(91, thresholds) is None
    assert threshold_reached(90, thresholds) == 90
    assert threshold_reached(31, thresholds) == 90
    assert threshold_reached(30, thresholds) == 30
    assert threshold_reached(8, thresholds) == 30
    assert threshold_reached(5, thresholds) == 7
    assert threshold_reached(0, thresholds) == 7


@pytest.fixture
async def sessionmaker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with provision_database("sweeps", tmp_path) as url:
        engine = create_engine(url)
        schema = MetaData()
        events.event_tables(schema)
        async with engine.begin() as connection:
            await connection.run_sync(schema.create_all)
        try:
            yield create_sessionmaker(engine)
        finally:
            await engine.dispose()


def _alert(n: int, threshold: int) -> DueAlert:
    return DueAlert(
        key=f"brand.expiring_soon:{n}:{threshold}",
        type="brand.expiring_soon",
        subject=f"brands/{n}",
        county_code="320303",
        data={"id": str(n), "threshold_days": threshold},
    )


async def test_each_alert_is_emitted_once_however_often_the_sweep_runs(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    due: list[DueAlert] = [_alert(1, 90), _alert(2, 30)]

    async def find(_: AsyncSession) -> Sequence[DueAlert]:
        return due

    assert await emit_due(sessionmaker, source="sample", due=find) == 2
    assert await emit_due(sessionmaker, source="sample", due=find) == 0
    due.append(_alert(1, 30))
    assert await emit_due(sessionmaker, source="sample", due=find) == 1
    async with sessionmaker() as session:
        stored = await session.execute(select(func.count()).select_from(events.event_table))
        assert stored.scalar_one() == 3


async def test_the_sweeper_waits_runs_at_its_interval_and_stops() -> None:
    runs = 0

    async def sweep_once() -> int:
        nonlocal runs
        runs += 1
        if runs == 2:
            raise RuntimeError("a failed run is logged and the next one still comes")
        return runs

    sweeper = Sweeper(sweep_once=sweep_once, delay=0.05, interval=0.05)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.01)
    assert runs == 0
    await asyncio.sleep(0.3)
    sweeper.stop()
    await asyncio.wait_for(task, 1)
    assert runs >= 3
    status = await sweeper.status()
    assert status["last_run_at"] is not None
    assert status["last_emitted"] == sweeper.last_emitted
