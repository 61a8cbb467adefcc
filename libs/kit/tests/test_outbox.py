"""The outbox worker on a real database, delivering to a real HTTP receiver: one delivery per
message, retries with backoff, rejected messages parked, postponed, held and withdrawn ones,
two workers sharing one PostgreSQL database, and the backlog figures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from kit.db import as_utc, create_engine, create_sessionmaker, is_sqlite, new_registry
from kit.identifiers import new_id
from kit.outbox import (
    DELIVERED,
    FAILED,
    HELD,
    PENDING,
    WITHDRAWN,
    Call,
    Delivery,
    OutboxMetrics,
    OutboxRecord,
    OutboxWorker,
    Postpone,
    Send,
    Step,
    Wait,
    Withdraw,
    outbox_lifespan,
)
from kit.testing import provision_database

PREFIX = "sample_outbox"
TODAY = date(2026, 3, 2)
TOMORROW = TODAY + timedelta(days=1)
BACKOFF = 0.2
sample_registry = new_registry()


class SampleBase(SQLModel, registry=sample_registry):
    """Base of the sample table."""


class Command(SampleBase, OutboxRecord, table=True):
    """A command to the sample receiver."""

    __tablename__ = "command"


@dataclass
class Received:
    path: str
    body: Any
    headers: dict[str, str]
    at: float


class Receiver:
    """An HTTP server in a thread of the test process answering each POST with the next
    scripted status (201 once the script is used up), after `delay` seconds."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.delay = 0.0
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, body, dict(self.headers), time.monotonic())
                    )
                    status = receiver.script.pop(0) if receiver.script else 201
                    delay = receiver.delay
                if delay:
                    threading.Event().wait(delay)
                answer = json.dumps({"reference": body.get("reference")}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `received` instead."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def request_ids(self) -> list[str]:
        with self._lock:
            return [r.headers["X-Request-ID"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join(timeout=10)


@dataclass
class SampleCourier:
    """Sends each command to `/commands/<kind>`; `plans` says what else to do with one."""

    day: date = TODAY
    plans: dict[str, Callable[[date], Step]] = field(default_factory=dict)
    key_missing: bool = False
    calls: int = 0

    def today(self) -> date:
        return self.day

    def signer(self) -> Callable[[], Mapping[str, str]] | None:
        if self.key_missing:
            return None

        def headers() -> Mapping[str, str]:
            self.calls += 1
            return {"Authorization": f"Bearer call-{self.calls}"}

        return headers

    def problems(self) -> dict[str, str]:
        return {"signing_key": "missing"} if self.key_missing else {}

    async def step(
        self, *, session: AsyncSession, message: Command, today: date, now: datetime
    ) -> Step:
        plan = self.plans.get(message.id)
        return plan(today) if plan else Send({**message.payload, "sent_on": today.isoformat()})

    def request(self, message: Command, payload: dict[str, Any]) -> Call:
        return Call(f"/commands/{message.kind}", payload, rejected={422})


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with provision_database("outbox", Path(tmp_path_factory.mktemp("outbox"))) as url:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(sample_registry.metadata.create_all)
        await engine.dispose()
        yield url


@dataclass
class Outbox:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    url: str


@pytest.fixture
async def outbox(database: str) -> AsyncIterator[Outbox]:
    engine = create_engine(database)
    try:
        yield Outbox(engine, create_sessionmaker(engine), database)
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(Command))
        await engine.dispose()


def _delivery(receiver: Receiver, **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "receiver_url": receiver.url,
        "receiver_timeout_seconds": 5.0,
        "poll_seconds": 0.05,
        "batch_size": 50,
        "backoff_base_seconds": BACKOFF,
        "backoff_max_seconds": 1.0,
        "timezone": "Asia/Shanghai",
    }
    return Delivery(**{**values, **changes})


class Workers:
    """Makes workers delivering to the test's receiver, each with its own metrics registry,
    and closes them after the test."""

    def __init__(self, outbox: Outbox, receiver: Receiver) -> None:
        self.outbox = outbox
        self.receiver = receiver
        self.made: list[tuple[OutboxWorker[Command], CollectorRegistry]] = []

    def new(
        self,
        courier: SampleCourier,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        **delivery: Any,
    ) -> OutboxWorker[Command]:
        registry = CollectorRegistry()
        worker = OutboxWorker(
            model=Command,
            courier=courier,
            delivery=_delivery(self.receiver, **delivery),
            sessionmaker=sessionmaker or self.outbox.sessionmaker,
            metrics=OutboxMetrics(registry, prefix=PREFIX),
        )
        self.made.append((worker, registry))
        return worker

    def sample(self, worker: OutboxWorker[Command], name: str) -> float | None:
        """The value of the metric `<prefix>_<name>` of a worker this made."""
        registry = next(r for w, r in self.made if w is worker)
        return registry.get_sample_value(f"{PREFIX}_{name}")


@pytest.fixture
async def workers(outbox: Outbox, receiver: Receiver) -> AsyncIterator[Workers]:
    made = Workers(outbox, receiver)
    yield made
    for worker, _registry in made.made:
        await worker.aclose()


async def _add(
    outbox: Outbox,
    *,
    kind: str = "ping",
    status: str = PENDING,
    release_on: date | None = None,
    age: timedelta = timedelta(0),
    request_id: str | None = None,
) -> str:
    now = datetime.now(UTC)
    message = Command(
        id=new_id(),
        kind=kind,
        payload={"reference": f"r-{kind}"},
        status=status,
        next_attempt_at=now - age,
        created_at=now - age,
        release_on=release_on,
        request_id=request_id,
    )
    async with outbox.sessionmaker() as session, session.begin():
        session.add(message)
    return message.id


async def _row(outbox: Outbox, message_id: str) -> Command:
    async with outbox.sessionmaker() as session:
        row = await session.get(Command, message_id)
        assert row is not None
        return row


async def _eventually(condition: Callable[[], Any], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_a_message_is_delivered_once_with_its_credentials_and_request_id(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox, request_id="req-0001")
    worker = workers.new(SampleCourier())

    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0

    (call,) = receiver.received
    assert call.path == "/commands/ping"
    assert call.body == {"reference": "r-ping", "sent_on": TODAY.isoformat()}
    assert call.headers["Authorization"] == "Bearer call-1"
    assert call.headers["X-Request-ID"] == "req-0001"
    row = await _row(outbox, message_id)
    assert (row.status, row.attempts, row.last_error) == (DELIVERED, 1, None)
    assert row.payload == call.body  # what was sent, as sent
    assert row.response == {"reference": "r-ping"}
    assert row.delivered_at is not None
    assert workers.sample(worker, "delivered_total") == 1


async def test_a_message_without_a_request_id_carries_its_own_id(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox)
    assert await workers.new(SampleCourier()).deliver_due() == 1
    assert receiver.request_ids() == [message_id]


async def test_a_server_error_is_retried_after_the_backoff_by_the_running_worker(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    receiver.script = [500]
    worker = workers.new(SampleCourier())
    app = FastAPI()
    app.state.ready_checks = {}
    async with outbox_lifespan(lambda _app: worker)(app):
        assert app.state.outbox is worker
        message_id = await _add(outbox)
        worker.wake()

        async def delivered() -> bool:
            return (await _row(outbox, message_id)).status == DELIVERED

        await _eventually(delivered)
        details = await app.state.ready_checks["outbox"]()
        assert details["worker"] == "running"
        assert details["pending"] == 0
    assert (await worker.backlog())["worker"] == "stopped"

    first, second = receiver.received
    assert first.body == second.body
    assert second.at - first.at >= BACKOFF
    assert first.headers["Authorization"] != second.headers["Authorization"]
    row = await _row(outbox, message_id)
    assert row.attempts == 2
    assert row.last_error is None
    assert workers.sample(worker, "attempt_errors_total") == 1


async def test_a_failed_attempt_waits_longer_each_time(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    receiver.script = [503, 503]
    message_id = await _add(outbox)
    worker = workers.new(SampleCourier())

    before = datetime.now(UTC)
    assert await worker.deliver_due() == 0
    row = await _row(outbox, message_id)
    assert (row.status, row.attempts) == (PENDING, 1)
    assert row.last_error is not None
    assert row.last_error.startswith("HTTP 503")
    first_wait = (as_utc(row.next_attempt_at) - before).total_seconds()
    assert BACKOFF <= first_wait <= BACKOFF * 1.1 + 0.5

    assert await worker.deliver_due() == 0
    assert len(receiver.received) == 1  # not due again before its backoff

    await asyncio.sleep(first_wait)
    before = datetime.now(UTC)
    assert await worker.deliver_due() == 0
    row = await _row(outbox, message_id)
    assert row.attempts == 2
    second_wait = (as_utc(row.next_attempt_at) - before).total_seconds()
    assert 2 * BACKOFF <= second_wait <= 2 * BACKOFF * 1.1 + 0.5


async def test_a_rejected_message_is_parked_as_failed(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    receiver.script = [422]
    message_id = await _add(outbox)
    worker = workers.new(SampleCourier())

    assert await worker.deliver_due() == 0
    await asyncio.sleep(BACKOFF * 1.2)
    assert await worker.deliver_due() == 0

    assert len(receiver.received) == 1
    row = await _row(outbox, message_id)
    assert (row.status, row.attempts) == (FAILED, 1)
    assert row.last_error is not None
    assert row.last_error.startswith("HTTP 422")
    assert (await worker.backlog())["failed"] == 1


async def test_a_postponed_message_goes_out_on_its_release_day(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox)
    courier = SampleCourier()
    courier.plans[message_id] = lambda today: (
        Postpone(TOMORROW) if today < TOMORROW else Send({"on": today.isoformat()})
    )
    worker = workers.new(courier)

    assert await worker.deliver_due() == 1
    row = await _row(outbox, message_id)
    assert (row.status, row.release_on, row.attempts) == (PENDING, TOMORROW, 0)
    assert await worker.deliver_due() == 0
    backlog = await worker.backlog()
    assert (backlog["pending"], backlog["scheduled"]) == (0, 1)
    assert receiver.received == []

    courier.day = TOMORROW
    assert await worker.deliver_due() == 1
    (call,) = receiver.received
    assert call.body == {"on": TOMORROW.isoformat()}
    assert (await _row(outbox, message_id)).status == DELIVERED


async def test_a_message_without_a_release_day_is_held(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox)
    courier = SampleCourier()
    courier.plans[message_id] = lambda _today: Postpone(None)
    worker = workers.new(courier)

    assert await worker.deliver_due() == 1
    assert (await _row(outbox, message_id)).status == HELD
    courier.plans.clear()
    assert await worker.deliver_due() == 0  # held: never claimed until its day is set
    assert receiver.received == []
    assert (await worker.backlog())["held"] == 1


async def test_a_waiting_message_is_looked_at_again_at_its_time(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox, release_on=TODAY)
    until = datetime.now(UTC) + timedelta(seconds=0.3)
    courier = SampleCourier()
    courier.plans[message_id] = lambda _today: Wait(until)
    worker = workers.new(courier)

    assert await worker.deliver_due() == 0
    row = await _row(outbox, message_id)
    assert (row.status, row.release_on) == (PENDING, TODAY)
    assert as_utc(row.next_attempt_at) == until
    courier.plans.clear()
    assert await worker.deliver_due() == 0
    await asyncio.sleep(0.35)
    assert await worker.deliver_due() == 1
    assert len(receiver.received) == 1


async def test_a_message_no_longer_owed_is_withdrawn_unsent(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox)
    courier = SampleCourier()
    courier.plans[message_id] = lambda _today: Withdraw("the change was taken back")
    worker = workers.new(courier)

    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0
    assert receiver.received == []
    row = await _row(outbox, message_id)
    assert (row.status, row.response) == (WITHDRAWN, {"withdrawn": "the change was taken back"})
    assert workers.sample(worker, "withdrawn_total") == 1
    backlog = await worker.backlog()
    assert (backlog["pending"], backlog["failed"]) == (0, 0)


async def test_nothing_is_claimed_while_the_courier_cannot_sign(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    message_id = await _add(outbox)
    courier = SampleCourier(key_missing=True)
    worker = workers.new(courier)

    assert await worker.deliver_due() == 0
    row = await _row(outbox, message_id)
    assert (row.status, row.attempts) == (PENDING, 0)
    assert as_utc(row.next_attempt_at) <= datetime.now(UTC)  # not leased
    assert (await worker.backlog())["signing_key"] == "missing"

    courier.key_missing = False
    assert await worker.deliver_due() == 1
    assert receiver.request_ids() == [message_id]


async def test_two_workers_on_one_database_deliver_each_message_once(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    if is_sqlite(outbox.url):
        pytest.skip("SKIP LOCKED and concurrent writers need PostgreSQL")
    ids = {await _add(outbox, kind=f"k{n}") for n in range(100)}
    receiver.delay = 0.002
    other_engine = create_engine(outbox.url)
    try:
        pair = [
            workers.new(SampleCourier(), batch_size=5),
            workers.new(
                SampleCourier(), sessionmaker=create_sessionmaker(other_engine), batch_size=5
            ),
        ]

        async def drain(worker: OutboxWorker[Command]) -> int:
            total = 0
            while settled := await worker.deliver_due():
                total += settled
            return total

        counts = await asyncio.gather(*(drain(worker) for worker in pair))
    finally:
        await other_engine.dispose()

    delivered = receiver.request_ids()
    assert sorted(delivered) == sorted(ids)
    assert sum(counts) == 100
    assert all(count > 0 for count in counts)
    async with outbox.sessionmaker() as session:
        statuses = set((await session.execute(select(col(Command.status)))).scalars())
    assert statuses == {DELIVERED}


async def test_the_backlog_counts_each_undelivered_state_and_the_oldest_due(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    await _add(outbox, age=timedelta(seconds=90))
    await _add(outbox, age=timedelta(seconds=10))
    await _add(outbox, release_on=TOMORROW, age=timedelta(days=3))
    await _add(outbox, status=HELD, age=timedelta(days=3))
    await _add(outbox, status=FAILED)
    await _add(outbox, status=DELIVERED, age=timedelta(days=3))
    await _add(outbox, status=WITHDRAWN, age=timedelta(days=3))
    worker = workers.new(SampleCourier(), enabled=False)

    backlog = await worker.backlog()

    assert {k: backlog[k] for k in ("pending", "scheduled", "held", "failed")} == {
        "pending": 2,
        "scheduled": 1,
        "held": 1,
        "failed": 1,
    }
    assert 90 <= backlog["oldest_pending_seconds"] < 120
    assert backlog["worker"] == "disabled"
    gauges = {name: workers.sample(worker, name) for name in ("pending", "scheduled", "held")}
    assert gauges == {"pending": 2, "scheduled": 1, "held": 1}
    assert workers.sample(worker, "failed") == 1
    oldest = workers.sample(worker, "oldest_pending_seconds")
    assert oldest is not None
    assert 90 <= oldest < 120


async def test_a_pending_message_counts_its_age_from_the_start_of_its_release_day(
    outbox: Outbox, receiver: Receiver, workers: Workers
) -> None:
    courier = SampleCourier(day=datetime.now(UTC).date())
    await _add(outbox, release_on=courier.day, age=timedelta(days=30))
    backlog = await workers.new(courier, timezone="UTC").backlog()
    day_start = datetime.combine(courier.day, datetime.min.time(), UTC)
    expected = (datetime.now(UTC) - day_start).total_seconds()
    assert backlog["pending"] == 1
    assert expected - 5 <= backlog["oldest_pending_seconds"] <= expected + 1
