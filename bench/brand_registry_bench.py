"""Benchmark of the brand registry on PostgreSQL, against the floors it is measured by.

    .venv/bin/python bench/brand_registry_bench.py [--rows 100000] [--requests 2000] [--import-only]

Creates a throwaway database on 127.0.0.1:5432 (user postgres), runs the service under
uvicorn on a free local port with a token minted here, and prints:
- import rows/s of the CSV import against PostgreSQL COPY of the same rows, and peak RSS;
- p50/p99, requests/s and server CPU per request of a listing by id and of a filtered page of
  50, at c=1 and at `--concurrency`, against a bare asyncpg endpoint (`bench/floors.py`: raw ASGI under uvicorn,
  no framework) running the same SQL;
- stats latency against the bare GROUP BY;
- the plans PostgreSQL chose for both (`EXPLAIN (ANALYZE, BUFFERS)`).
The database is dropped and the servers stopped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "libs")]

from bench import floors  # noqa: E402
from brand_registry import repository  # noqa: E402
from brand_registry.app import MIGRATIONS, VERSION_TABLE  # noqa: E402
from brand_registry.repository import ListingFilters  # noqa: E402
from brand_registry.schemas import IMPORT_FIELDS  # noqa: E402
from kit.auth import TokenMinter, generate_keypair  # noqa: E402
from kit.identifiers import credit_code_check_char, new_id  # noqa: E402
from kit.migrations import upgrade_to_head  # noqa: E402
from scripts.processes import free_port  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
COUNTIES = ["320302", "320303", "320305", "320311", "320321", "320322", "320323", "320324",
            "320381", "320382"]  # fmt: skip
TIERS = ["china_famous", "provincial_famous", "city_famous", "national_inspection_exempt"]
SECTORS = ["industry", "agriculture", "service"]
PRODUCTS = ["豆奶粉", "裝載機", "蘋果醋", "牛蒡茶", "大蒜", "輸變電設備", "啤酒", "物流服務"]
LIST_PARAMS = {"county_code": "320323", "tier": "provincial_famous", "status": "active"}
STATS_YEAR = 2008


def credit_code(number: int) -> str:
    first17 = f"91320303{number:09d}"
    return first17 + credit_code_check_char(first17)


def make_rows(count: int) -> list[dict[str, str]]:
    """Listings awarded 2003-2026; every tenth row renews an earlier one, from two months
    before its listing lapses to the end of the tier's grace period."""
    tiers = {
        entry["code"]: entry
        for entry in json.loads((ROOT / "config/brand_tiers.json").read_text(encoding="utf-8"))
    }
    rng = random.Random(20081231)
    rows: list[dict[str, str]] = []
    last_day = date(2026, 6, 30)
    for index in range(count):
        if index % 10 == 9:
            base = rows[index - 9]
            earlier = date.fromisoformat(base["awarded_on"])
            tier_rules = tiers[base["tier"]]
            lapses = earlier.replace(
                year=earlier.year + tier_rules["validity_years"], day=min(earlier.day, 28)
            )
            awarded = lapses + timedelta(
                days=rng.randint(-60, tier_rules.get("renewal_grace_days", 0))
            )
            if base["tier"] == "national_inspection_exempt":
                awarded = min(awarded, date(2008, 9, 17))
            if earlier < awarded <= last_day:
                rows.append({**base, "award_kind": "renewal", "awarded_on": awarded.isoformat()})
                continue
        tier = rng.choice(TIERS)
        start = date(2003, 1, 1)
        end = date(2008, 9, 17) if tier == "national_inspection_exempt" else last_day
        awarded = start + timedelta(days=rng.randint(0, (end - start).days))
        international = rng.random() < 0.5
        rows.append(
            {
                "product_name": f"{PRODUCTS[index % len(PRODUCTS)]}{index}",
                "brand_name": f"品牌{index % 997}",
                "enterprise_credit_code": credit_code(index),
                "enterprise_name": f"徐州市第{index}食品工業有限公司",
                "county_code": rng.choice(COUNTIES),
                "tier": tier,
                "sector": rng.choice(SECTORS),
                "award_kind": "new",
                "awarded_on": awarded.isoformat(),
                "valid_until": "",
                "international_standard": "true" if international else "false",
                "standard_code": "ISO 9001" if international else "",
                "batch_code": f"批次{awarded.year}-{index % 12}",
            }
        )
    return rows


def csv_payload(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(IMPORT_FIELDS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError(f"server at {url} exited with {proc.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become ready")


@asynccontextmanager
async def server(args: list[str], env: dict[str, str], ready_url: str) -> Any:
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv/bin/uvicorn"),
        *args,
        "--no-access-log",
        "--log-level",
        "warning",
        env={**os.environ, **env},
        cwd=ROOT,
    )
    try:
        await wait_ready(ready_url, proc)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def bench_database() -> Any:
    name = f"qrp_bench_brand_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield name
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def compiled(statement: Any, values: dict[str, Any]) -> str:
    """The statement the service runs, with its parameters written in."""
    return floors.compiled(statement.params(values))


def list_sql(today: date) -> str:
    filters = ListingFilters(**LIST_PARAMS)  # type: ignore[arg-type]
    return compiled(*repository.listing_query(filters=filters, today=today, limit=51))


def stats_sql() -> str:
    year_start, year_end = date(STATS_YEAR, 1, 1), date(STATS_YEAR, 12, 31)
    return compiled(
        *repository.stats_query(
            year_start=year_start, year_end=year_end, as_of=year_end, county_code=None
        )
    )


async def copy_floor(dsn: str, rows: list[dict[str, str]], validity: dict[str, int]) -> float:
    """Seconds for COPY of the same rows into a table shaped and indexed like `brand`."""
    records = []
    for row in rows:
        awarded = date.fromisoformat(row["awarded_on"])
        records.append(
            (
                new_id(), row["product_name"], row["brand_name"], row["enterprise_credit_code"],
                row["enterprise_name"], row["county_code"], row["tier"], row["sector"],
                row["award_kind"], awarded,
                awarded.replace(year=awarded.year + validity[row["tier"]], day=min(awarded.day, 28)),
                row["international_standard"] == "true", row["standard_code"] or None,
                row["batch_code"], "active", False,
                f"{row['product_name']}\n{row['brand_name']}\n{row['enterprise_name']}",
            )
        )  # fmt: skip
    columns = ["id", "product_name", "brand_name", "enterprise_credit_code", "enterprise_name",
               "county_code", "tier", "sector", "award_kind", "awarded_on", "valid_until",
               "international_standard", "standard_code", "batch_code", "status",
               "review_required", "search_text"]  # fmt: skip
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE brand_copy (LIKE brand INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        await connection.execute(
            "ALTER TABLE brand_copy ALTER COLUMN created_at SET DEFAULT now(),"
            " ALTER COLUMN updated_at SET DEFAULT now(), ALTER COLUMN version SET DEFAULT 1"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table("brand_copy", records=records, columns=columns)
        elapsed = time.perf_counter() - started
        await connection.execute("DROP TABLE brand_copy")
    finally:
        await connection.close()
    return elapsed


async def main(rows_count: int, requests: int, concurrency: int, import_only: bool) -> None:
    rows = make_rows(rows_count)
    payload = csv_payload(rows)
    validity = {
        entry["code"]: entry["validity_years"]
        for entry in json.loads((ROOT / "config/brand_tiers.json").read_text(encoding="utf-8"))
    }
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brand-bench-")))
        name = await stack.enter_async_context(bench_database())
        dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url, VERSION_TABLE)
        pair = generate_keypair()
        (workdir / "gateway.pub").write_bytes(pair.public_pem)
        token = TokenMinter(pair.private_pem, issuer="gateway", ttl_seconds=3600).mint(
            audience="brand_registry",
            client_id="bench",
            client_name="Benchmark",
            scopes={"brands:read", "brands:write"},
        )
        auth = {"Authorization": f"Bearer {token}"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        app = await stack.enter_async_context(
            server(
                ["--factory", "brand_registry.app:build_app", "--port", str(port)],
                {
                    "BRAND_REGISTRY_DATABASE_URL": url,
                    "BRAND_REGISTRY_TOKEN_ISSUERS": json.dumps(
                        {"gateway": str(workdir / "gateway.pub")}
                    ),
                    "BRAND_REGISTRY_SECRET_KEY": "bench-" + "x" * 32,
                    "BRAND_REGISTRY_LOG_LEVEL": "WARNING",
                    "BRAND_REGISTRY_VAR_DIR": str(workdir),
                    "PYTHONPATH": f"{ROOT / 'services'}:{ROOT / 'libs'}",
                },
                f"{base}/health/ready",
            )
        )
        rss_before = peak_rss_mib(app.pid)
        service_cpu, database_cpu = floors.cpu_seconds(app.pid), floors.postgres_cpu_seconds()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
            started = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/brands/import",
                data=payload,
                headers={**auth, "Content-Type": "text/csv"},
            ) as response:
                report = await response.json()
                assert response.status == 201, report
            import_seconds = time.perf_counter() - started
        service_cpu = floors.cpu_seconds(app.pid) - service_cpu
        database_cpu = floors.postgres_cpu_seconds() - database_cpu
        rss_peak = peak_rss_mib(app.pid)
        copy_seconds = await copy_floor(dsn, rows, validity)
        import_rate, copy_rate = rows_count / import_seconds, rows_count / copy_seconds
        print(f"import: {rows_count} rows ({len(payload) / 2**20:.1f} MiB CSV)")
        print(f"  service import  {import_seconds:7.2f} s  {import_rate:9.0f} rows/s")
        print(f"  PostgreSQL COPY {copy_seconds:7.2f} s  {copy_rate:9.0f} rows/s")
        print(f"  ratio {100 * import_rate / copy_rate:.1f} % of COPY (floor 5 %)")
        print(
            f"  CPU per row: service {service_cpu / rows_count * 1e6:.0f} µs, PostgreSQL"
            f" {database_cpu / rows_count * 1e6:.0f} µs (2 cores: the two bound the rate at"
            f" {2 * rows_count / (service_cpu + database_cpu):.0f} rows/s)"
        )
        print(f"  server RSS {rss_before:.0f} MiB at start, peak {rss_peak:.0f} MiB")
        if import_only:
            return

        connection = await asyncpg.connect(dsn)
        await connection.execute("ANALYZE")
        some_id = await connection.fetchval("SELECT id FROM brand ORDER BY id LIMIT 1")
        await connection.close()
        list_statement = list_sql(date.today())
        (by_id,) = await floors.fetched_statements(
            repository, repository.listing_row, brand_id="BENCH_ID"
        )
        item_statement = floors.compiled(by_id, placeholders=["BENCH_ID"])
        query = "&".join(f"{k}={v}" for k, v in LIST_PARAMS.items())
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as client:
            await floors.compare(
                [
                    floors.Case(
                        "GET /brands/{id}",
                        lambda _: (f"/api/v1/brands/{some_id}", {}),
                        lambda _: ("/item", {"id": some_id}),
                    ),
                    floors.Case(
                        f"list ({query}, limit=50)",
                        lambda _: ("/api/v1/brands", {**LIST_PARAMS, "limit": 50}),
                        lambda _: ("/list", {}),
                    ),
                ],
                service=(client, app.pid),
                dsn=dsn,
                routes={"/item": item_statement, "/list": list_statement},
                workdir=workdir,
                requests=requests,
                concurrency=concurrency,
            )
        floors.print_plan("the list", await floors.explain(dsn, list_statement))

        sql = stats_sql()
        connection = await asyncpg.connect(dsn)
        try:
            bare_times = []
            for _ in range(25):
                started = time.perf_counter()
                await connection.fetch(sql)
                bare_times.append(time.perf_counter() - started)
        finally:
            await connection.close()
        service_times = []
        async with aiohttp.ClientSession() as session:
            for _ in range(25):
                started = time.perf_counter()
                async with session.get(
                    f"{base}/api/v1/brands/stats?year={STATS_YEAR}", headers=auth
                ) as response:
                    body = await response.json()
                    assert response.status == 200, body
                service_times.append(time.perf_counter() - started)
        bare_ms = statistics.median(bare_times) * 1000
        service_ms = statistics.median(service_times) * 1000
        print(f"stats (year={STATS_YEAR}, every county and tier; median of 25):")
        print(f"  service {service_ms:.1f} ms, bare GROUP BY {bare_ms:.1f} ms,"
              f" ratio {service_ms / bare_ms:.2f}x (ceiling 1.5x)")  # fmt: skip
        print(f"  totals {body['totals']}")
        floors.print_plan("the stats", await floors.explain(dsn, sql))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--import-only", action="store_true", help="stop after the import and its COPY floor"
    )
    options = parser.parse_args()
    asyncio.run(main(options.rows, options.requests, options.concurrency, options.import_only))
