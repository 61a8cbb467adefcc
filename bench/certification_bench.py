"""Benchmark of the certification service on PostgreSQL; prints figures, changes nothing.

Creates a throwaway database on 127.0.0.1:5432 (user postgres), runs the service under uvicorn
on a free local port with a token key made for the run, imports 100,000 certificates from CSV,
then measures verification, a certificate by id and the county list at c=1 and at
`--concurrency`, each beside a bare asyncpg endpoint running the same SQL (`bench/floors.py`),
with the server CPU per request of both; stats beside its bare SQL; the plans PostgreSQL chose
(`EXPLAIN (ANALYZE, BUFFERS)`); and export. Stops the servers and drops the database at the
end, even on failure.

    .venv/bin/python bench/certification_bench.py [--rows 100000] [--requests 2000] [--concurrency 16]
        [--import-only] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench import floors
from certification import repository
from certification.catalogue import load_catalogue
from certification.settings import Settings
from kit import pagination
from kit.auth import TokenMinter, generate_keypair
from kit.identifiers import credit_code_check_char
from kit.migrations import upgrade_to_head
from kit.pagination import CursorCodec, PageParams
from scripts.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
COUNTIES = [
    "320302",
    "320303",
    "320304",
    "320305",
    "320311",
    "320321",
    "320322",
    "320323",
    "320324",
    "320381",
    "320382",
]
STANDARDS = (
    ["ISO 9001:2015"] * 5
    + ["GB/T 19001-2016"] * 2
    + ["ISO 14001:2015"] * 3
    + ["ISO 45001:2018", "ISO 22000:2018", "HACCP", "ISO 9001:2008", "ISO 14001:2004"]
)
BODIES = ["中國質量認證中心", "方圓標志認證集團", "北京世標認證中心", "上海質量體系審核中心"]
HEADER = [
    "certificate_number",
    "standard",
    "certification_body",
    "accreditation_body",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "sites",
    "issued_on",
    "expires_on",
    "original_issued_on",
    "confidential",
]


def credit_code(n: int, county: str) -> str:
    first17 = f"91{county}{n:09d}"
    return first17 + credit_code_check_char(first17)


def write_csv(path: Path, rows: int, rng: random.Random) -> list[tuple[str, str]]:
    """A CSV of `rows` certificates; returns (number, body) of each for the verify runs."""
    keys = []
    enterprises = max(1, rows * 2 // 5)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            enterprise = rng.randrange(enterprises)
            county = COUNTIES[enterprise % len(COUNTIES)]
            issued = date(2005, 1, 1) + timedelta(days=rng.randrange(21 * 365))
            original = issued - timedelta(days=rng.choice([0, 0, 0, 1095, 2190]))
            number = f"{rng.randrange(10**5):05d}{rng.choice('QEOF')}{i:08d}R0M"
            body = BODIES[i % len(BODIES)]
            keys.append((number, body))
            writer.writerow(
                [
                    number,
                    rng.choice(STANDARDS),
                    body,
                    "CNAS",
                    credit_code(enterprise, county),
                    f"徐州第{enterprise}號製造有限公司",
                    county,
                    "機械設備的設計、生產和售後服務",
                    f"徐州市{county}工業園{enterprise % 97}號",
                    issued.isoformat(),
                    "",
                    original.isoformat(),
                    "true" if i % 50 == 0 else "false",
                ]
            )
    return keys


def rss_kib(pid: int, field: str) -> int:
    """`VmRSS` or `VmHWM` (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def measure(
    label: str,
    call: Callable[[int], Awaitable[httpx.Response]],
    *,
    requests: int,
    concurrency: int,
) -> None:
    """Run `requests` calls with `concurrency` in flight; print p50/p99 and requests/s."""
    timings = await floors.timed(call, requests=requests, concurrency=concurrency)
    print(
        f"{label:<34} p50 {timings.p(0.5):7.1f} ms  p99 {timings.p(0.99):7.1f} ms  "
        f"{requests / timings.elapsed:7.0f} req/s  statuses {timings.statuses}"
    )


async def stream_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(256 * 1024):
            yield chunk


async def wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError("the service exited during start-up")
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the service did not become ready")


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The service under uvicorn on 127.0.0.1:`port`."""
    return floors.start_uvicorn(["--factory", "certification.app:build_app"], port=port, env=env)


STATS_YEAR = 2015


async def floor_routes(today: date) -> dict[str, str]:
    """The bare endpoint's paths with the SQL the service sends for the same question."""
    verify = await floors.fetched_statements(
        repository, repository.number_lookup, on=today, number="BENCH_NUMBER"
    )
    item = await floors.fetched_statements(
        repository, repository.row_with_status, certificate_id="BENCH_ID", on=today
    )
    page = PageParams(limit=50, cursor=None, codec=CursorCodec(b"b" * 32), fingerprint="")
    listing = await floors.fetched_statements(
        pagination,
        repository.list_certificates,
        query=repository.CertificateQuery(
            on=today, include_confidential=True, county_code="BENCH_COUNTY", status="valid"
        ),
        page=page,
    )
    return {
        "/verify": floors.compiled(verify[0], placeholders=["BENCH_NUMBER"]),
        "/item": floors.compiled(item[0], placeholders=["BENCH_ID"]),
        "/list": floors.compiled(listing[0], placeholders=["BENCH_COUNTY"]),
    }


async def stats_beside_sql(client: httpx.AsyncClient, dsn: str, today: date) -> None:
    """City-wide stats of `STATS_YEAR` (median of 25) beside the two statements it runs."""
    catalogue = load_catalogue(
        Settings(config_dir=ROOT / "config", database_url=dsn, secret_key="b" * 64)
    )
    by_family = {f: catalogue.standards_of([f]) for f in catalogue.family_labels}
    start, end = date(STATS_YEAR, 1, 1), date(STATS_YEAR, 12, 31)
    statements = [
        *await floors.statements_of(
            repository.new_certified_by_county,
            standards=[code for codes in by_family.values() for code in codes],
            start=start,
            end=end,
            on=end,
            county_code=None,
        ),
        *await floors.statements_of(
            repository.in_force_by_county_family,
            standards_by_family=by_family,
            on=end,
            county_code=None,
        ),
    ]
    sqls = [floors.compiled(statement) for statement in statements]
    connection = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        bare = []
        for _ in range(25):
            started = time.perf_counter()
            for sql in sqls:
                await connection.fetch(sql)
            bare.append(time.perf_counter() - started)
    finally:
        await connection.close()
    served = []
    for _ in range(25):
        started = time.perf_counter()
        response = await client.get("/api/v1/certificates/stats", params={"year": STATS_YEAR})
        served.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    service_ms = statistics.median(served) * 1000
    bare_ms = statistics.median(bare) * 1000
    print(f"GET /certificates/stats?year={STATS_YEAR} (every county and family; median of 25)")
    print(
        f"  service {service_ms:.1f} ms, its {len(sqls)} statements bare {bare_ms:.1f} ms,"
        f" ratio {service_ms / bare_ms:.2f} × (target: stats ≤ 60 ms)"
    )
    for number, sql in enumerate(sqls, start=1):
        floors.print_plan(f"stats statement {number}", await floors.explain(dsn, sql))


async def run(args: argparse.Namespace, workdir: Path, database_url: str) -> None:
    rng = random.Random(20081231)
    pair = generate_keypair()
    (workdir / "gateway.pub").write_bytes(pair.public_pem)
    minter = TokenMinter(pair.private_pem, issuer="gateway", ttl_seconds=3600)
    writer_token = minter.mint(
        audience="certification",
        client_id="bench",
        client_name="Benchmark",
        scopes={"certificates:read", "certificates:write"},
    )
    public_token = minter.mint(
        audience="certification", client_id="purchaser", client_name="Purchaser", scopes=set()
    )
    csv_path = workdir / "certificates.csv"
    keys = write_csv(csv_path, args.rows, rng)
    print(f"rows {args.rows}, CSV {csv_path.stat().st_size / 1e6:.1f} MB")

    await asyncio.to_thread(
        upgrade_to_head,
        ROOT / "services/certification/migrations",
        database_url,
        "certification_alembic_version",
    )
    port = free_port()
    env = {
        **os.environ,
        "CERTIFICATION_DATABASE_URL": database_url,
        "CERTIFICATION_TOKEN_ISSUERS": json.dumps({"gateway": str(workdir / "gateway.pub")}),
        "CERTIFICATION_SECRET_KEY": uuid.uuid4().hex * 2,
        "CERTIFICATION_VAR_DIR": str(workdir),
        "CERTIFICATION_CONFIG_DIR": str(ROOT / "config"),
        "CERTIFICATION_LOG_LEVEL": "WARNING",
    }
    server = start_server(port, env)
    try:
        limits = httpx.Limits(max_connections=args.concurrency * 2)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=600,
            limits=limits,
            headers={"Authorization": f"Bearer {writer_token}"},
        ) as client:
            await wait_ready(client, server)
            idle = rss_kib(server.pid, "VmRSS")
            service_cpu, database_cpu = (
                floors.cpu_seconds(server.pid),
                floors.postgres_cpu_seconds(),
            )
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/certificates/import",
                content=stream_file(csv_path),
                headers={"Content-Type": "text/csv"},
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise RuntimeError(f"import failed: {response.status_code} {response.text[:500]}")
            peak = rss_kib(server.pid, "VmHWM")
            service_cpu = floors.cpu_seconds(server.pid) - service_cpu
            database_cpu = floors.postgres_cpu_seconds() - database_cpu
            print(
                f"{'import':<34} {args.rows / elapsed:7.0f} rows/s  ({elapsed:.1f} s)  "
                f"server RSS idle {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB"
            )
            print(
                f"{'  CPU per row':<34} service {service_cpu / args.rows * 1e6:5.0f} µs,"
                f" PostgreSQL {database_cpu / args.rows * 1e6:5.0f} µs (2 cores: the two"
                f" bound the rate at {2 * args.rows / (service_cpu + database_cpu):.0f} rows/s)"
            )

            public = {"Authorization": f"Bearer {public_token}"}
            dsn = database_url.replace("+asyncpg", "")
            copied, copy_rate = await floors.copy_rate(dsn, "certificate")
            print(
                f"{'  COPY of the same rows':<34} {copy_rate:7.0f} rows/s  ({copied} rows into a"
                f" table like `certificate`); the import is {args.rows / elapsed / copy_rate:.0%}"
                " of it (target 50 %)"
            )
            _, copy_all_rate = await floors.copy_rate(
                dsn, "certificate", "certificate_history", "event"
            )
            print(
                f"{'  COPY of all it writes':<34} {copy_all_rate:7.0f} rows/s  (each certificate"
                " with its history entry and its event); the import is"
                f" {args.rows / elapsed / copy_all_rate:.0%} of it"
            )
            if args.import_only:
                return
            analyzed = await asyncpg.connect(dsn)
            try:
                await analyzed.execute("ANALYZE")
                some_id = await analyzed.fetchval("SELECT id FROM certificate ORDER BY id LIMIT 1")
            finally:
                await analyzed.close()
            today = date.today()
            routes = await floor_routes(today)
            cases = [
                floors.Case(
                    "GET /certificates/verify by number",
                    lambda i: (
                        "/api/v1/certificates/verify",
                        {"number": keys[(i * 7919) % len(keys)][0]},
                        public,
                    ),
                    lambda i: ("/verify", {"number": keys[(i * 7919) % len(keys)][0]}),
                ),
                floors.Case(
                    "GET /certificates/{id}",
                    lambda i: (f"/api/v1/certificates/{some_id}", {}),
                    lambda i: ("/item", {"id": some_id}),
                ),
                floors.Case(
                    "GET /certificates county+status, 50",
                    lambda i: (
                        "/api/v1/certificates",
                        {"county_code": COUNTIES[i % len(COUNTIES)], "status": "valid"},
                    ),
                    lambda i: ("/list", {"county_code": COUNTIES[i % len(COUNTIES)]}),
                ),
            ]
            await floors.compare(
                cases,
                service=(client, server.pid),
                dsn=dsn,
                routes=routes,
                workdir=workdir,
                requests=args.requests,
                concurrency=args.concurrency,
            )
            county = COUNTIES[1]
            for title, sql, args_ in (
                ("the county list", routes["/list"], (county,)),
                ("verify by number", routes["/verify"], (keys[0][0],)),
            ):
                floors.print_plan(title, await floors.explain(dsn, sql, *args_))
            await measure(
                "POST /certificates/verify (100)",
                lambda i: client.post(
                    "/api/v1/certificates/verify",
                    json={
                        "items": [
                            {"number": keys[(i * 100 + k) % len(keys)][0]} for k in range(100)
                        ]
                    },
                    headers=public,
                ),
                requests=max(50, args.requests // 20),
                concurrency=args.concurrency,
            )
            await measure(
                "GET /certificates (family+issued)",
                lambda i: client.get(
                    "/api/v1/certificates",
                    params={
                        "family": "environment",
                        "issued_from": f"{2005 + i % 20}-01-01",
                        "limit": 50,
                    },
                ),
                requests=args.requests,
                concurrency=args.concurrency,
            )
            await stats_beside_sql(client, dsn, today)
            started = time.perf_counter()
            size = 0
            async with client.stream("GET", "/api/v1/certificates/export") as export:
                async for chunk in export.aiter_bytes():
                    size += len(chunk)
            elapsed = time.perf_counter() - started
            print(
                f"{'export (all rows)':<34} {args.rows / elapsed:7.0f} rows/s  "
                f"({elapsed:.1f} s, {size / 1e6:.1f} MB)  "
                f"server RSS peak {rss_kib(server.pid, 'VmHWM') / 1024:.0f} MiB"
            )
    finally:
        floors.stop(server)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--import-only", action="store_true", help="stop after the import and its COPY floor"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the database behind and print its name"
    )
    args = parser.parse_args()
    name = f"qrp_bench_certification_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        with tempfile.TemporaryDirectory(prefix="qrp-bench-") as workdir:
            await run(args, Path(workdir), f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            if args.keep:
                print(f"database kept: {name}")
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
