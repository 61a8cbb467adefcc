"""Webhook delivery in the background: a dispatcher reading the services' feeds into
deliveries, and a sender posting them. Neither runs inside a request.

Dispatcher: for each data service it reads the feed after its stored position (a city-wide
token holding every read scope and `events:read`), then, in one short transaction, locks the
position's row (`SELECT … FOR UPDATE` on PostgreSQL), checks no other replica moved it
meanwhile, inserts one delivery per event and subscription owed it (unique per event and
subscription), and moves the position. So each event is enqueued once, whatever the number
of replicas, and no lock is held while a service is asked.

Sender: claims due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL) by setting a lease, so
a sender that dies lets its claim go when the lease ends; posts each, signed; and records the
attempt: a 2xx is delivered, anything else (a timeout too) is retried after an exponential
backoff with full jitter until the retry period is over, and then the delivery is dead.
Decisions about time use `clock`, which tests replace.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import repository, webhooks
from gateway.auth import load_signing_key
from gateway.feed import DATA_SERVICES, FeedClient
from gateway.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from gateway.routing import EVENT_SOURCES, EVENTS_SCOPE
from gateway.settings import Settings
from kit.auth import TokenMinter
from kit.db import is_database_unavailable, outage_log
from kit.identifiers import new_id

logger = structlog.get_logger("gateway.webhooks")

Clock = Callable[[], datetime]
DISPATCHER_CLIENT = "gateway-webhooks"
DISPATCHER_SCOPES = frozenset({EVENTS_SCOPE, *(scope for _, scope in EVENT_SOURCES.values())})


class WebhookMetrics:
    """Deliveries waiting and dead, attempts that failed, deliveries made."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "gateway_webhook_deliveries_pending",
            "Webhook deliveries waiting to be made or retried",
            registry=registry,
        )
        self.dead = Gauge(
            "gateway_webhook_deliveries_dead",
            "Webhook deliveries given up after the retry period (dead letters)",
            registry=registry,
        )
        self.delivered = Counter(
            "gateway_webhook_delivered", "Webhook deliveries answered with a 2xx", registry=registry
        )
        self.failed_attempts = Counter(
            "gateway_webhook_failed_attempts",
            "Webhook delivery attempts that failed (non-2xx, timeout, unreachable)",
            registry=registry,
        )
        self.enqueued = Counter(
            "gateway_webhook_enqueued", "Webhook deliveries enqueued", registry=registry
        )


def _body(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class WebhookWorker:
    """The dispatcher and the sender of one gateway process."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        feed: FeedClient,
        minter: TokenMinter,
        client: httpx.AsyncClient,
        metrics: WebhookMetrics,
        clock: Clock = webhooks.utcnow,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.feed = feed
        self.minter = minter
        self.client = client
        self.metrics = metrics
        self.clock = clock
        self.last_reasons: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def _token(self, backend: str) -> str:
        return self.minter.mint(
            audience=backend,
            client_id=DISPATCHER_CLIENT,
            client_name="Gateway webhook dispatcher",
            scopes=DISPATCHER_SCOPES,
        )

    async def dispatch_once(self) -> list[int]:
        """Read every service's feed once; the number of events read from each."""
        return list(await asyncio.gather(*(self._dispatch(backend) for backend in DATA_SERVICES)))

    async def _dispatch(self, backend: str) -> int:
        async with self.sessionmaker() as session:
            start = (await repository.cursors(session=session)).get(backend, 0)
        part = await self.feed.part(
            backend,
            self._token(backend),
            after=start,
            types=None,
            limit=self.settings.webhook_batch_size,
        )
        if part.reason is not None and part.gone is None:
            if self.last_reasons.get(backend) != part.reason:
                logger.warning("webhook_feed_unavailable", backend=backend, reason=part.reason)
            self.last_reasons[backend] = part.reason
            return 0
        self.last_reasons[backend] = "ok"
        async with self.sessionmaker() as session:
            now = self.clock()
            position = await repository.locked_cursor(session=session, backend=backend, now=now)
            if position != start:
                # Another replica read the same events and enqueued them first.
                await session.rollback()
                return 0
            if part.gone is not None:
                logger.error(
                    "webhook_events_purged_unread", backend=backend, after=start, detail=part.gone
                )
                await repository.move_cursor(
                    session=session,
                    backend=backend,
                    position=max(start, part.horizon or 0),
                    now=now,
                )
                await session.commit()
                return 0
            subscriptions = await webhooks.active_subscriptions(session=session)
            rows: list[dict[str, Any]] = []
            for event in part.items:
                rows += webhooks.delivery_rows(event, _body(event), subscriptions, now)
            if part.items:
                await repository.add_deliveries(session=session, rows=rows)
                last = max(int(event["sequence"]) for event in part.items)
                await repository.move_cursor(
                    session=session, backend=backend, position=last, now=now
                )
            try:
                await session.commit()
            except IntegrityError:
                # A subscription deleted meanwhile: read the same events again next time.
                await session.rollback()
                return 0
        self.metrics.enqueued.inc(len(rows))
        return len(part.items)

    async def send_due(self) -> int:
        """Make every delivery that is due; the number attempted."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 5)
        async with self.sessionmaker() as session:
            claimed = await repository.claim_due_deliveries(
                session=session,
                now=now,
                lease_until=now + lease,
                limit=self.settings.webhook_batch_size,
                claim=new_id(),
            )
            subscriptions = {}
            for delivery in claimed:
                if delivery.subscription_id not in subscriptions:
                    found = await repository.get_subscription(
                        session=session, subscription_id=delivery.subscription_id
                    )
                    if found is not None:
                        subscriptions[found.id] = found
            await session.commit()
        gate = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def attempt(delivery: WebhookDelivery) -> None:
            subscription = subscriptions.get(delivery.subscription_id)
            if subscription is None or subscription.status != "active":
                return
            async with gate:
                await self._attempt(delivery, subscription)

        await asyncio.gather(*(attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _attempt(self, delivery: WebhookDelivery, subscription: WebhookSubscription) -> None:
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": webhooks.signature(
                subscription,
                msg_id=delivery.event_id,
                timestamp=sent_at,
                body=delivery.body,
                now=self.clock(),
            ),
        }
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            response = await self.client.post(
                subscription.url, content=delivery.body.encode(), headers=headers
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.TimeoutException:
            error = f"timeout: no answer within {self.settings.webhook_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        latency_ms = round((time.perf_counter() - started) * 1000)
        now = self.clock()
        changes = webhooks.outcome(
            delivery,
            status_code=status,
            error=error,
            now=now,
            first=self.settings.webhook_retry_first_seconds,
            cap=self.settings.webhook_retry_cap_seconds,
            period=self.settings.webhook_retry_period_seconds,
        )
        log = WebhookAttempt(
            id=new_id(),
            delivery_id=delivery.id,
            subscription_id=delivery.subscription_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            attempt=delivery.attempts + 1,
            status_code=status,
            latency_ms=latency_ms,
            error=error,
            at=now,
        )
        try:
            async with self.sessionmaker() as session:
                await repository.record_attempt(session=session, attempt=log, changes=changes)
                await session.commit()
        except IntegrityError:
            return  # the subscription was deleted meanwhile
        if error is None:
            self.metrics.delivered.inc()
        else:
            self.metrics.failed_attempts.inc()
            logger.info(
                "webhook_attempt_failed",
                subscription_id=subscription.id,
                event_id=delivery.event_id,
                attempt=log.attempt,
                error=error,
                dead=changes.get("state") == repository.DEAD,
            )

    async def status(self) -> dict[str, Any]:
        """Deliveries by state and each feed's last answer, for `/health/ready`; refreshes
        the gauges."""
        async with self.sessionmaker() as session:
            counts = await repository.delivery_counts(session=session)
        self.metrics.pending.set(counts.get(repository.PENDING, 0))
        self.metrics.dead.set(counts.get(repository.DEAD, 0))
        return {
            "pending": counts.get(repository.PENDING, 0),
            "dead": counts.get(repository.DEAD, 0),
            "feeds": dict(self.last_reasons),
            "worker": "stopped" if self._stopping.is_set() else "running",
        }

    async def run_once(self) -> bool:
        """One cycle: read the feeds, make the due deliveries; whether more may be waiting
        (a feed or the queue gave a full batch)."""
        read = await self.dispatch_once()
        sent = await self.send_due()
        await self.status()
        batch = self.settings.webhook_batch_size
        return max(read, default=0) >= batch or sent >= batch

    async def run(self) -> None:
        """Dispatch and send until stopped: again at once while a cycle finds full batches
        (a backlog), else at the next poll or when woken. A cycle that read a few events has
        caught up, and reading again at once would poll the services' feeds without pause
        while writes trickle in."""
        while not self._stopping.is_set():
            self._wake.clear()
            busy = False
            try:
                busy = await self.run_once()
            except Exception as error:
                if is_database_unavailable(error):
                    outage_log.report(error, "webhooks")
                else:
                    logger.exception("webhook_cycle_failed")
            if busy:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_seconds)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


@asynccontextmanager
async def webhooks_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The feed client of the merged feed, and the webhook worker (when enabled)."""
    settings: Settings = app.state.settings
    minter = TokenMinter(
        load_signing_key(settings.token_private_key_file),
        issuer=settings.token_issuer,
        ttl_seconds=settings.service_token_ttl_seconds,
    )
    timeout = httpx.Timeout(settings.events_timeout_seconds, pool=settings.pool_timeout_seconds)
    sender_timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with (
        httpx.AsyncClient(timeout=timeout, trust_env=False) as feed_client,
        httpx.AsyncClient(
            timeout=sender_timeout, trust_env=False, follow_redirects=False
        ) as sender,
    ):
        feed = FeedClient(
            feed_client, settings.backend_urls(), timeout=settings.events_timeout_seconds
        )
        worker = WebhookWorker(
            settings=settings,
            sessionmaker=app.state.sessionmaker,
            feed=feed,
            minter=minter,
            client=sender,
            metrics=app.state.webhook_metrics,
        )
        app.state.feed = feed
        app.state.webhooks = worker
        app.state.ready_checks["webhooks"] = worker.status
        task = asyncio.create_task(worker.run()) if settings.webhooks_enabled else None
        try:
            yield
        finally:
            worker.stop()
            if task is not None:
                try:
                    await asyncio.wait_for(task, settings.webhook_timeout_seconds + 5)
                except TimeoutError:
                    logger.warning("webhook_worker_stop_timeout")
