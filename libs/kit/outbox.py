"""Commands delivered from a transactional outbox to one HTTP receiver.

`kit.events` is a feed: a change's event is numbered and any reader pulls it, keeping its own
place. This outbox pushes instead: a service writes a command for one receiver (another
service) in the transaction that causes it, and a background worker POSTs it there, each
message keeping its own delivery state:

    change + message       one transaction: the change and its row (status `pending`, or
          │                `held` while its release day is not known)
          ▼
    claim_due()            pending rows whose time and release day have come, leased for a
          │                while (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so workers share them
          ▼
    courier.step()         the domain's answer just before sending: Send, Postpone, Wait or
          │                Withdraw (no longer owed)
          ▼
    POST to the receiver   2xx: `delivered`; a status the courier calls rejected: `failed`
                           (parked); anything else: retried with exponential backoff

The domain plugs in through a `Courier` (what each kind of message sends, when it is due,
which answers reject it, the credentials of a call) and a table whose model extends
`OutboxRecord`. Receivers are expected to be idempotent: a message is sent again after a crash
between the call and its bookkeeping.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import JSON, DateTime, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel, col

from kit.db import as_utc, is_database_unavailable, outage_log

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# Waiting for a release day not set yet; no longer owed (never sent).
HELD, WITHDRAWN = "held", "withdrawn"
logger = structlog.get_logger("kit.outbox")


class OutboxRecord(SQLModel):
    """The columns every outbox table has; a service's table model extends it.

    `release_on` is the day from which a message may be sent (null: at once); `request_id`
    is the ID of the request that wrote it, which the call carries on."""

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_type=JSON)
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, max_length=1000)
    response: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    release_on: date | None = None
    request_id: str | None = Field(default=None, max_length=128)


Message = TypeVar("Message", bound=OutboxRecord)
Message_contra = TypeVar("Message_contra", bound=OutboxRecord, contravariant=True)


@dataclass(frozen=True)
class Send:
    """Send the message with this body."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class Postpone:
    """Not before `release_on`; held while there is no such day."""

    release_on: date | None


@dataclass(frozen=True)
class Wait:
    """Look again at `until`, the release day unchanged."""

    until: datetime


@dataclass(frozen=True)
class Withdraw:
    """The message is no longer owed, for `reason`."""

    reason: str


Step = Send | Postpone | Wait | Withdraw


@dataclass(frozen=True)
class Call:
    """The POST a message makes: its path, its JSON body, and the answers that reject it
    (retrying cannot help) rather than fail for now."""

    path: str
    body: Any
    rejected: Collection[int]


class Courier(Protocol[Message_contra]):
    """What a service tells its outbox worker about its messages."""

    def today(self) -> date:
        """The service's calendar day, by which release days are judged."""
        ...

    def signer(self) -> Callable[[], Mapping[str, str]] | None:
        """What makes each call's credential headers, or None while there is none."""
        ...

    def problems(self) -> dict[str, str]:
        """What keeps the courier from sending, for `/health/ready` details."""
        ...

    async def step(
        self, *, session: AsyncSession, message: Message_contra, today: date, now: datetime
    ) -> Step:
        """What to do now with a message that is due."""
        ...

    def request(self, message: Message_contra, payload: dict[str, Any]) -> Call:
        """The call that sends `message` with `payload`."""
        ...


@dataclass(frozen=True)
class Delivery:
    """Where and how fast a worker delivers."""

    receiver_url: str
    receiver_timeout_seconds: float
    poll_seconds: float
    batch_size: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    timezone: str
    enabled: bool = True

    def backoff(self, attempts: int) -> timedelta:
        """The delay after the attempt numbered `attempts` + 1 failed, with jitter."""
        delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** min(attempts, 30))
        return timedelta(seconds=delay * random.uniform(1.0, 1.1))

    def start_of(self, day: date) -> datetime:
        """When a release day begins on the service's calendar."""
        return datetime.combine(day, time.min, ZoneInfo(self.timezone))


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def claim_due(
    *,
    session: AsyncSession,
    model: type[Message],
    now: datetime,
    today: date,
    lease_until: datetime,
    limit: int,
) -> list[Message]:
    """Pending messages whose time and release day have come, leased so that another worker
    skips them."""
    query = (
        select(model)
        .where(
            col(model.status) == PENDING,
            col(model.next_attempt_at) <= now,
            or_(col(model.release_on).is_(None), col(model.release_on) <= today),
        )
        .order_by(col(model.next_attempt_at), col(model.created_at))
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    messages = list((await session.execute(query)).scalars())
    if messages:
        await session.execute(
            update(model)
            .where(col(model.id).in_([m.id for m in messages]))
            .values(next_attempt_at=lease_until)
        )
    return messages


async def record_delivery(
    *,
    session: AsyncSession,
    model: type[OutboxRecord],
    message_id: str,
    now: datetime,
    payload: dict[str, Any],
    response: dict[str, Any],
) -> None:
    """Mark a message delivered with what was sent and the receiver's answer."""
    await session.execute(
        update(model)
        .where(col(model.id) == message_id)
        .values(
            status=DELIVERED,
            delivered_at=now,
            attempts=col(model.attempts) + 1,
            payload=payload,
            response=response,
            last_error=None,
        )
    )


async def postpone(
    *,
    session: AsyncSession,
    model: type[OutboxRecord],
    message_id: str,
    status: str,
    release_on: date | None,
    next_attempt_at: datetime,
) -> None:
    """Put a message off until its release day (or hold it until it has one)."""
    await session.execute(
        update(model)
        .where(col(model.id) == message_id)
        .values(status=status, release_on=release_on, next_attempt_at=next_attempt_at)
    )


async def withdraw(
    *, session: AsyncSession, model: type[OutboxRecord], message_id: str, reason: str
) -> None:
    """Give up a message that is no longer owed, saying why."""
    await session.execute(
        update(model)
        .where(col(model.id) == message_id)
        .values(status=WITHDRAWN, response={"withdrawn": reason}, last_error=None)
    )


async def record_failure(
    *,
    session: AsyncSession,
    model: type[OutboxRecord],
    message_id: str,
    error: str,
    next_attempt_at: datetime,
    give_up: bool,
) -> None:
    """Count a failed attempt: retry later, or park the message when it can never succeed."""
    await session.execute(
        update(model)
        .where(col(model.id) == message_id)
        .values(
            status=FAILED if give_up else PENDING,
            attempts=col(model.attempts) + 1,
            next_attempt_at=next_attempt_at,
            last_error=error[:1000],
        )
    )


async def backlog_groups(
    *, session: AsyncSession, model: type[OutboxRecord]
) -> list[tuple[str, date | None, int, datetime]]:
    """Undelivered messages by status and release day: how many, and the oldest's creation."""
    query = (
        select(
            col(model.status),
            col(model.release_on),
            func.count(),
            func.min(col(model.created_at)),
        )
        .where(col(model.status).in_([PENDING, HELD, FAILED]))
        .group_by(col(model.status), col(model.release_on))
    )
    return [
        (status, release_on, int(count), oldest)
        for status, release_on, count, oldest in await session.execute(query)
    ]


class OutboxMetrics:
    """An outbox's gauges and counters on the app's registry, named `<prefix>_…`."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str) -> None:
        self.pending = Gauge(
            f"{prefix}_pending", "Messages waiting for delivery", registry=registry
        )
        self.failed = Gauge(f"{prefix}_failed", "Messages the receiver rejected", registry=registry)
        self.scheduled = Gauge(
            f"{prefix}_scheduled", "Messages waiting for their release day", registry=registry
        )
        self.held = Gauge(f"{prefix}_held", "Messages with no release day yet", registry=registry)
        self.oldest_pending_seconds = Gauge(
            f"{prefix}_oldest_pending_seconds",
            "Age of the oldest message waiting for delivery",
            registry=registry,
        )
        self.delivered = Counter(f"{prefix}_delivered", "Messages delivered", registry=registry)
        self.attempt_errors = Counter(
            f"{prefix}_attempt_errors", "Delivery attempts that failed", registry=registry
        )
        self.withdrawn = Counter(
            f"{prefix}_withdrawn",
            "Messages no longer owed when their time came",
            registry=registry,
        )


class OutboxWorker(Generic[Message]):
    """Sends due messages, records each outcome, and keeps the backlog figures current.

    It holds one HTTP client to the receiver from construction until `aclose`."""

    def __init__(
        self,
        *,
        model: type[Message],
        courier: Courier[Message],
        delivery: Delivery,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: OutboxMetrics,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.courier = courier
        self.delivery = delivery
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.client = httpx.AsyncClient(
            base_url=delivery.receiver_url,
            timeout=delivery.receiver_timeout_seconds,
            transport=transport,
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def aclose(self) -> None:
        await self.client.aclose()

    def wake(self) -> None:
        """Look for due messages now rather than at the next poll."""
        self._wake.set()

    async def deliver_due(self) -> int:
        """Send every message that is due; the number settled (delivered, put off or
        withdrawn)."""
        sign = self.courier.signer()
        if sign is None:
            return 0
        now = _utcnow()
        lease = timedelta(seconds=self.delivery.receiver_timeout_seconds * 2 + 5)
        async with self.sessionmaker() as session:
            messages = await claim_due(
                session=session,
                model=self.model,
                now=now,
                today=self.courier.today(),
                lease_until=now + lease,
                limit=self.delivery.batch_size,
            )
            await session.commit()
        settled = 0
        for message in messages:
            if self._stopping.is_set():
                break
            settled += await self._settle(message, sign)
        return settled

    async def _settle(self, message: Message, sign: Callable[[], Mapping[str, str]]) -> int:
        """Send the message if it is due now, else put it off or withdraw it as the courier
        says."""
        async with self.sessionmaker() as session:
            step = await self.courier.step(
                session=session, message=message, today=self.courier.today(), now=_utcnow()
            )
        if isinstance(step, Send):
            return await self._deliver(message, step.payload, sign)
        async with self.sessionmaker() as session:
            if isinstance(step, Postpone):
                await postpone(
                    session=session,
                    model=self.model,
                    message_id=message.id,
                    status=PENDING if step.release_on else HELD,
                    release_on=step.release_on,
                    next_attempt_at=_utcnow(),
                )
            elif isinstance(step, Wait):
                await postpone(
                    session=session,
                    model=self.model,
                    message_id=message.id,
                    status=PENDING,
                    release_on=message.release_on,
                    next_attempt_at=step.until,
                )
            else:
                await withdraw(
                    session=session, model=self.model, message_id=message.id, reason=step.reason
                )
                self.metrics.withdrawn.inc()
                logger.info("outbox_withdrawn", message_id=message.id, reason=step.reason)
            await session.commit()
        return 0 if isinstance(step, Wait) else 1

    async def _deliver(
        self, message: Message, payload: dict[str, Any], sign: Callable[[], Mapping[str, str]]
    ) -> int:
        error: str | None = None
        give_up = False
        answer: dict[str, Any] = {}
        call = self.courier.request(message, payload)
        headers = {**sign(), "X-Request-ID": message.request_id or message.id}
        try:
            response = await self.client.post(call.path, json=call.body, headers=headers)
            if response.status_code in (200, 201):
                answer = response.json()
            else:
                give_up = response.status_code in call.rejected
                error = f"HTTP {response.status_code}: {response.text[:300]}"
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        async with self.sessionmaker() as session:
            if error is None:
                await record_delivery(
                    session=session,
                    model=self.model,
                    message_id=message.id,
                    now=_utcnow(),
                    payload=payload,
                    response=answer,
                )
            else:
                await record_failure(
                    session=session,
                    model=self.model,
                    message_id=message.id,
                    error=error,
                    next_attempt_at=_utcnow() + self.delivery.backoff(message.attempts),
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

    async def backlog(self) -> dict[str, Any]:
        """Undelivered messages, for `/health/ready` details; also refreshes the gauges.

        `pending` counts the messages due (their release day has come), `scheduled` those
        waiting for a release day, `held` those with no release day yet; the oldest pending
        one's age counts from when it became due."""
        async with self.sessionmaker() as session:
            groups = await backlog_groups(session=session, model=self.model)
        now, today = _utcnow(), self.courier.today()
        counts = dict.fromkeys(("pending", "scheduled", "held", "failed"), 0)
        age = 0.0
        for status, release_on, count, oldest in groups:
            if status == PENDING and release_on is not None and release_on > today:
                counts["scheduled"] += count
                continue
            counts[status] += count
            if status == PENDING:
                due = as_utc(oldest)
                if release_on is not None:
                    due = max(due, self.delivery.start_of(release_on))
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
        if not self.delivery.enabled:
            details["worker"] = "disabled"
        details.update(self.courier.problems())
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
                await asyncio.wait_for(self._wake.wait(), self.delivery.poll_seconds)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


def outbox_lifespan(
    build: Callable[[FastAPI], OutboxWorker[Any]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan hook running the worker `build` makes for the app, when its delivery is
    enabled; the worker is `app.state.outbox`, its backlog the ready check `outbox`."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        worker = build(app)
        try:
            app.state.outbox = worker
            app.state.ready_checks["outbox"] = worker.backlog
            task = asyncio.create_task(worker.run()) if worker.delivery.enabled else None
            try:
                yield
            finally:
                worker.stop()
                if task is not None:
                    try:
                        await asyncio.wait_for(task, worker.delivery.receiver_timeout_seconds + 5)
                    except TimeoutError:
                        logger.warning("outbox_worker_stop_timeout")
        finally:
            await worker.aclose()

    return hook
