"""What the services' benches measure a route against: a bare endpoint running the same SQL,
the server CPU each request costs, and the plan PostgreSQL chose.

The bare endpoint is raw ASGI under uvicorn with an asyncpg pool and no framework: each of
its paths runs one statement, with the request's query values (in their order) as `$1`,
`$2`, …, and answers the rows as JSON. It is the fastest a Python service could answer the
same question, so a service's figure beside it shows what the service itself adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")

BARE_APP = textwrap.dedent(
    '''
    """A bare endpoint: raw ASGI, an asyncpg pool, one SQL statement per path, JSON out."""
    import json, os
    from urllib.parse import parse_qsl
    import asyncpg

    ROUTES = json.loads(os.environ["BARE_ROUTES"])
    pool = None

    async def app(scope, receive, send):
        global pool
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    pool = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=4, max_size=10)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        sql = ROUTES.get(scope["path"])
        if sql is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        values = [value for _, value in parse_qsl(scope["query_string"].decode())]
        rows = await pool.fetch(sql, *values)
        body = json.dumps({"items": [dict(r) for r in rows], "next_cursor": None},
                          default=str, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    '''
)


def compiled(statement: Any, *, placeholders: Sequence[str] = ()) -> str:
    """The statement a service runs, its parameters written in; each of `placeholders` (a
    value the statement was built with) becomes `$1`, `$2`, … in that order."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    for number, value in enumerate(placeholders, start=1):
        sql = sql.replace(f"'{value}'", f"${number}")
    return sql


async def copy_rate(dsn: str, table: str, *also: str) -> tuple[int, float]:
    """The rows of `table` and the rows/s of COPY of them into a new table like it (its
    columns, defaults, constraints and indexes), on one connection; the copy is dropped.
    With `also`, the rows of those tables are copied too (each into a table like it) and
    the rate is of `table`'s rows over the time of all the copies: the floor of an import
    that writes a row of each for every row of `table`."""
    for name in (table, *also):
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"not a table name: {name!r}")
    connection = await asyncpg.connect(dsn)
    try:
        elapsed = 0.0
        counted = 0
        for name in (table, *also):
            rows = await connection.fetch(f'SELECT * FROM "{name}"')  # noqa: S608 (checked)
            if not rows:
                continue
            records = [tuple(row) for row in rows]
            if name == table:
                counted = len(records)
            copy = f"{name}_copy_floor"
            await connection.execute(f'CREATE TABLE "{copy}" (LIKE "{name}" INCLUDING ALL)')
            try:
                started = time.perf_counter()
                await connection.copy_records_to_table(
                    copy, records=records, columns=list(rows[0].keys())
                )
                elapsed += time.perf_counter() - started
            finally:
                await connection.execute(f'DROP TABLE "{copy}"')
    finally:
        await connection.close()
    return counted, counted / elapsed if elapsed else 0.0


async def explain(dsn: str, sql: str, *args: Any) -> str:
    """`EXPLAIN (ANALYZE, BUFFERS)` of `sql` as the services run it (JIT off), after one
    run to warm the cache."""
    connection = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        await connection.fetch(sql, *args)
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    finally:
        await connection.close()
    return "\n".join(row[0] for row in rows)


def print_plan(title: str, plan: str) -> None:
    print(f"plan of {title}:")
    for line in plan.splitlines():
        if re.search(r"never executed|^\s*(Filter|Recheck Cond|Sort Key|Group Key):", line):
            continue
        print("    " + (line if len(line) <= 150 else line[:147] + "..."))


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def scheduled_seconds(pid: int) -> tuple[float, float]:
    """How long the main thread of a process has run on a core, and how long it has waited
    runnable for one (`/proc/<pid>/schedstat`): a server short of work sleeps, one short of
    CPU waits."""
    ran, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(ran) / 1e9, int(waited) / 1e9


def postgres_cpu_seconds() -> float:
    """User and system CPU used so far by every process of the PostgreSQL server on this
    machine (its backends included; those that ended are not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in {"postgres", "postmaster"}:
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@dataclass
class Figures:
    p50_ms: float
    p99_ms: float
    rps: float
    cpu_us: float
    """Server CPU per request, in microseconds."""
    statuses: dict[int, int]

    def line(self, label: str) -> str:
        return (
            f"  {label:<14} p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms"
            f"  {self.rps:7.0f} req/s  {self.cpu_us:6.0f} µs CPU/request  {self.statuses}"
        )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Call = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, str]]
"""A GET as a case gives it: the path, the query, and headers of its own if any."""


@dataclass
class Timings:
    latencies: list[float]
    statuses: dict[int, int]
    elapsed: float

    def p(self, share: float) -> float:
        """A percentile of the latencies, in milliseconds."""
        return percentile(self.latencies, share) * 1000


async def timed(
    call: Callable[[int], Awaitable[httpx.Response]], *, requests: int, concurrency: int
) -> Timings:
    """`requests` calls of `call(i)`, `concurrency` at a time."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            response = await call(i)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timings(latencies, statuses, time.perf_counter() - started)


async def load(
    client: httpx.AsyncClient,
    request: Callable[[int], Call],
    *,
    pid: int,
    requests: int,
    concurrency: int,
) -> Figures:
    """`requests` GETs, `concurrency` at a time; `request(i)` gives the i-th one. Twenty
    calls warm the server first."""
    for i in range(20):
        await _get(client, request(i))
    cpu = cpu_seconds(pid)
    timings = await timed(
        lambda i: _get(client, request(i)), requests=requests, concurrency=concurrency
    )
    return Figures(
        p50_ms=timings.p(0.5),
        p99_ms=timings.p(0.99),
        rps=requests / timings.elapsed,
        cpu_us=(cpu_seconds(pid) - cpu) / requests * 1e6,
        statuses=timings.statuses,
    )


async def _get(client: httpx.AsyncClient, call: Call) -> httpx.Response:
    path, params, *headers = call
    return await client.get(
        path, params=list(params.items()), headers=headers[0] if headers else None
    )


@dataclass
class Case:
    """One read, as the service is asked it and as the bare endpoint is."""

    title: str
    service: Callable[[int], Call]
    floor: Callable[[int], Call]


async def compare(
    cases: Sequence[Case],
    *,
    service: tuple[httpx.AsyncClient, int],
    dsn: str,
    routes: dict[str, str],
    workdir: Path,
    requests: int,
    concurrency: int,
) -> None:
    """Each case at c=1 (half the requests) and at `concurrency`, the service (its client and
    server pid) beside the bare endpoint serving `routes` on `dsn`, printed."""
    port = free_port()
    async with (
        bare_endpoint(workdir, dsn=dsn, routes=routes, port=port) as bare,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as floor,
    ):
        for case in cases:
            for level in sorted({1, concurrency}):
                count = requests if level > 1 else requests // 2
                figures = [
                    await load(client, call, pid=pid, requests=count, concurrency=level)
                    for (client, pid), call in (
                        (service, case.service),
                        ((floor, bare.pid), case.floor),
                    )
                ]
                print_beside(f"{case.title}, c={level}", *figures)


def print_beside(title: str, service: Figures, bare: Figures) -> None:
    """The service's figures, the floor's, and the ratios the targets are stated in."""
    print(title)
    print(service.line("service"))
    print(bare.line("bare asyncpg"))
    print(
        f"  ratio: {100 * service.rps / bare.rps:.0f} % of the floor's requests/s,"
        f" {service.cpu_us / bare.cpu_us:.2f} × its CPU per request (target ≤ 2 ×)"
    )


def start_uvicorn(app: list[str], *, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """uvicorn serving `app` (its arguments) on 127.0.0.1:`port`, quietly."""
    command = [
        str(Path(sys.executable).parent / "uvicorn"),
        *app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, env=env, cwd=ROOT)


@asynccontextmanager
async def bare_endpoint(
    workdir: Path, *, dsn: str, routes: dict[str, str], port: int
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The bare endpoint serving `routes` (path → SQL) on 127.0.0.1:`port`, until the block
    ends."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    process = start_uvicorn(
        ["bare_app:app", "--app-dir", str(workdir)],
        port=port,
        env={**os.environ, "BARE_ROUTES": json.dumps(routes), "BARE_DSN": dsn},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError("the bare endpoint exited during start-up")
                try:
                    await client.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server, killing it if it is not gone within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Nothing:
    """The result of a statement that was captured, not run."""

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def all(self) -> list[Any]:
        return []

    def first(self) -> None:
        return None

    def mappings(self) -> list[Any]:
        return []

    def scalars(self) -> list[Any]:
        return []

    def scalar_one(self) -> int:
        return 0


class CapturingSession:
    """Stands in for a session to collect the statements a repository function builds."""

    bind = None
    """Bound to no connection, so `kit.db.execute_read` sends its statements here too."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    async def execute(self, statement: Any, values: dict[str, Any] | None = None) -> _Nothing:
        self.statements.append(statement.params(values) if values else statement)
        return _Nothing()


async def statements_of(function: Callable[..., Any], **arguments: Any) -> list[Any]:
    """The statements `function(session=…, **arguments)` sends, in order."""
    session = CapturingSession()
    await function(session=session, **arguments)
    return session.statements


async def fetched_statements(
    module: Any, function: Callable[..., Any], **arguments: Any
) -> list[Any]:
    """The statements `function(engine=…, **arguments)` reads with `kit.db.fetch_rows` (as
    `module.fetch_rows`), in order, each with its values bound."""
    captured: list[Any] = []

    async def capture(
        _engine: Any, statement: Any, values: dict[str, Any] | None = None
    ) -> list[Any]:
        captured.append(statement.params(values) if values else statement)
        return []

    original = module.fetch_rows
    module.fetch_rows = capture
    engine = create_async_engine("postgresql+asyncpg://bench@127.0.0.1/never-connected")
    try:
        await function(engine=engine, **arguments)
    finally:
        module.fetch_rows = original
        await engine.dispose()
    return captured
