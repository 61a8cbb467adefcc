"""Alerts of the certification service, emitted as events by a daily sweep.

The lists answer the same questions (`?expiring_within_days=`, `?overdue_suspension=`); the
sweep finds what is due on the bureau's day and emits each alert through
`kit.events.emit_once`, keyed by the certificate and its threshold (for a suspension, the day
it began), so an alert is emitted once however often the sweep runs, restarts included:

    certificate.expiring_soon:<id>:<threshold days>
    certificate.suspension_overdue:<id>:<suspended since>

A certificate first found closer to expiry than several thresholds is owed only the tightest
(5 days before expiry: the 7-day alert, not the 90- and 30-day ones as well). Confidential
certificates, which only writers may list, raise no event: the feed shows events to readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from certification import repository, service
from certification.catalogue import Catalogue
from certification.repository import CertificateQuery
from certification.settings import Settings
from kit import sweeps
from kit.app import LifespanHook
from kit.sweeps import DueAlert, threshold_reached

SOURCE = "certification"
EXPIRING_SOON = "certificate.expiring_soon"
SUSPENSION_OVERDUE = "certificate.suspension_overdue"
logger = structlog.get_logger("certification.alerts")


async def due_alerts(
    *, session: AsyncSession, catalogue: Catalogue, today: date, thresholds: Sequence[int]
) -> list[DueAlert]:
    """Every alert due on `today`, emitted before or not."""
    expiring = CertificateQuery(
        on=today,
        include_confidential=False,
        expires_by=service.days_after(today, max(thresholds)),
    )
    alerts = []
    for certificate, status in await repository.certificates_matching(
        session=session, query=expiring
    ):
        days_left = (certificate.expires_on - today).days
        threshold = threshold_reached(days_left, thresholds)
        if threshold is None:
            continue
        item = service.to_read(certificate, status, catalogue=catalogue, today=today)
        alerts.append(
            DueAlert(
                key=f"{EXPIRING_SOON}:{certificate.id}:{threshold}",
                type=EXPIRING_SOON,
                subject=f"certificates/{certificate.id}",
                county_code=certificate.county_code,
                data={
                    "id": certificate.id,
                    "kind": certificate.kind,
                    "item": item.model_dump(mode="json"),
                    "threshold_days": threshold,
                    "days_left": days_left,
                    "expires_on": certificate.expires_on.isoformat(),
                },
            )
        )
    limit = catalogue.suspension_limit_months
    overdue = CertificateQuery(
        on=today,
        include_confidential=False,
        suspended_before=service.months_before(today, limit),
    )
    for certificate, status in await repository.certificates_matching(
        session=session, query=overdue
    ):
        item = service.to_read(certificate, status, catalogue=catalogue, today=today)
        since = certificate.status_since
        alerts.append(
            DueAlert(
                key=f"{SUSPENSION_OVERDUE}:{certificate.id}:{since.isoformat()}",
                type=SUSPENSION_OVERDUE,
                subject=f"certificates/{certificate.id}",
                county_code=certificate.county_code,
                data={
                    "id": certificate.id,
                    "kind": certificate.kind,
                    "item": item.model_dump(mode="json"),
                    "suspended_since": since.isoformat(),
                    "limit_months": limit,
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
