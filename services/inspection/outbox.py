"""Delivery of outbox notices to the brand registry by a background worker.

A notice is written in the transaction that records the failed spot-check; this worker sends
it later, with exponential backoff while the brand registry is unreachable. The registry is
idempotent on (source, reference), so a notice sent twice (say, after a crash between the
send and the bookkeeping) flags nothing twice.
"""

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inspection import repository
from inspection.models import OutboxMessage
from inspection.service import utcnow
from inspection.settings import Settings
from kit.auth import TokenMinter
from kit.db import as_utc

REVIEW_FLAGS_PATH = "/api/v1/brands/review-flags"
AUDIENCE = "brand_registry"
SCOPE = "brands:flag"
# Answers meaning the notice itself is wrong: retrying cannot help.
REJECTED = frozenset({400, 422})
logger = structlog.get_logger("inspection.outbox")


class OutboxMetrics:
    """The outbox's gauges and counters on the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "inspection_outbox_pending", "Notices waiting for delivery", registry=registry
        )
        self.failed = Gauge(
            "inspection_outbox_failed", "Notices the receiver rejected", registry=registry
        )
        self.oldest_pending_seconds = Gauge(
            "inspection_outbox_oldest_pending_seconds",
            "Age of the oldest notice waiting for delivery",
            registry=registry,
        )
        self.delivered = Counter(
            "inspection_outbox_delivered", "Notices delivered", registry=registry
        )
        self.attempt_errors = Counter(
            "inspection_outbox_attempt_errors", "Delivery attempts that failed", registry=registry
        )


class OutboxWorker:
    """Sends due notices, records each outcome, and keeps the backlog figures current."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        metrics: OutboxMetrics,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.client = client
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._minter: TokenMinter | None = None
        self._key_problem: str | None = None

    def wake(self) -> None:
        """Look for due notices now rather than at the next poll."""
        self._wake.set()

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

    def _backoff(self, attempts: int) -> timedelta:
        base = self.settings.outbox_backoff_base_seconds
        delay = min(self.settings.outbox_backoff_max_seconds, base * 2 ** min(attempts, 30))
        return timedelta(seconds=delay * random.uniform(1.0, 1.1))

    async def deliver_due(self) -> int:
        """Send every notice that is due; the number delivered."""
        minter = self._token_minter()
        if minter is None:
            return 0
        now = utcnow()
        lease = timedelta(seconds=self.settings.brand_registry_timeout_seconds * 2 + 5)
        async with self.sessionmaker() as session:
            messages = await repository.claim_due_messages(
                session=session,
                now=now,
                lease_until=now + lease,
                limit=self.settings.outbox_batch_size,
            )
            await session.commit()
        delivered = 0
        for message in messages:
            if self._stopping.is_set():
                break
            delivered += await self._deliver(message, minter)
        return delivered

    async def _deliver(self, message: OutboxMessage, minter: TokenMinter) -> int:
        token = minter.mint(
            audience=AUDIENCE,
            client_id="inspection",
            client_name="Inspection service",
            scopes={SCOPE},
        )
        error: str | None = None
        give_up = False
        answer: dict[str, Any] = {}
        try:
            response = await self.client.post(
                REVIEW_FLAGS_PATH,
                json=message.payload,
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": message.id},
            )
            if response.status_code in (200, 201):
                answer = response.json()
            else:
                give_up = response.status_code in REJECTED
                error = f"HTTP {response.status_code}: {response.text[:300]}"
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        async with self.sessionmaker() as session:
            if error is None:
                await repository.record_delivery(
                    session=session, message_id=message.id, now=utcnow(), response=answer
                )
            else:
                await repository.record_failure(
                    session=session,
                    message_id=message.id,
                    error=error,
                    next_attempt_at=utcnow() + self._backoff(message.attempts),
                    give_up=give_up,
                )
            await session.commit()
        if error is None:
            self.metrics.delivered.inc()
            logger.info(
                "outbox_delivered", message_id=message.id, reference=answer.get("reference")
            )
            return 1
        self.metrics.attempt_errors.inc()
        logger.warning(
            "outbox_delivery_failed",
            message_id=message.id,
            attempts=message.attempts + 1,
            error=error,
            gave_up=give_up,
        )
        return 0

    async def backlog(self) -> dict[str, Any]:
        """Undelivered notices, for `/health/ready` details; also refreshes the gauges."""
        async with self.sessionmaker() as session:
            backlog = await repository.outbox_backlog(session=session)
        oldest = backlog.pop("oldest_pending")
        age = (utcnow() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        self.metrics.pending.set(backlog[repository.PENDING])
        self.metrics.failed.set(backlog[repository.FAILED])
        self.metrics.oldest_pending_seconds.set(age)
        details: dict[str, Any] = {
            "pending": backlog[repository.PENDING],
            "failed": backlog[repository.FAILED],
            "oldest_pending_seconds": round(age, 1),
            "worker": "stopped" if self._stopping.is_set() else "running",
        }
        if not self.settings.outbox_enabled:
            details["worker"] = "disabled"
        if self._key_problem:
            details["signing_key"] = self._key_problem
        return details

    async def run(self) -> None:
        """Deliver until stopped: at once when woken, else every poll interval."""
        while not self._stopping.is_set():
            self._wake.clear()
            delivered = 0
            try:
                delivered = await self.deliver_due()
                await self.backlog()
            except Exception:
                logger.exception("outbox_cycle_failed")
            if delivered:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_seconds)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


def outbox_lifespan(transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """The lifespan hook running the worker with one long-lived HTTP client."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        async with httpx.AsyncClient(
            base_url=settings.brand_registry_url,
            timeout=settings.brand_registry_timeout_seconds,
            transport=transport,
        ) as client:
            worker = OutboxWorker(
                settings=settings,
                sessionmaker=app.state.sessionmaker,
                client=client,
                metrics=app.state.outbox_metrics,
            )
            app.state.outbox = worker
            app.state.ready_checks["outbox"] = worker.backlog
            task = asyncio.create_task(worker.run()) if settings.outbox_enabled else None
            try:
                yield
            finally:
                worker.stop()
                if task is not None:
                    try:
                        await asyncio.wait_for(task, settings.brand_registry_timeout_seconds + 5)
                    except TimeoutError:
                        logger.warning("outbox_worker_stop_timeout")

    return hook
