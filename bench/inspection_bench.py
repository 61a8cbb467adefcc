"""Benchmark of the inspection service on PostgreSQL: prints figures, then cleans up.

    .venv/bin/python bench/inspection_bench.py [--rows 1000000] [--import-rows 100000] [--requests 2000]
        [--keep]

Creates its own database on 127.0.0.1:5432 (user postgres), loads generated spot-checks with
COPY, runs the service with uvicorn on a free 127.0.0.1 port, and reports:
  - a spot-check by id and a county's failed checks (a page of 50) at c=1 and c=16, beside a
    bare asyncpg endpoint running the same SQL (`bench/floors.py`), with the server CPU per
    request of both and the list's plan;
  - `/spot-checks/stats` latency for one year, against the bare SQL GROUP BY it stands for,
    timed on the same database in the same run, with the covering index and without it;
  - CSV import rows/s through the API against COPY of the same rows;
  - the service's peak RSS.
The database is dropped (unless `--keep`, for comparing builds on it; the covering index
is dropped by then) and the service stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import select
from sqlmodel import col

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "libs"), str(ROOT / "services")]

from bench import floors  # noqa: E402
from inspection import repository  # noqa: E402
from inspection.models import SpotCheck  # noqa: E402
from inspection.schemas import Result, SpotCheckFilters  # noqa: E402
from kit import pagination  # noqa: E402
from kit.auth import TokenMinter, write_keypair  # noqa: E402
from kit.identifiers import credit_code_check_char, new_id  # noqa: E402
from kit.migrations import upgrade_to_head  # noqa: E402
from kit.pagination import CursorCodec, PageParams  # noqa: E402
from scripts.processes import free_port  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_YEAR, YEARS = 2015, 10
STATS_YEAR = 2020
COUNTIES = [
    "320302", "320303", "320304", "320305", "320311", "320321",
    "320322", "320323", "320324", "320381", "320382",
]  # fmt: skip
LEVELS = ["national", "provincial", "city"]
CATEGORIES = [
    entry["code"] for entry in json.loads((ROOT / "config/product_categories.json").read_text())
]
COLUMNS = [
    "id", "plan_code", "level", "product_category", "product_name", "enterprise_credit_code",
    "enterprise_name", "county_code", "sample_code", "sampled_on", "result",
    "nonconforming_items", "mandatory_standard_violation", "testing_lab", "report_number",
    "refused", "unlicensed_referral", "published_on", "reinspection_of", "root_id",
    "final_result", "overturned_on", "created_by", "created_at", "updated_at", "version",
]  # fmt: skip
ITEMS = json.dumps([{"item": "鉛含量", "requirement": "≤0.5 mg/kg", "measured": "0.9 mg/kg"}])
BARE_SQL = """
SELECT county_code, level, product_category, count(*) AS checked,
       sum(CASE WHEN result = 'pass' OR overturned_on <= $3 THEN 1 ELSE 0 END) AS passed
FROM spot_check
WHERE programme = 'product_quality' AND reinspection_of IS NULL
  AND sampled_on >= $1 AND sampled_on <= $2
  AND level = ANY($4::varchar[]) AND published_on <= $3
GROUP BY county_code, level, product_category
"""


def credit_code(serial: int) -> str:
    first17 = f"91320303MA{serial:07d}"
    return first17 + credit_code_check_char(first17)


def generate(count: int, *, seed: int, prefix: str) -> Iterator[tuple[Any, ...]]:
    """Spot-checks spread over ten years; ~6 % fail, a third of failures overturned."""
    rng = random.Random(seed)
    credit_codes = [credit_code(n) for n in range(2000)]
    now = datetime.now().astimezone()
    emitted = 0
    serial = 0
    while emitted < count:
        serial += 1
        year = FIRST_YEAR + serial % YEARS
        sampled = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        published = sampled + timedelta(days=rng.randrange(20, 60))
        level = LEVELS[serial % 3]
        plan = f"{prefix}{year}-{level[:2].upper()}-{serial % 40:02d}"
        sample = f"S{serial:08d}"
        failed = rng.random() < 0.06
        spot_id = new_id()
        enterprise = credit_codes[serial % len(credit_codes)]
        county = COUNTIES[serial % len(COUNTIES)]
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        overturn = failed and emitted + 1 < count and rng.random() < 0.33
        overturned_on = published + timedelta(days=30) if overturn else None
        result = "fail" if failed else "pass"
        yield (
            spot_id, plan, level, category, "產品", enterprise, "企業", county, sample, sampled,
            result, ITEMS if failed else "[]", failed, "檢驗院", f"R{serial}", False, False,
            published, None, spot_id, "pass" if overturn or not failed else "fail",
            overturned_on, "bench", now, now, 1,
        )  # fmt: skip
        emitted += 1
        if overturn:
            retest = new_id()
            yield (
                retest, plan, level, category, "產品", enterprise, "企業", county, sample,
                sampled + timedelta(days=15), "pass", "[]", False, "檢驗院", f"R{serial}b",
                False, False, overturned_on, spot_id, spot_id, "pass", None, "bench", now, now, 1,
            )  # fmt: skip
            emitted += 1


async def copy_rows(dsn: str, rows: Iterator[tuple[Any, ...]], chunk: int = 50_000) -> int:
    connection = await asyncpg.connect(dsn)
    total = 0
    try:
        while True:
            batch = [row for _, row in zip(range(chunk), rows, strict=False)]
            if not batch:
                return total
            await connection.copy_records_to_table("spot_check", records=batch, columns=COLUMNS)
            total += len(batch)
    finally:
        await connection.close()


def csv_slice(count: int, *, seed: int) -> bytes:
    """The import file: originals only (re-inspections are recorded one at a time)."""
    fields = [
        "plan_code", "level", "product_category", "product_name", "enterprise_credit_code",
        "enterprise_name", "county_code", "sample_code", "sampled_on", "result",
        "nonconforming_items", "mandatory_standard_violation", "testing_lab", "report_number",
        "published_on",
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    for row in generate(count, seed=seed, prefix="IMP-"):
        if row[18] is not None:
            continue
        record = dict(zip(COLUMNS, row, strict=True))
        record["mandatory_standard_violation"] = "true" if record["result"] == "fail" else "false"
        writer.writerow([record[name] for name in fields])
    return buffer.getvalue().encode()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def time_bare_sql(dsn: str, runs: int) -> tuple[float, str]:
    connection = await asyncpg.connect(dsn)
    args = (date(STATS_YEAR, 1, 1), date(STATS_YEAR, 12, 31), date.today(), LEVELS)
    try:
        for _ in range(3):
            await connection.fetch(BARE_SQL, *args)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            await connection.fetch(BARE_SQL, *args)
            timings.append(time.perf_counter() - started)
        plan = await connection.fetch("EXPLAIN " + BARE_SQL, *args)
        scan = next((r[0].strip() for r in plan if "Scan" in r[0]), "?")
        return statistics.median(timings) * 1000, scan
    finally:
        await connection.close()


def time_api(client: httpx.Client, url: str, params: dict[str, Any], runs: int) -> float:
    for _ in range(3):
        client.get(url, params=params).raise_for_status()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, params=params)
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(timings) * 1000


async def reads_beside_floor(
    base: str, token: str, dsn: str, pid: int, workdir: Path, requests: int
) -> None:
    """A spot-check by id and a county's failed checks, the service beside the bare floor."""
    today = date.today()
    page = PageParams(limit=50, cursor=None, codec=CursorCodec(b"b" * 32), fingerprint="")
    filters = SpotCheckFilters(county_code="BENCH_COUNTY", result=Result.failed)
    listing = await floors.fetched_statements(
        pagination, repository.list_spot_checks, filters=filters, today=today, page=page
    )
    routes = {
        "/item": floors.compiled(
            select(SpotCheck).where(col(SpotCheck.id) == "BENCH_ID"), placeholders=["BENCH_ID"]
        ),
        "/list": floors.compiled(listing[0], placeholders=["BENCH_COUNTY"]),
    }
    some_id = await fetchval(dsn, "SELECT id FROM spot_check ORDER BY id LIMIT 1")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        cases = [
            floors.Case(
                "GET /spot-checks/{id}",
                lambda i: (f"/api/v1/spot-checks/{some_id}", {}),
                lambda i: ("/item", {"id": some_id}),
            ),
            floors.Case(
                "GET /spot-checks county+failed, 50",
                lambda i: (
                    "/api/v1/spot-checks",
                    {"county_code": COUNTIES[i % len(COUNTIES)], "result": "fail"},
                ),
                lambda i: ("/list", {"county_code": COUNTIES[i % len(COUNTIES)]}),
            ),
        ]
        await floors.compare(
            cases,
            service=(client, pid),
            dsn=dsn,
            routes=routes,
            workdir=workdir,
            requests=requests,
            concurrency=16,
        )
    floors.print_plan("the county list", await floors.explain(dsn, routes["/list"], COUNTIES[0]))


def main(args: argparse.Namespace) -> None:
    name = f"qrp_bench_inspection_{uuid.uuid4().hex[:8]}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(execute(ADMIN_DSN, f'CREATE DATABASE "{name}"'))
    process: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-inspection-"))
    try:
        upgrade_to_head(ROOT / "services/inspection/migrations", url, "inspection_alembic_version")
        started = time.perf_counter()
        loaded = asyncio.run(copy_rows(dsn, generate(args.rows, seed=1, prefix="")))
        asyncio.run(execute(dsn, "VACUUM ANALYZE spot_check"))
        year_rows = asyncio.run(
            fetchval(
                dsn,
                "SELECT count(*) FROM spot_check WHERE sampled_on BETWEEN $1 AND $2",
                date(STATS_YEAR, 1, 1),
                date(STATS_YEAR, 12, 31),
            )
        )
        print(f"loaded {loaded:,} spot-checks with COPY in {time.perf_counter() - started:.1f} s")
        print(f"  {year_rows:,} of them sampled in {STATS_YEAR}")

        keys = write_keypair(tmp / "keys", "gateway")
        minter = TokenMinter(keys.private_pem, issuer="gateway", ttl_seconds=3600)
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")},
            "INSPECTION_DATABASE_URL": url,
            "INSPECTION_VAR_DIR": str(tmp),
            "INSPECTION_SECRET_KEY": "bench-secret-" + "x" * 32,
            "INSPECTION_OUTBOX_ENABLED": "false",
            "INSPECTION_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/uvicorn"), "--factory", "inspection.app:build_app",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        token = minter.mint(
            audience="inspection",
            client_id="bench",
            client_name="Bench",
            scopes={"spot-checks:read", "spot-checks:write"},
        )
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service never became ready")
            time.sleep(0.2)

        asyncio.run(reads_beside_floor(base, token, dsn, process.pid, tmp, args.requests))
        stats = "/api/v1/spot-checks/stats"
        api_all = time_api(client, stats, {"year": STATS_YEAR}, args.runs)
        bare_ms, scan = asyncio.run(time_bare_sql(dsn, args.runs))
        body = client.get(stats, params={"year": STATS_YEAR}).json()
        print(f"stats for {STATS_YEAR} (all levels, public view), median of {args.runs}:")
        print(f"  API GET /spot-checks/stats    {api_all:7.1f} ms  (totals {body['totals']})")
        print(f"  bare SQL GROUP BY             {bare_ms:7.1f} ms  [{scan}]")
        print(f"  ratio API / bare SQL          {api_all / bare_ms:7.2f} x")
        api_indicator = time_api(
            client, stats, {"year": STATS_YEAR, "levels": "national,provincial"}, args.runs
        )
        print(f"  API, levels=national,provincial {api_indicator:5.1f} ms")

        baseline_rss = rss_kib(process.pid, "VmRSS")
        payload = csv_slice(args.import_rows, seed=2)
        imported_rows = payload.count(b"\r\n") - 1
        started = time.perf_counter()
        response = client.post(
            "/api/v1/spot-checks/import", content=payload, headers={"Content-Type": "text/csv"}
        )
        api_seconds = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"import failed: {response.status_code} {response.text[:500]}")
        peak_rss = rss_kib(process.pid, "VmHWM")
        started = time.perf_counter()
        same_slice = (
            row for row in generate(args.import_rows, seed=2, prefix="COPY-") if row[18] is None
        )
        copied = asyncio.run(copy_rows(dsn, same_slice))
        copy_seconds = time.perf_counter() - started
        print(f"import of {imported_rows:,} rows ({len(payload) / 1e6:.1f} MB CSV):")
        print(
            f"  API POST /spot-checks/import  {imported_rows / api_seconds:9,.0f} rows/s"
            f"  ({api_seconds:.1f} s; writes history, event and outbox rows too)"
        )
        print(f"  COPY of the same rows          {copied / copy_seconds:9,.0f} rows/s")
        print(
            f"  service RSS before import {baseline_rss / 1024:.0f} MiB, peak {peak_rss / 1024:.0f} MiB"
        )

        asyncio.run(execute(dsn, "VACUUM ANALYZE spot_check"))
        with_index, _ = asyncio.run(time_bare_sql(dsn, args.runs))
        asyncio.run(execute(dsn, "DROP INDEX ix_spot_check_stats", "ANALYZE spot_check"))
        without, scan = asyncio.run(time_bare_sql(dsn, args.runs))
        api_without = time_api(client, stats, {"year": STATS_YEAR}, args.runs)
        print("without the covering index:")
        print(
            f"  bare SQL GROUP BY             {without:7.1f} ms  [{scan}] ({without / with_index:.1f}x)"
        )
        print(f"  API GET /spot-checks/stats    {api_without:7.1f} ms")
        client.close()
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if args.keep:
            print(f"database kept: {name}")
        else:
            asyncio.run(execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped database {name}")
        for path in sorted(tmp.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        tmp.rmdir()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--keep", action="store_true", help="leave the database behind and print its name"
    )
    main(parser.parse_args())
