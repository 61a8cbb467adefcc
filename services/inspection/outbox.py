"""Delivery of outbox notices to the brand registry by a background worker.

A notice is written in the transaction that records the failed spot-check (a review flag) or
the change that ends its failure (the flag's clearing); this worker sends it once its release
day has come and `service.next_step` finds it due, with exponential backoff while the brand
registry is unreachable. The registry is idempotent on (source, reference), so a notice sent
twice (say, after a crash between the send and the bookkeeping) flags or clears nothing twice.
Each call carries the ID of the request that caused the notice.

A confirmed counterfeiting case against a listed brand is a counterfeit notice, sent at once
(incidents have no bulletin day) unless the case was dismissed first; the registry answers a
brand it does not list with 404, and such a notice is parked as rejected, not retried.
"""

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inspection import incident_service, repository, service
from inspection.models import OutboxMessage
from inspection.service import utcnow
from inspection.settings import Settings
from kit.auth import TokenMinter
from kit.db import as_utc, is_database_unavailable, outage_log

REVIEW_FLAGS_PATH = "/api/v1/brands/review-flags"
COUNTERFEIT_NOTICES_PATH = "/api/v1/brands/counterfeit-notices"
AUDIENCE = "brand_registry"
SCOPE = "brands:flag"
# Answers meaning the notice itself is wrong: retrying cannot help.
REJECTED = frozenset({400, 422})
# A counterfeit notice naming a brand the registry does not list cannot succeed either.
REJECTED_COUNTERFEIT = REJECTED | {404}
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
        self.scheduled = Gauge(
            "inspection_outbox_scheduled",
            "Notices waiting for the bulletin day of their check",
            registry=registry,
        )
        self.held = Gauge(
            "inspection_outbox_held",
            "Notices whose check has no bulletin day yet",
            registry=registry,
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
        self.withdrawn = Counter(
            "inspection_outbox_withdrawn",
            "Notices no longer owed when their time came",
            registry=registry,
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
        """Send every notice that is due; the number settled (delivered, put off or
        withdrawn)."""
        minter = self._token_minter()
        if minter is None:
            return 0
        now = utcnow()
        lease = timedelta(seconds=self.settings.brand_registry_timeout_seconds * 2 + 5)
        async with self.sessionmaker() as session:
            messages = await repository.claim_due_messages(
                session=session,
                now=now,
                today=self.settings.today(),
                lease_until=now + lease,
                limit=self.settings.outbox_batch_size,
            )
            await session.commit()
        settled = 0
        for message in messages:
            if self._stopping.is_set():
                break
            settled += await self._settle(message, minter)
        return settled

    async def _settle(self, message: OutboxMessage, minter: TokenMinter) -> int:
        """Send the notice if it is due now, else put it off or withdraw it as the embargo
        and its chain say."""
        async with self.sessionmaker() as session:
            if message.kind == incident_service.COUNTERFEIT_NOTICE:
                step: service.NoticeStep = await incident_service.notice_step(
                    session=session, notice=message
                )
            else:
                step = await service.next_step(
                    session=session, notice=message, today=self.settings.today(), now=utcnow()
                )
        if isinstance(step, service.Send):
            return await self._deliver(message, step.payload, minter)
        async with self.sessionmaker() as session:
            if isinstance(step, service.Postpone):
                await repository.postpone(
                    session=session,
                    message_id=message.id,
                    status=repository.PENDING if step.release_on else repository.HELD,
                    release_on=step.release_on,
                    next_attempt_at=utcnow(),
                )
            elif isinstance(step, service.Wait):
                await repository.postpone(
                    session=session,
                    message_id=message.id,
                    status=repository.PENDING,
                    release_on=message.release_on,
                    next_attempt_at=step.until,
                )
            else:
                await repository.withdraw(
                    session=session, message_id=message.id, reason=step.reason
                )
                self.metrics.withdrawn.inc()
                logger.info("outbox_withdrawn", message_id=message.id, reason=step.reason)
            await session.commit()
        return 0 if isinstance(step, service.Wait) else 1

    def _request(self, message: OutboxMessage, payload: dict[str, Any]) -> tuple[str, Any]:
        """The path and body of the call a notice makes."""
        if message.kind == service.REVIEW_CLEAR:
            source = quote(payload["source"], safe="")
            reference = quote(payload["reference"], safe="/")
            return f"{REVIEW_FLAGS_PATH}/{source}/{reference}/clear", {"reason": payload["reason"]}
        if message.kind == incident_service.COUNTERFEIT_NOTICE:
            return COUNTERFEIT_NOTICES_PATH, payload
        return REVIEW_FLAGS_PATH, payload

    async def _deliver(
        self, message: OutboxMessage, payload: dict[str, Any], minter: TokenMinter
    ) -> int:
        token = minter.mint(
            audience=AUDIENCE,
            client_id="inspection",
            client_name="Inspection service",
            scopes={SCOPE},
        )
        error: str | None = None
        give_up = False
        answer: dict[str, Any] = {}
        path, body = self._request(message, payload)
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Request-ID": message.request_id or message.id,
        }
        try:
            response = await self.client.post(path, json=body, headers=headers)
            if response.status_code in (200, 201):
                answer = response.json()
            else:
                rejected = (
                    REJECTED_COUNTERFEIT
                    if message.kind == incident_service.COUNTERFEIT_NOTICE
                    else REJECTED
                )
                give_up = response.status_code in rejected
                error = f"HTTP {response.status_code}: {response.text[:300]}"
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        async with self.sessionmaker() as session:
            if error is None:
                await repository.record_delivery(
                    session=session,
                    message_id=message.id,
                    now=utcnow(),
                    payload=payload,
                    response=answer,
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
                "outbox_delivered",
                message_id=message.id,
                kind=message.kind,
                reference=answer.get("reference"),
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

    def _start_of(self, day: date) -> datetime:
        """When a release day begins on the bureau's calendar."""
        return datetime.combine(day, time.min, ZoneInfo(self.settings.timezone))

    async def backlog(self) -> dict[str, Any]:
        """Undelivered notices, for `/health/ready` details; also refreshes the gauges.

        `pending` counts the notices due (their release day has come), `scheduled` those
        waiting for a release day, `held` those whose check has no bulletin day yet; the
        oldest pending one's age counts from when it became due."""
        async with self.sessionmaker() as session:
            groups = await repository.outbox_backlog(session=session)
        now, today = utcnow(), self.settings.today()
        counts = dict.fromkeys(("pending", "scheduled", "held", "failed"), 0)
        age = 0.0
        for status, release_on, count, oldest in groups:
            if status == repository.PENDING and release_on is not None and release_on > today:
                counts["scheduled"] += count
                continue
            counts[status] += count
            if status == repository.PENDING:
                due = as_utc(oldest)
                if release_on is not None:
                    due = max(due, self._start_of(release_on))
                age = max(age, (now - due).total_seconds())
        self.metrics.pending.set(counts["pending"])
        self.metrics.scheduled.set(counts["scheduled"])
        self.metrics.held.set(counts["held"])
        self.metrics.failed.set(counts["failed"])
        self.metrics.oldest_pending_seconds.set(age)
        details: dict[str, Any] = {
            **counts,
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
            except Exception as error:
                if is_database_unavailable(error):
                    outage_log.report(error, "outbox")
                else:
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
