"""Inspection's notices to the brand registry, delivered by the kit's outbox worker.

A notice is written in the transaction that records the failed spot-check (a review flag) or
the change that ends its failure (the flag's clearing); the worker sends it once its release
day has come and `service.next_step` finds it due, with exponential backoff while the brand
registry is unreachable. The registry is idempotent on (source, reference), so a notice sent
twice (say, after a crash between the send and the bookkeeping) flags or clears nothing twice.
Each call carries the ID of the request that caused the notice.

A confirmed counterfeiting case against a listed brand is a counterfeit notice, sent at once
(incidents have no bulletin day) unless the case was dismissed first; the registry answers a
brand it does not list with 404, and such a notice is parked as rejected, not retried.
"""

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from inspection import incident_service, service
from inspection.models import OutboxMessage
from inspection.settings import Settings
from kit.auth import TokenMinter
from kit.outbox import Call, Delivery, OutboxWorker, Step
from kit.outbox import outbox_lifespan as kit_outbox_lifespan

REVIEW_FLAGS_PATH = "/api/v1/brands/review-flags"
COUNTERFEIT_NOTICES_PATH = "/api/v1/brands/counterfeit-notices"
AUDIENCE = "brand_registry"
SCOPE = "brands:flag"
METRICS_PREFIX = "inspection_outbox"
# Answers meaning the notice itself is wrong: retrying cannot help.
REJECTED = frozenset({400, 422})
# A counterfeit notice naming a brand the registry does not list cannot succeed either.
REJECTED_COUNTERFEIT = REJECTED | {404}
logger = structlog.get_logger("inspection.outbox")


class BrandRegistryCourier:
    """What each notice sends to the brand registry, when, and signed by which key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._minter: TokenMinter | None = None
        self._key_problem: str | None = None

    def today(self) -> date:
        """The bureau's calendar day."""
        return self.settings.today()

    def _token_minter(self) -> TokenMinter | None:
        if self._minter is None:
            path = Path(str(self.settings.service_private_key_file))
            try:
                self._minter = TokenMinter(path.read_bytes(), issuer="inspection")
                self._key_problem = None
            except (OSError, ValueError) as exc:
                if self._key_problem is None:
                    logger.warning("outbox_signing_key_unusable", path=str(path), error=str(exc))
                self._key_problem = f"signing key {path} unusable: {type(exc).__name__}"
        return self._minter

    def signer(self) -> Callable[[], Mapping[str, str]] | None:
        """A fresh service token per call, or None while the signing key is unusable."""
        minter = self._token_minter()
        if minter is None:
            return None

        def headers() -> Mapping[str, str]:
            token = minter.mint(
                audience=AUDIENCE,
                client_id="inspection",
                client_name="Inspection service",
                scopes={SCOPE},
            )
            return {"Authorization": f"Bearer {token}"}

        return headers

    def problems(self) -> dict[str, str]:
        """The signing key's problem, if it has one."""
        return {"signing_key": self._key_problem} if self._key_problem else {}

    async def step(
        self, *, session: AsyncSession, message: OutboxMessage, today: date, now: datetime
    ) -> Step:
        """Send the notice, or put it off or withdraw it as the embargo and its chain say."""
        if message.kind == incident_service.COUNTERFEIT_NOTICE:
            return await incident_service.notice_step(session=session, notice=message)
        return await service.next_step(session=session, notice=message, today=today, now=now)

    def request(self, message: OutboxMessage, payload: dict[str, Any]) -> Call:
        """The path and body of the call a notice makes, and the answers rejecting it."""
        if message.kind == service.REVIEW_CLEAR:
            source = quote(payload["source"], safe="")
            reference = quote(payload["reference"], safe="/")
            path = f"{REVIEW_FLAGS_PATH}/{source}/{reference}/clear"
            return Call(path, {"reason": payload["reason"]}, REJECTED)
        if message.kind == incident_service.COUNTERFEIT_NOTICE:
            return Call(COUNTERFEIT_NOTICES_PATH, payload, REJECTED_COUNTERFEIT)
        return Call(REVIEW_FLAGS_PATH, payload, REJECTED)


def delivery(settings: Settings) -> Delivery:
    """The worker's receiver and pacing, from the settings."""
    return Delivery(
        receiver_url=settings.brand_registry_url,
        receiver_timeout_seconds=settings.brand_registry_timeout_seconds,
        poll_seconds=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
        backoff_base_seconds=settings.outbox_backoff_base_seconds,
        backoff_max_seconds=settings.outbox_backoff_max_seconds,
        timezone=settings.timezone,
        enabled=settings.outbox_enabled,
    )


def outbox_lifespan(transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """The lifespan hook running the worker with one long-lived HTTP client."""

    def build(app: FastAPI) -> OutboxWorker[OutboxMessage]:
        settings: Settings = app.state.settings
        return OutboxWorker(
            model=OutboxMessage,
            courier=BrandRegistryCourier(settings),
            delivery=delivery(settings),
            sessionmaker=app.state.sessionmaker,
            metrics=app.state.outbox_metrics,
            transport=transport,
        )

    return kit_outbox_lifespan(build)
