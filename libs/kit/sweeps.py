"""A periodic sweep that emits alert events, each once, however often it runs.

A service's alerts module knows what is due (which listings expire within which threshold,
which enterprises failed twice); the kit emits each `DueAlert` through
`kit.events.emit_once` under its key, in one transaction, so an alert is emitted once across
runs, restarts and replicas, and `sweep_lifespan` runs the sweep shortly after start and then
at every interval until the app stops, its last run shown in `/health/ready`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kit import events
from kit.db import is_database_unavailable, outage_log

STOP_TIMEOUT_SECONDS = 10.0
logger = structlog.get_logger("kit.sweeps")


@dataclass(frozen=True)
class DueAlert:
    """One alert due: its once-key and the event it emits."""

    key: str
    type: str
    subject: str
    county_code: str | None
    data: dict[str, Any]


FindDue = Callable[[AsyncSession], Awaitable[Sequence[DueAlert]]]


def threshold_reached(days_left: int, thresholds: Sequence[int]) -> int | None:
    """The tightest threshold `days_left` is within, or None when beyond them all: an item
    first seen 5 days before its end is owed the 7-day alert, not the 90- and 30-day ones."""
    within = [threshold for threshold in thresholds if days_left <= threshold]
    return min(within) if within else None


async def emit_due(sessionmaker: Callable[[], AsyncSession], *, source: str, due: FindDue) -> int:
    """Emit every alert `due` finds that was never emitted before; how many were."""
    async with sessionmaker() as session:
        emitted = 0
        for alert in await due(session):
            emitted += await events.emit_once(
                session,
                key=alert.key,
                source=source,
                type=alert.type,
                subject=alert.subject,
                data=alert.data,
                county_code=alert.county_code,
            )
        await session.commit()
    return emitted


class Sweeper:
    """Runs `sweep_once` after `delay` seconds and then every `interval`, until stopped."""

    def __init__(
        self, *, sweep_once: Callable[[], Awaitable[int]], delay: float, interval: float
    ) -> None:
        self.sweep_once = sweep_once
        self.delay = delay
        self.interval = interval
        self.last_run_at: datetime | None = None
        self.last_emitted = 0
        self._stopping = asyncio.Event()

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds` or until stopped; whether stopped."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def run(self) -> None:
        if await self._pause(self.delay):
            return
        while True:
            try:
                self.last_emitted = await self.sweep_once()
                self.last_run_at = datetime.now(UTC)
                logger.info("alert_sweep_done", emitted=self.last_emitted)
            except Exception as error:
                if is_database_unavailable(error):
                    outage_log.report(error, "alert sweep")
                else:
                    logger.exception("alert_sweep_failed")
            if await self._pause(self.interval):
                return

    def stop(self) -> None:
        self._stopping.set()

    async def status(self) -> dict[str, Any]:
        """The sweep's last run, for `/health/ready` details."""
        return {
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_emitted": self.last_emitted,
        }


class SweepSettings(Protocol):
    """The settings a service's sweep runs by (`<PREFIX>_ALERT_SWEEP_*`)."""

    alert_sweep_enabled: bool
    alert_sweep_delay_seconds: float
    alert_sweep_interval_seconds: float


def sweep_lifespan(
    *, source: str, due: Callable[[FastAPI, AsyncSession], Awaitable[Sequence[DueAlert]]]
) -> Callable[[FastAPI], Any]:
    """The lifespan hook running the sweep while the app runs, when its settings enable it;
    the sweeper is `app.state.alert_sweeper`, its status the ready check `alert_sweep`."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: SweepSettings = app.state.settings

        async def sweep_once() -> int:
            return await emit_due(
                app.state.sessionmaker, source=source, due=lambda session: due(app, session)
            )

        sweeper = Sweeper(
            sweep_once=sweep_once,
            delay=settings.alert_sweep_delay_seconds,
            interval=settings.alert_sweep_interval_seconds,
        )
        app.state.alert_sweeper = sweeper
        if not settings.alert_sweep_enabled:
            yield
            return
        app.state.ready_checks["alert_sweep"] = sweeper.status
        task = asyncio.create_task(sweeper.run())
        try:
            yield
        finally:
            sweeper.stop()
            try:
                await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("alert_sweep_stop_timeout", source=source)

    return hook
