"""Alerts of the brand registry, emitted as events by a daily sweep.

The lists answer the same questions (`?expiring_within_days=`, `?overdue_suspension=`); the
sweep finds what is due on the bureau's day and emits each alert through
`kit.events.emit_once`, keyed by the listing and its threshold (for a suspension, the day it
began), so an alert is emitted once however often the sweep runs, restarts included:

    brand.expiring_soon:<id>:<threshold days>
    brand.suspension_overdue:<id>:<suspended since>

A listing first found closer to the end of its validity than several thresholds is owed only
the tightest (5 days before: the 7-day alert, not the 90- and 30-day ones as well).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brand_registry import repository, service
from brand_registry.catalogue import Catalogue
from brand_registry.schemas import ListingFilters
from brand_registry.settings import Settings
from kit import events
from kit.db import is_database_unavailable, outage_log

SOURCE = "brand_registry"
EXPIRING_SOON = "brand.expiring_soon"
SUSPENSION_OVERDUE = "brand.suspension_overdue"
STOP_TIMEOUT_SECONDS = 10.0
logger = structlog.get_logger("brand_registry.alerts")


@dataclass(frozen=True)
class DueAlert:
    """One alert due: its once-key and the event it emits."""

    key: str
    type: str
    subject: str
    county_code: str | None
    data: dict[str, Any]


def threshold_reached(days_left: int, thresholds: Sequence[int]) -> int | None:
    """The tightest threshold `days_left` is within, or None when beyond them all."""
    within = [threshold for threshold in thresholds if days_left <= threshold]
    return min(within) if within else None


async def due_alerts(
    *, session: AsyncSession, catalogue: Catalogue, today: date, thresholds: Sequence[int]
) -> list[DueAlert]:
    """Every alert due on `today`, emitted before or not."""
    alerts = []
    expiring = ListingFilters(expiring_within_days=max(thresholds))
    for row in await repository.listings_matching(session=session, filters=expiring, today=today):
        days_left = (row["valid_until"] - today).days
        threshold = threshold_reached(days_left, thresholds)
        if threshold is None:
            continue
        item = service.to_read(row, catalogue=catalogue, today=today)
        alerts.append(
            DueAlert(
                key=f"{EXPIRING_SOON}:{item.id}:{threshold}",
                type=EXPIRING_SOON,
                subject=f"brands/{item.id}",
                county_code=item.county_code,
                data={
                    "id": item.id,
                    "item": item.model_dump(mode="json"),
                    "threshold_days": threshold,
                    "days_left": days_left,
                    "valid_until": item.valid_until.isoformat(),
                },
            )
        )
    overdue = ListingFilters(overdue_suspension=True)
    for row in await repository.listings_matching(
        session=session,
        filters=overdue,
        today=today,
        suspended_before=catalogue.suspension_cutoff(today),
    ):
        item = service.to_read(row, catalogue=catalogue, today=today)
        since: date = row["status_changed_on"]
        alerts.append(
            DueAlert(
                key=f"{SUSPENSION_OVERDUE}:{item.id}:{since.isoformat()}",
                type=SUSPENSION_OVERDUE,
                subject=f"brands/{item.id}",
                county_code=item.county_code,
                data={
                    "id": item.id,
                    "item": item.model_dump(mode="json"),
                    "suspended_since": since.isoformat(),
                    "limit_months": catalogue.suspension_limit_months,
                    "days_suspended": (today - since).days,
                },
            )
        )
    return alerts


async def sweep(
    *,
    sessionmaker: Callable[[], AsyncSession],
    catalogue: Catalogue,
    today: date,
    thresholds: Sequence[int],
) -> int:
    """Emit every alert due on `today` that was never emitted; how many were."""
    async with sessionmaker() as session:
        emitted = 0
        for alert in await due_alerts(
            session=session, catalogue=catalogue, today=today, thresholds=thresholds
        ):
            emitted += await events.emit_once(
                session,
                key=alert.key,
                source=SOURCE,
                type=alert.type,
                subject=alert.subject,
                data=alert.data,
                county_code=alert.county_code,
            )
        await session.commit()
    return emitted


class AlertSweeper:
    """Runs `sweep_once` shortly after start and then at every interval, until stopped."""

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


def alerts_lifespan() -> Any:
    """The lifespan hook running the sweep while the app runs (when enabled)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker

        async def sweep_once() -> int:
            return await sweep(
                sessionmaker=sessionmaker,
                catalogue=app.state.catalogue,
                today=settings.today(),
                thresholds=settings.alert_thresholds_days,
            )

        sweeper = AlertSweeper(
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
                logger.warning("alert_sweep_stop_timeout")

    return hook
