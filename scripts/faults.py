"""`make faults`: the whole suite as local processes on a PostgreSQL cluster and a Redis of
its own, each fault injected in turn and what the suite promises checked through the gateway.

The stores belong to this run (`scripts.stores`: free ports, temporary folders), so they can
be stopped and frozen at will; they are torn down at the end, whatever happened. Every call
has a timeout and every loop a bound in count and in time. The run prints a table
`fault | tries | held | lost` and the time of each phase, and exits 1 when anything is lost.

The faults, in order:
- an immediate retry after a 201 with the same Idempotency-Key (it replays);
- kill -9 of brand_registry during a 50,000-row import (nothing stored, a clean 5xx, then one
  retry with the same key stores every row once);
- kill -9 of brand_registry while 100 failing spot-checks are posted, restarted after 10 s
  (every listing flagged exactly once);
- a half-open breaker's probe abandoned by its client (the backend is reached again);
- a frozen data service while the standings are computed (an answer within the deadline,
  naming the missing source);
- Redis frozen, then stopped (no added latency beyond the timeout, limits per replica,
  revocations made up for, one shared budget again afterwards);
- PostgreSQL stopped for 5 s under load (only 503s with Retry-After, logged once without a
  traceback, every write retried with its key stored once, recovery without restarts).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from kit.identifiers import credit_code_check_char
from scripts.local_suite import SERVICES, LocalSuite
from scripts.processes import ServiceProcess, free_port
from scripts.stores import (
    PrivatePostgres,
    PrivateRedis,
    postgres_bin,
    private_postgres,
    private_redis,
    redis_bin,
)

ROOT = Path(__file__).resolve().parents[1]
IMPORT_ROWS = 50_000
FLAG_CHECKS = 100
REPLAYS = 20
REDIS_TIMEOUT = 0.05
BREAKER_RESET = 2.0
LEASE_SECONDS = 2
STANDINGS_YEAR = 2021
STANDINGS_DEADLINE = 5.0
ALL_SCOPES = [
    "brands:read",
    "brands:write",
    "certificates:read",
    "certificates:write",
    "spot-checks:read",
    "spot-checks:write",
    "assessments:read",
    "assessments:write",
]


@dataclass
class Outcome:
    """One row of the table: how many tries, how many held as promised, how many did not."""

    fault: str
    tries: int
    held: int
    note: str = ""

    @property
    def lost(self) -> int:
        return self.tries - self.held


def credit_code(number: int) -> str:
    """A valid unified social credit code, distinct per `number`."""
    first17 = f"91320303{number:09d}"
    return first17 + credit_code_check_char(first17)


def brands_csv(rows: Iterator[dict[str, str]]) -> bytes:
    columns = [
        "product_name",
        "brand_name",
        "enterprise_credit_code",
        "enterprise_name",
        "county_code",
        "tier",
        "sector",
        "award_kind",
        "awarded_on",
        "batch_code",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def brand_row(number: int, *, tier: str, awarded_on: str, batch: str) -> dict[str, str]:
    return {
        "product_name": f"產品{number}",
        "brand_name": "淮海",
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": f"徐州第{number}廠",
        "county_code": "320323",
        "tier": tier,
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": awarded_on,
        "batch_code": batch,
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_9(process: ServiceProcess) -> None:
    assert process.process is not None
    process.process.send_signal(signal.SIGKILL)
    process.process.wait(timeout=10)
    process.stop()


def log_tail(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


def is_problem_503(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers.get("content-type") == "application/problem+json"
        and "retry-after" in response.headers
    )


class FaultSuite(LocalSuite):
    """The local suite, paced for faults: short idempotency leases, a quick outbox and
    breaker, a read timeout that lets a 50,000-row import finish."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for service in SERVICES:
            env[f"{service.upper()}_IDEMPOTENCY_LEASE_SECONDS"] = str(LEASE_SECONDS)
        env.update(
            INSPECTION_OUTBOX_POLL_SECONDS="0.5",
            INSPECTION_OUTBOX_BACKOFF_BASE_SECONDS="0.25",
            INSPECTION_OUTBOX_BACKOFF_MAX_SECONDS="2",
            INSPECTION_BRAND_REGISTRY_TIMEOUT_SECONDS="2",
            ASSESSMENT_STATS_DEADLINE_SECONDS=str(STANDINGS_DEADLINE),
            GATEWAY_BREAKER_RESET_SECONDS=str(BREAKER_RESET),
            GATEWAY_READ_TIMEOUT_SECONDS="120",
            GATEWAY_REDIS_TIMEOUT_SECONDS=str(REDIS_TIMEOUT),
            GATEWAY_REDIS_RETRY_SECONDS="0.5",
        )
        return env


@dataclass
class Run:
    """The running suite, the second gateway replica and the clients of the run."""

    suite: FaultSuite
    postgres: PrivatePostgres
    redis: PrivateRedis
    replica: ServiceProcess
    writer_key: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.suite.gateway_url

    def process(self, name: str) -> ServiceProcess:
        return self.suite.processes[name]

    def client(
        self, key: str | None = None, *, base: str | None = None, timeout: float = 30
    ) -> httpx.AsyncClient:
        """A client of the first gateway (or `base`), with the run's writer key by default."""
        headers = {"X-API-Key": key if key is not None else self.writer_key}
        return httpx.AsyncClient(base_url=base or self.gateway, headers=headers, timeout=timeout)

    def admin(self) -> httpx.AsyncClient:
        return self.client(self.suite.admin_key)

    def record(self, fault: str, tries: int, held: int, note: str = "") -> None:
        self.outcomes.append(Outcome(fault, tries, held, note))
        mark = "held" if held == tries else f"LOST {tries - held}"
        print(f"   {fault}: {held}/{tries} {mark}{'  (' + note + ')' if note else ''}", flush=True)

    async def new_client(self, name: str, scopes: list[str], limit: str) -> dict[str, Any]:
        async with self.admin() as admin:
            response = await admin.post(
                "/api/v1/admin/clients",
                json={"name": name, "scopes": scopes, "rate_limit": limit},
            )
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    async def count_exported(self, batch: str) -> int:
        """Listings of an import batch, counted in the export through the gateway."""
        async with self.client(timeout=120) as client:
            lines = 0
            params = {"batch_code": batch}
            async with client.stream("GET", "/api/v1/brands/export", params=params) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    lines += chunk.count(b"\n")
        return max(lines - 1, 0)

    async def restart(self, name: str) -> None:
        await asyncio.to_thread(self.process(name).start)


async def phase(run: Run, name: str, case: Callable[[Run], Awaitable[None]]) -> None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    try:
        await case(run)
    except Exception as error:  # a broken case is a lost case, and the others still run
        run.record(name, 1, 0, f"the case broke off: {type(error).__name__}: {error}"[:300])
    run.phases.append((name, time.monotonic() - started))


# The cases --------------------------------------------------------------------------------


async def idempotent_replay(run: Run) -> None:
    """POST then at once the same POST with the same key: the second replays the first."""
    held = 0
    notes: Counter[str] = Counter()
    awarded = (date.today() - timedelta(days=100)).isoformat()
    async with run.client() as client:
        for number in range(REPLAYS):
            body = brand_row(
                100_000 + number, tier="city_famous", awarded_on=awarded, batch="FAULT-REPLAY"
            )
            key = {"Idempotency-Key": f"replay-{uuid.uuid4().hex}"}
            first = await client.post("/api/v1/brands", json=body, headers=key)
            again = await client.post("/api/v1/brands", json=body, headers=key)
            if (
                first.status_code == 201
                and again.status_code == 201
                and again.headers.get("idempotent-replayed") == "true"
                and again.json().get("id") == first.json().get("id")
            ):
                held += 1
            else:
                notes[f"{first.status_code}→{again.status_code}"] += 1
    stored = await run.count_exported("FAULT-REPLAY")
    note = ", ".join(f"{k}×{v}" for k, v in notes.items())
    if stored != REPLAYS:
        note = f"{note} {stored} stored".strip()
    run.record(
        "an immediate retry after a 201 with the same Idempotency-Key replays",
        REPLAYS,
        held if stored == REPLAYS else min(held, REPLAYS - abs(stored - REPLAYS)),
        note,
    )


async def killed_import(run: Run) -> None:
    """kill -9 of brand_registry while it imports 50,000 rows; then the same request again."""
    body = brands_csv(
        brand_row(n, tier="city_famous", awarded_on="2018-03-01", batch="FAULT-IMPORT")
        for n in range(IMPORT_ROWS)
    )
    key = f"import-{uuid.uuid4().hex}"
    headers = {"Content-Type": "text/csv", "Idempotency-Key": key}
    brands = run.process("brand_registry")
    assert brands.process is not None
    pid = brands.process.pid
    async with run.client(timeout=180) as client:
        request = asyncio.create_task(
            client.post("/api/v1/brands/import", content=body, headers=headers)
        )
        # Mid-import: once the service has spent 1.5 s of CPU on it (wall time varies with load).
        before = cpu_seconds(pid)
        for _ in range(600):
            if request.done() or cpu_seconds(pid) - before >= 1.5:
                break
            await asyncio.sleep(0.05)
        killed_mid_import = not request.done()
        await asyncio.to_thread(kill_9, brands)
        answer = await request
    clean = answer.status_code in (502, 503, 504) and answer.headers.get("content-type") == (
        "application/problem+json"
    )
    run.record(
        "kill -9 brand_registry mid-import: the client gets a clean 5xx problem",
        1,
        int(clean and killed_mid_import),
        f"HTTP {answer.status_code}" + ("" if killed_mid_import else ", finished before the kill"),
    )
    await run.restart("brand_registry")
    left = await run.count_exported("FAULT-IMPORT")
    run.record(
        "kill -9 brand_registry mid-import: rows stored by the dead import (none may be)",
        IMPORT_ROWS,
        IMPORT_ROWS - min(left, IMPORT_ROWS),
        f"{left} stored",
    )
    async with run.client(timeout=180) as client:
        statuses: list[int] = []
        retried = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(statuses) < 60:
            retried = await client.post("/api/v1/brands/import", content=body, headers=headers)
            statuses.append(retried.status_code)
            if retried.status_code != 409:  # the dead owner's claim, until its lease lapses
                break
            await asyncio.sleep(0.5)
        replay = await client.post("/api/v1/brands/import", content=body, headers=headers)
    stored = await run.count_exported("FAULT-IMPORT")
    once = (
        retried is not None
        and retried.status_code == 201
        and retried.json().get("stored") == IMPORT_ROWS
        and stored == IMPORT_ROWS
    )
    run.record(
        "… the retry with the same Idempotency-Key stores every row once",
        IMPORT_ROWS,
        IMPORT_ROWS if once else IMPORT_ROWS - min(abs(stored - IMPORT_ROWS) or 1, IMPORT_ROWS),
        f"{'→'.join(map(str, statuses))}, {stored} stored",
    )
    replayed = (
        replay.status_code == 201
        and replay.headers.get("idempotent-replayed") == "true"
        and retried is not None
        and replay.content == retried.content
    )
    run.record("… and a further retry replays it", 1, int(replayed), f"HTTP {replay.status_code}")


def _spot_check(number: int, enterprise: str) -> dict[str, Any]:
    year = date.today().year
    return {
        "plan_code": "FAULT-FLAGS",
        "level": "provincial",
        "product_category": "electrical_materials",
        "product_name": f"產品{number}",
        "enterprise_credit_code": enterprise,
        "enterprise_name": f"徐州第{number}廠",
        "county_code": "320323",
        "sample_code": f"FAULT-{number:04d}-{uuid.uuid4().hex[:6]}",
        "sampled_on": f"{year}-01-05",
        "published_on": f"{year}-01-20",
        "testing_lab": "江蘇省產品質量監督檢驗研究院",
        "result": "fail",
        "nonconforming_items": [
            {"item": "導體電阻", "requirement": "≤ 1.83 Ω/km", "measured": "2.10 Ω/km"}
        ],
        "report_number": f"R-{number}",
    }


async def flags_through_a_crash(run: Run) -> None:
    """kill -9 of brand_registry while failing spot-checks are posted, back after 10 s."""
    awarded = (date.today() - timedelta(days=200)).isoformat()
    numbers = range(200_000, 200_000 + FLAG_CHECKS)
    setup = brands_csv(
        brand_row(n, tier="provincial_famous", awarded_on=awarded, batch="FAULT-FLAGS")
        for n in numbers
    )
    async with run.client(timeout=60) as client:
        imported = await client.post(
            "/api/v1/brands/import", content=setup, headers={"Content-Type": "text/csv"}
        )
        imported.raise_for_status()
        listed = await client.get(
            "/api/v1/brands", params={"batch_code": "FAULT-FLAGS", "limit": 500}
        )
        brand_of = {b["enterprise_credit_code"]: b["id"] for b in listed.json()["items"]}
        assert len(brand_of) == FLAG_CHECKS, f"{len(brand_of)} listings set up"

        queue = list(numbers)
        posted: list[int] = []
        killed_at: list[float] = []

        async def post_checks() -> None:
            while queue:
                number = queue.pop(0)
                answer = await client.post(
                    "/api/v1/spot-checks", json=_spot_check(number, credit_code(number))
                )
                posted.append(answer.status_code)
                if len(posted) == 10 and not killed_at:
                    await asyncio.to_thread(kill_9, run.process("brand_registry"))
                    killed_at.append(time.monotonic())

        await asyncio.gather(*(post_checks() for _ in range(4)))
        run.record(
            "kill -9 brand_registry while 100 failing spot-checks are posted: all recorded",
            FLAG_CHECKS,
            posted.count(201),
            ", ".join(f"{k}×{v}" for k, v in Counter(posted).items()),
        )
        await asyncio.sleep(max(0.0, killed_at[0] + 10 - time.monotonic()))
        await run.restart("brand_registry")
        backlog: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=run.suite.url("inspection"), timeout=10) as direct:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                ready = (await direct.get("/health/ready")).json()
                backlog = ready["checks"].get("outbox", {})
                if backlog.get("pending") == 0:
                    break
                await asyncio.sleep(0.5)
        flagged: Counter[int] = Counter()
        for brand_id in brand_of.values():
            history = (await client.get(f"/api/v1/brands/{brand_id}/history")).json()["items"]
            flagged[sum(1 for entry in history if entry["action"] == "review_flagged")] += 1
    run.record(
        "… restarted after 10 s: every listing flagged exactly once",
        FLAG_CHECKS,
        flagged[1],
        f"flags per listing {dict(sorted(flagged.items()))}; outbox pending "
        f"{backlog.get('pending')}, failed {backlog.get('failed')}",
    )


def _abandon_a_request(port: int, head: bytes) -> bool:
    """Send a request head announcing a body, part of the body, then hang up; whether the
    gateway answered meanwhile (it did not if it was waiting for the rest of the body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(head + b'{"partial": ')
        connection.settimeout(0.5)
        try:
            connection.recv(4096)
        except TimeoutError:
            return False
        return True


async def abandoned_probe(run: Run) -> None:
    """A backend's breaker opens; once it may probe, the probe's client hangs up mid-body."""
    certification = run.process("certification")
    await asyncio.to_thread(kill_9, certification)
    async with run.client(timeout=30) as client:
        statuses = [(await client.get("/api/v1/certificates")).status_code for _ in range(6)]
        opened = await client.get("/api/v1/certificates")
        await run.restart("certification")
        circuit_open = opened.json().get("circuit_open") is True
        head = (
            f"PUT /api/v1/certificates/probe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-API-Key: {run.writer_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n"
        ).encode()
        port = run.suite.ports["gateway"]
        probed = False
        for _ in range(20):
            await asyncio.sleep(BREAKER_RESET / 4)
            answered = await asyncio.to_thread(_abandon_a_request, port, head)
            if not answered:  # the gateway took it as the probe and waited for its body
                probed = True
                break
        loop_started = time.monotonic()
        recovered: list[int] = []
        while time.monotonic() - loop_started < 20 and len(recovered) < 200:
            recovered.append((await client.get("/api/v1/certificates")).status_code)
            if recovered[-1] == 200:
                break
            await asyncio.sleep(0.1)
    run.record(
        "a half-open probe abandoned by its client: the backend is reached again",
        1,
        int(circuit_open and probed and recovered[-1:] == [200]),
        f"503s before {statuses.count(503)}/6, circuit opened {circuit_open}, probe "
        f"abandoned {probed}, 200 again after {time.monotonic() - loop_started:.1f} s",
    )


TARGET_SET = {
    "reason": "fault suite",
    "indicators": [
        {
            "key": "new_provincial_famous_brands",
            "name": "新增江蘇名牌產品",
            "source": "brands",
            "measure": {"kind": "new_awards", "tier": "provincial_famous"},
            "comparator": "at_least",
            "target": 2,
            "weight": 40,
            "allocations": {"320323": {"target": 1}, "320382": {"target": 1}},
        },
        {
            "key": "new_certified_enterprises",
            "name": "新增通過認證企業",
            "source": "certificates",
            "measure": {"kind": "new_certified_enterprises"},
            "comparator": "at_least",
            "target": 2,
            "weight": 30,
            "allocations": {"320323": {"target": 1}, "320382": {"target": 1}},
        },
        {
            "key": "spot_check_pass_rate",
            "name": "監督抽查合格率",
            "source": "spot_checks",
            "measure": {"kind": "pass_rate", "levels": ["national", "provincial"]},
            "comparator": "at_least",
            "target": 0.9,
            "weight": 30,
        },
    ],
}


async def frozen_during_standings(run: Run) -> None:
    """certification frozen (SIGSTOP) while the standings are read through the gateway."""
    path = f"/api/v1/assessments/{STANDINGS_YEAR}/standings"
    async with run.client(timeout=60) as client:
        put = await client.put(f"/api/v1/target-sets/{STANDINGS_YEAR}", json=TARGET_SET)
        assert put.status_code in (200, 201), put.text
        healthy = await client.get(path)
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["meta"]["completeness"].get("certificates") == "ok", healthy.text
        certification = run.process("certification")
        tries, held, notes = 3, 0, []
        certification.pause()
        try:
            for _ in range(tries):
                started = time.monotonic()
                answer = await client.get(path)
                took = time.monotonic() - started
                completeness = (
                    answer.json().get("meta", {}).get("completeness", {})
                    if answer.status_code == 200
                    else {}
                )
                reason = completeness.get("certificates", "")
                named = bool(reason) and reason != "ok"
                within = took <= STANDINGS_DEADLINE + 2
                held += int(answer.status_code == 200 and named and within)
                notes.append(f"HTTP {answer.status_code} in {took:.1f} s")
        finally:
            certification.resume()
    run.record(
        "certification frozen during the standings: answer in time, naming it",
        tries,
        held,
        f"{'; '.join(notes)}; certificates: {reason[:60]!r}",
    )


async def _latencies(client: httpx.AsyncClient, count: int) -> list[float]:
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        (await client.get("/api/v1/brands/tiers")).raise_for_status()
        taken.append(time.perf_counter() - started)
    return taken


async def _statuses(base: str, key: str, count: int) -> list[tuple[int, bool]]:
    """`count` calls with `key`: each status and whether it carried the RateLimit headers."""
    answers = []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=10) as c:
        for _ in range(count):
            response = await c.get("/api/v1/brands/tiers")
            answers.append((response.status_code, "ratelimit-remaining" in response.headers))
    return answers


def _within_limit(answers: list[tuple[int, bool]], allowed: int) -> int:
    """The calls that kept to a limit with `allowed` calls left: those allowed may be 200,
    every later one must be 429, each with its headers."""
    held = 0
    for index, (status, headers) in enumerate(answers):
        expected = {200, 429} if index < allowed else {429}
        held += int(status in expected and headers)
    return held


async def _shared_again(base: str, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if "gateway_rate_limit_shared 1.0" in (await client.get("/metrics")).text:
                return True
            await asyncio.sleep(0.2)
    return False


async def _refused(base: str, key: str, within: float) -> bool:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=5) as c:
        while time.monotonic() < deadline:
            if (await c.get("/api/v1/brands/tiers")).status_code == 401:
                return True
            await asyncio.sleep(0.2)
    return False


async def redis_outages(run: Run) -> None:
    """Redis frozen (SIGSTOP), then stopped, behind both gateway replicas."""
    replicas = (run.gateway, run.replica.url)
    limit = 5
    async with run.client() as client:
        baseline = await _latencies(client, 30)
    # The slowest call without trouble, plus the timeout, plus room for a busy machine.
    ceiling = max(baseline) + REDIS_TIMEOUT + 0.25
    at_limit = await run.new_client("at-limit", ["brands:read"], f"{limit}/minute")
    await _statuses(run.gateway, at_limit["api_key"], limit + 1)

    for outage in ("frozen", "stopped"):
        revoked = await run.new_client(f"revoked-{outage}", ["brands:read"], "600/minute")
        await _statuses(run.replica.url, revoked["api_key"], 1)  # cached there for 60 s
        fresh = await run.new_client(f"fresh-{outage}", ["brands:read"], f"{limit}/minute")
        if outage == "frozen":
            run.redis.freeze()
        else:
            run.redis.stop()
        out_at = time.monotonic()
        try:
            async with run.client() as client:
                taken = await _latencies(client, 30)
            stuck = await _statuses(run.gateway, at_limit["api_key"], 10)
            per_replica = [await _statuses(base, fresh["api_key"], 8) for base in replicas]
            async with run.admin() as admin:
                started = time.monotonic()
                answer = await admin.post(f"/api/v1/admin/clients/{revoked['id']}/revoke")
                revoke_took = time.monotonic() - started
            # Out of touch long enough that the other replica cannot know what it missed.
            await asyncio.sleep(max(0.0, out_at + 2.0 - time.monotonic()))
        finally:
            if outage == "frozen":
                run.redis.thaw()
            else:
                await asyncio.to_thread(run.redis.start)
        added = statistics.median(taken) - statistics.median(baseline)
        run.record(
            f"Redis {outage}: no added latency beyond its {REDIS_TIMEOUT * 1000:.0f} ms timeout",
            len(taken),
            sum(1 for t in taken if t <= ceiling),
            f"median +{added * 1000:.1f} ms, slowest {max(taken) * 1000:.0f} ms",
        )
        answers = stuck + [a for calls in per_replica for a in calls]
        run.record(
            f"Redis {outage}: limits still enforced, per replica",
            len(answers),
            _within_limit(stuck, 0) + sum(_within_limit(calls, limit) for calls in per_replica),
            "at its limit: "
            + "".join("✓" if s == 429 else "✗" for s, _ in stuck)
            + "; new client, 5/minute on each replica: "
            + " | ".join(",".join(str(s) for s, _ in calls) for calls in per_replica),
        )
        shared = all([await _shared_again(base) for base in replicas])
        heard = await _refused(run.replica.url, revoked["api_key"], 15)
        run.record(
            f"Redis {outage}: a revocation meanwhile reaches the other replica once it is back",
            1,
            int(answer.status_code == 200 and revoke_took < 1.0 and heard),
            f"revoke HTTP {answer.status_code} in {revoke_took * 1000:.0f} ms, refused on the "
            f"other replica {heard}, windows shared again {shared}",
        )

    together = await run.new_client("together", ["brands:read"], "4/minute")
    order = [run.gateway, run.replica.url] * 2 + [run.gateway, run.replica.url]
    statuses = [(await _statuses(base, together["api_key"], 1))[0][0] for base in order]
    run.record(
        "Redis back: both replicas count in one budget again",
        len(statuses),
        sum(1 for s, e in zip(statuses, [200] * 4 + [429] * 2, strict=True) if s == e),
        ",".join(map(str, statuses)),
    )


GATEWAY_PATHS = frozenset({"token requests", "key lookups", "admin API"})
READS = (
    "/api/v1/brands?limit=5",
    "/api/v1/certificates?limit=5",
    "/api/v1/spot-checks?limit=5",
    "/api/v1/target-sets",
)


async def postgres_outage(run: Run) -> None:
    """PostgreSQL stopped for 5 s while every kind of request keeps coming."""
    uncached = await run.new_client("uncached", ["brands:read"], "100000/minute")
    offsets = {name: run.process(name).log_path.stat().st_size for name in SERVICES}
    answers: list[tuple[str, int, bool, float]] = []
    writes: dict[str, tuple[dict[str, str], int]] = {}
    stop = asyncio.Event()
    awarded = (date.today() - timedelta(days=50)).isoformat()

    async def load(kind: str, call: Callable[[httpx.AsyncClient, int], Awaitable[Any]]) -> None:
        # The services' own paths through the replica, whose cached key lets requests reach
        # them; the gateway's database paths (key lookups, tokens, admin) through the other.
        base = run.gateway if kind in GATEWAY_PATHS else run.replica.url
        async with run.client(timeout=30, base=base) as client:
            for number in range(100_000):
                if stop.is_set():
                    return
                try:
                    response = await call(client, number)
                    answers.append((kind, response.status_code, is_problem_503(response), 0))
                except httpx.HTTPError as error:
                    answers.append((kind, -1, False, 0))
                    print(f"   {kind}: {type(error).__name__}", flush=True)
                answers[-1] = (*answers[-1][:3], time.monotonic())
                await asyncio.sleep(0.02)

    async def write(client: httpx.AsyncClient, number: int) -> httpx.Response:
        body = brand_row(300_000 + number, tier="city_famous", awarded_on=awarded, batch="FAULT-PG")
        key = f"pg-{uuid.uuid4().hex}"
        response = await client.post("/api/v1/brands", json=body, headers={"Idempotency-Key": key})
        writes[key] = (body, response.status_code)
        return response

    async def token(client: httpx.AsyncClient, number: int) -> httpx.Response:
        return await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": uncached["id"],
                "client_secret": uncached["api_key"],
            },
        )

    async def uncached_key(client: httpx.AsyncClient, number: int) -> httpx.Response:
        return await client.get("/api/v1/brands/tiers", headers={"X-API-Key": uncached["api_key"]})

    async def admin_list(client: httpx.AsyncClient, number: int) -> httpx.Response:
        return await client.get("/api/v1/admin/clients", headers={"X-API-Key": run.suite.admin_key})

    def reader(path: str) -> Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]:
        async def read(client: httpx.AsyncClient, number: int) -> httpx.Response:
            return await client.get(path)

        return read

    kinds: dict[str, Callable[[httpx.AsyncClient, int], Awaitable[Any]]] = {
        "brands": reader("/api/v1/brands?limit=5"),
        "certificates": reader("/api/v1/certificates?limit=5"),
        "spot-checks": reader("/api/v1/spot-checks?limit=5"),
        "target sets": reader("/api/v1/target-sets"),
        "brand writes": write,
        "token requests": token,
        "key lookups": uncached_key,
        "admin API": admin_list,
    }
    await _statuses(run.replica.url, run.writer_key, 1)  # its key cached there for 60 s
    workers = [asyncio.create_task(load(kind, call)) for kind, call in kinds.items()]
    ready_during: dict[str, int] = {}
    try:
        await asyncio.sleep(2)
        await asyncio.to_thread(run.postgres.stop, "fast")
        stopped_at = time.monotonic()
        await asyncio.sleep(2.5)
        async with httpx.AsyncClient(timeout=5) as direct:
            for name in SERVICES:
                ready_during[name] = (
                    await direct.get(run.suite.url(name) + "/health/ready")
                ).status_code
        await asyncio.sleep(max(0.0, stopped_at + 5 - time.monotonic()))
        await asyncio.to_thread(run.postgres.start)
        started_at = time.monotonic()
        back: dict[str, float] = {}
        while time.monotonic() - started_at < 40 and len(back) < len(kinds):
            for kind, status, _, at in list(answers):
                if at > started_at and 200 <= status < 300 and kind not in back:
                    back[kind] = at - started_at
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)

    held = sum(1 for _, status, problem, _ in answers if 200 <= status < 300 or problem)
    others = Counter(s for _, s, problem, _ in answers if not (200 <= s < 300 or problem))
    during = Counter(s for _, s, _, at in answers if stopped_at <= at <= started_at)
    run.record(
        "PostgreSQL stopped 5 s under load: only 503s with Retry-After",
        len(answers),
        held,
        f"while stopped {dict(sorted(during.items()))}"
        + (f"; other answers {dict(others)}" if others else ""),
    )
    run.record(
        "… every kind of request answers again, nothing restarted",
        len(kinds),
        len(back),
        "back after "
        + ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in back.items())
        + (
            f"; not back: {', '.join(k for k in kinds if k not in back)}"
            if len(back) < len(kinds)
            else ""
        ),
    )

    # Every write refused during the outage, sent again with its key, is stored once.
    async with run.client(timeout=30) as client:
        for key, (body, status) in writes.items():
            for _ in range(40):
                if status == 201:
                    break
                retry = await client.post(
                    "/api/v1/brands", json=body, headers={"Idempotency-Key": key}
                )
                status = retry.status_code
                if status in (409, 503):
                    await asyncio.sleep(0.5)
            writes[key] = (body, status)
    stored = await run.count_exported("FAULT-PG")
    created = sum(1 for _, status in writes.values() if status == 201)
    run.record(
        "… every write refused meanwhile, retried with its key, is stored once",
        len(writes),
        created if stored == len(writes) else min(created, len(writes) - abs(stored - len(writes))),
        f"{len(writes)} keys, {stored} stored",
    )

    # A second, shorter outage: a process whose first outage never ended in its log would
    # not report this one.
    await asyncio.to_thread(run.postgres.stop, "fast")
    try:
        await asyncio.sleep(1.2)  # past the first gateway's credential cache
        async with run.client(timeout=10, base=run.replica.url) as client:
            for path in READS:
                await client.get(path)
        async with run.admin() as admin:
            await admin.get("/api/v1/admin/clients")
    finally:
        await asyncio.to_thread(run.postgres.start)
    async with run.client(timeout=10, base=run.replica.url) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = [(await client.get(path)).status_code for path in READS]
            if set(statuses) == {200}:
                break
            await asyncio.sleep(0.2)

    checked, told = 0, 0
    notes = []
    async with httpx.AsyncClient(timeout=5) as direct:
        for name in SERVICES:
            log = log_tail(run.process(name).log_path, offsets[name])
            warnings = log.count('"message":"database_unavailable"')
            tracebacks = log.count("Traceback")
            metrics = (await direct.get(run.suite.url(name) + "/metrics")).text
            counted = any(
                line.startswith("database_unavailable_total ") and float(line.split()[1]) > 0
                for line in metrics.splitlines()
            )
            checked += 1
            ok = warnings == 2 and tracebacks == 0 and counted and ready_during[name] == 503
            told += int(ok)
            if not ok:
                events = Counter(
                    json.loads(line).get("message", "?")
                    for line in log.splitlines()
                    if line.startswith("{") and '"level":"error"' in line
                )
                notes.append(
                    f"{name}: {warnings} warnings for 2 outages, {tracebacks} tracebacks"
                    f"{' ' + str(dict(events)) if events else ''}, counted {counted}, "
                    f"ready {ready_during[name]}"
                )
    run.record(
        "… each process: one warning per outage, no traceback, readiness 503, metrics",
        checked,
        told,
        "; ".join(notes),
    )


# The run ----------------------------------------------------------------------------------


async def run_cases(run: Run) -> None:
    writer = await run.new_client("fault-suite", ALL_SCOPES, "100000/minute")
    run.writer_key = writer["api_key"]
    cases: list[tuple[str, Callable[[Run], Awaitable[None]]]] = [
        ("idempotent replay", idempotent_replay),
        ("kill -9 during a 50,000-row import", killed_import),
        ("kill -9 while failing spot-checks flag listings", flags_through_a_crash),
        ("abandoned breaker probe", abandoned_probe),
        ("frozen data service during standings", frozen_during_standings),
        ("Redis frozen and stopped", redis_outages),
        ("PostgreSQL stopped under load", postgres_outage),
    ]
    for name, case in cases:
        await phase(run, name, case)


def print_table(outcomes: list[Outcome]) -> None:
    if not outcomes:
        print("\nno fault was run")
        return
    width = max(len(o.fault) for o in outcomes)
    print()
    print(f"{'fault':<{width}} | {'tries':>6} | {'held':>6} | {'lost':>5}")
    print(f"{'-' * width}-|-{'-' * 6}-|-{'-' * 6}-|-{'-' * 5}")
    for o in outcomes:
        print(f"{o.fault:<{width}} | {o.tries:>6} | {o.held:>6} | {o.lost:>5}")
    lost = [o for o in outcomes if o.lost]
    if lost:
        print("\nlost:")
        for o in lost:
            print(f"  {o.fault}: {o.note}")


@contextmanager
def started_suite(workdir: Path) -> Iterator[Run]:
    """Private stores, the suite on them and a second gateway replica; all stopped on exit."""
    with private_postgres() as postgres, private_redis(workdir) as redis:
        suite = FaultSuite(workdir, postgres_url=postgres.url(), redis_url=redis.url)
        replica = ServiceProcess("gateway", {}, workdir / "gateway-2.log", port=free_port())
        try:
            suite.start()
            replica.env = {**suite.environment(), "GATEWAY_AUTH_CACHE_SECONDS": "60"}
            replica.start()
            yield Run(suite, postgres, redis, replica)
        finally:
            replica.stop()
            suite.stop()


def keep_logs(directory: Path) -> Path:
    """The processes' logs copied where they outlive the run."""
    kept = ROOT / "test-output" / "faults"
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for log in directory.rglob("*.log"):
        shutil.copy(log, kept / log.name)
    return kept


def main() -> int:
    if postgres_bin() is None or redis_bin() is None:
        print("make faults needs PostgreSQL (/usr/lib/postgresql/*/bin) and redis-server")
        return 2
    # A terminated run still stops what it started (the finally blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    phases: list[tuple[str, float]] = []
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="qrp-faults-") as directory:
        started = time.monotonic()
        try:
            with started_suite(Path(directory)) as run:
                phases.append(
                    ("start: stores, migrations, six processes", time.monotonic() - started)
                )
                print(f"== suite started in {phases[0][1]:.0f} s", flush=True)
                asyncio.run(run_cases(run))
                phases.extend(run.phases)
                outcomes = run.outcomes
        except Exception as error:
            print(f"the fault suite broke off: {type(error).__name__}: {error}"[:3000], flush=True)
        finally:
            phases.append(("stop", time.monotonic() - began - sum(s for _, s in phases)))
            if not outcomes or any(o.lost for o in outcomes):
                print(f"logs kept in {keep_logs(Path(directory))}", flush=True)
    print_table(outcomes)
    print("\nphases:")
    for name, seconds in phases:
        print(f"  {name:<45} {seconds:6.1f} s")
    print(f"  {'total':<45} {time.monotonic() - began:6.1f} s")
    lost = sum(o.lost for o in outcomes)
    print(f"\n{'nothing lost' if not lost else f'{lost} lost'}", flush=True)
    return 1 if lost or not outcomes else 0


if __name__ == "__main__":
    sys.exit(main())
