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

from collections.abc import Callable, Sequence
from datetime import date

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from brand_registry import repository, service
from brand_registry.catalogue import Catalogue
from brand_registry.schemas import ListingFilters
from brand_registry.settings import Settings
from kit import sweeps
from kit.app import LifespanHook
from kit.sweeps import DueAlert, threshold_reached

SOURCE = "brand_registry"
EXPIRING_SOON = "brand.expiring_soon"
SUSPENSION_OVERDUE = "brand.suspension_overdue"
logger = structlog.get_logger("brand_registry.alerts")


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
                    "valid_until": row["valid_until"].isoformat(),
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
    return await sweeps.emit_due(
        sessionmaker,
        source=SOURCE,
        due=lambda session: due_alerts(
            session=session, catalogue=catalogue, today=today, thresholds=thresholds
        ),
    )


def alerts_lifespan() -> LifespanHook:
    """The lifespan hook running the sweep while the app runs (when enabled)."""

    async def due(app: FastAPI, session: AsyncSession) -> list[DueAlert]:
        settings: Settings = app.state.settings
        return await due_alerts(
            session=session,
            catalogue=app.state.catalogue,
            today=settings.today(),
            thresholds=settings.alert_thresholds_days,
        )

    return sweeps.sweep_lifespan(source=SOURCE, due=due)
