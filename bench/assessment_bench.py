"""Standings time against the slowest single `/stats` call, on PostgreSQL.

Creates four throwaway databases, migrates them, COPYs 1,000,000 spot-checks, 100,000
certificates and 20,000 brand listings straight into the data services' tables, runs the four
services under uvicorn on 127.0.0.1, then times, round by round, three `/stats` calls alone,
the standings' own `/stats` calls (ten for the seed's target set) made all at once, and the
assessment's standings (which makes those calls in parallel and computes).
Drops the databases at the end.

    .venv/bin/python bench/assessment_bench.py [--spot-checks N] [--certificates N] [--brands N]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres (default)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "libs")]

from assessment.schemas import TargetSetCreate  # noqa: E402
from assessment.sources import ENDPOINTS, Endpoint  # noqa: E402
from assessment.standings import queries_for  # noqa: E402
from kit.auth import TokenMinter, write_keypair  # noqa: E402
from scripts.processes import ServiceProcess, finish_migrations  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
YEAR = 2007
COUNTIES = [r["code"] for r in json.loads((ROOT / "config" / "regions.json").read_text())]
TIERS = ["china_famous", "national_inspection_exempt", "provincial_famous", "city_famous"]
STATS = {
    "brand_registry": ("/api/v1/brands/stats", "brands:read", {}),
    "certification": ("/api/v1/certificates/stats", "certificates:read", {}),
    "inspection": (
        "/api/v1/spot-checks/stats",
        "spot-checks:read",
        {"levels": "national,provincial"},
    ),
}


def _day(rng: random.Random, start: date, span: int) -> date:
    return start + timedelta(days=rng.randrange(span))


def brand_rows(n: int, now: datetime) -> Iterator[tuple[object, ...]]:
    rng = random.Random(1)
    for i in range(n):
        awarded = _day(rng, date(2004, 1, 1), 4 * 365)
        international = rng.random() < 0.5
        yield (
            str(uuid.uuid4()), f"產品{i}", f"品牌{i}", f"91320300{i:09d}"[:17] + "0", f"企業{i}",
            rng.choice(COUNTIES), rng.choice(TIERS), "industry",
            "new" if rng.random() < 0.7 else "renewal", awarded, awarded + timedelta(days=3 * 365),
            international, "IEC 60335" if international else None, "active", False, f"產品{i} 品牌{i}",
            now, now, 1,
        )  # fmt: skip


def certificate_rows(n: int, now: datetime) -> Iterator[tuple[object, ...]]:
    rng = random.Random(2)
    for i in range(n):
        issued = _day(rng, date(2004, 1, 1), 4 * 365)
        yield (
            str(uuid.uuid4()), f"00107Q{i:07d}", rng.choice(["ISO 9001:2000", "ISO 14001:2004"]),
            "中國質量認證中心", f"91320300{i % 60000:09d}"[:17] + "0", f"企業{i}",
            rng.choice(COUNTIES), "生產", "[]", issued, issued + timedelta(days=3 * 365), issued,
            False, "valid", issued, now, now, 1, "management_system", "[]",
        )  # fmt: skip


def spot_check_rows(n: int, now: datetime) -> Iterator[tuple[object, ...]]:
    rng = random.Random(3)
    levels = ["national", "provincial", "city"]
    for i in range(n):
        sampled = _day(rng, date(2006, 1, 1), 2 * 365)
        result = "pass" if rng.random() < 0.93 else "fail"
        row_id = str(uuid.uuid4())
        yield (
            row_id, f"P{sampled.year}-{i % 50}", rng.choice(levels), "food", "醬油",
            f"91320300{i % 90000:09d}"[:17] + "0", f"企業{i}", rng.choice(COUNTIES), f"S{i}",
            sampled, result, "[]", False, False, False, sampled + timedelta(days=20), row_id,
            result, "bench", now, now, 1,
        )  # fmt: skip


COPIES = {
    "brand_registry": (
        "brand",
        ["id", "product_name", "brand_name", "enterprise_credit_code", "enterprise_name",
         "county_code", "tier", "sector", "award_kind", "awarded_on", "valid_until",
         "international_standard", "standard_code", "status", "review_required", "search_text",
         "created_at",
         "updated_at", "version"],
        brand_rows,
    ),
    "certification": (
        "certificate",
        ["id", "certificate_number", "standard", "certification_body", "enterprise_credit_code",
         "enterprise_name", "county_code", "scope", "sites", "issued_on", "expires_on",
         "original_issued_on", "confidential", "status", "status_since", "created_at",
         "updated_at", "version", "kind", "product_categories"],
        certificate_rows,
    ),
    "inspection": (
        "spot_check",
        ["id", "plan_code", "level", "product_category", "product_name",
         "enterprise_credit_code", "enterprise_name", "county_code", "sample_code", "sampled_on",
         "result", "nonconforming_items", "mandatory_standard_violation", "refused",
         "unlicensed_referral", "published_on", "root_id", "final_result", "created_by",
         "created_at", "updated_at", "version"],
        spot_check_rows,
    ),
}  # fmt: skip


def _dsn(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def copy_rows(
    database: str, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]
) -> None:
    connection = await asyncpg.connect(_dsn(database))
    try:
        batch: list[tuple[object, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 50_000:
                await connection.copy_records_to_table(table, records=batch, columns=columns)
                batch.clear()
        if batch:
            await connection.copy_records_to_table(table, records=batch, columns=columns)
        await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()


async def timed_at_once(
    calls: list[tuple[Endpoint, dict[str, str]]],
    urls: dict[str, str],
    token: Callable[[str, str], str],
    params: dict[str, object],
) -> float:
    """The time the standings' own `/stats` calls take made all at once, as its fan-out
    makes them."""
    async with httpx.AsyncClient(timeout=120) as client:

        async def call(endpoint: Endpoint, extra: dict[str, str]) -> None:
            response = await client.get(
                urls[endpoint.service] + endpoint.path,
                params={**params, **extra},
                headers={"Authorization": f"Bearer {token(endpoint.service, endpoint.scope)}"},
            )
            assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(call(endpoint, extra) for endpoint, extra in calls))
        return time.perf_counter() - started


def timed_get(client: httpx.Client, url: str, **kwargs: object) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, response


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spot-checks", type=int, default=1_000_000)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--brands", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    counts = {
        "brand_registry": args.brands,
        "certification": args.certificates,
        "inspection": args.spot_checks,
    }
    tag = uuid.uuid4().hex[:8]
    names = {s: f"qrp_bench_{s}_{tag}" for s in (*counts, "assessment")}
    admin = await asyncpg.connect(ADMIN_URL)
    for name in names.values():
        await admin.execute(f'CREATE DATABASE "{name}"')
    processes: dict[str, ServiceProcess] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="qrp-bench-") as tmp_text:
            tmp = Path(tmp_text)
            keys = tmp / "keys"
            gateway = write_keypair(keys, "gateway")
            write_keypair(keys, "assessment")
            base = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
            base.pop("QRP_DEMO", None)
            for service, database in names.items():
                prefix = service.upper()
                env = {
                    **base,
                    f"{prefix}_DATABASE_URL": "postgresql+asyncpg"
                    + _dsn(database)[len("postgresql") :],
                    f"{prefix}_VAR_DIR": str(tmp),
                    f"{prefix}_LOG_LEVEL": "WARNING",
                }
                processes[service] = ServiceProcess(
                    name=service, env=env, log_path=tmp / f"{service}.log"
                )
            processes["inspection"].env["INSPECTION_OUTBOX_ENABLED"] = "false"
            processes["assessment"].env.update(
                ASSESSMENT_BRAND_REGISTRY_URL=processes["brand_registry"].url,
                ASSESSMENT_CERTIFICATION_URL=processes["certification"].url,
                ASSESSMENT_INSPECTION_URL=processes["inspection"].url,
                ASSESSMENT_SERVICE_PRIVATE_KEY_FILE=str(keys / "assessment.pem"),
                ASSESSMENT_STATS_DEADLINE_SECONDS="60",
                ASSESSMENT_STATS_TIMEOUT_SECONDS="30",
            )
            finish_migrations({s: p.migration() for s, p in processes.items()})
            now = datetime.now(UTC)
            started = time.perf_counter()
            await asyncio.gather(
                *[
                    copy_rows(names[s], table, columns, rows(counts[s], now))
                    for s, (table, columns, rows) in COPIES.items()
                ]
            )
            print(f"loaded {counts} in {time.perf_counter() - started:.1f} s")
            for process in processes.values():
                process.start(wait=False)
            for process in processes.values():
                process.wait_ready()
            minter = TokenMinter(gateway.private_pem, issuer="gateway", ttl_seconds=3600)

            def client(service: str, *scopes: str) -> httpx.Client:
                token = minter.mint(
                    audience=service, client_id="bench", client_name="bench", scopes=set(scopes)
                )
                return httpx.Client(
                    base_url=processes[service].url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )

            seed = json.loads(
                (ROOT / "config" / "target_sets" / "2007.json").read_text(encoding="utf-8")
            )
            with client("assessment", "assessments:read", "assessments:write") as assessment:
                assert assessment.put(f"/api/v1/target-sets/{YEAR}", json=seed).status_code == 201
                assessment.put(
                    f"/api/v1/reference-values/{YEAR}/provincial_spot_check_pass_rate",
                    json={"value": 0.92, "source": "bench", "published_on": "2008-01-15"},
                )
                stats_clients = {s: client(s, scope) for s, (_, scope, _) in STATS.items()}
                params = {"year": YEAR, "as_of": f"{YEAR}-12-31"}
                fan_out = [
                    (ENDPOINTS[query.source], dict(query.params))
                    for query in queries_for(TargetSetCreate.model_validate(seed).indicators)
                ]
                urls = {service: process.url for service, process in processes.items()}
                tokens = {
                    (endpoint.service, endpoint.scope): minter.mint(
                        audience=endpoint.service,
                        client_id="bench",
                        client_name="bench",
                        scopes={endpoint.scope},
                    )
                    for endpoint, _ in fan_out
                }
                slowest, serial, standings, together = [], [], [], []
                for round_number in range(args.rounds + 1):
                    times = {}
                    for service, (path, _, extra) in STATS.items():
                        elapsed, response = timed_get(
                            stats_clients[service], path, params={**params, **extra}
                        )
                        assert response.status_code == 200, response.text
                        times[service] = elapsed
                    at_once = await timed_at_once(
                        fan_out, urls, lambda service, scope: tokens[(service, scope)], params
                    )
                    elapsed, response = timed_get(
                        assessment, f"/api/v1/assessments/{YEAR}/standings"
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["meta"]["complete"], response.json()["meta"]
                    if round_number == 0:
                        continue  # warm-up
                    slowest.append(max(times.values()))
                    serial.append(sum(times.values()))
                    standings.append(elapsed)
                    together.append(at_once)
                    line = ", ".join(f"{s} {t * 1000:.0f} ms" for s, t in times.items())
                    print(
                        f"round {round_number}: {line}; the standings' {len(fan_out)} calls at"
                        f" once {at_once * 1000:.0f} ms; standings {elapsed * 1000:.0f} ms"
                    )
                for c in stats_clients.values():
                    c.close()
            median_slowest = statistics.median(slowest)
            median_standings = statistics.median(standings)
            print(f"median slowest single stats call: {median_slowest * 1000:.0f} ms")
            print(f"median sum of the three stats calls: {statistics.median(serial) * 1000:.0f} ms")
            print(f"median standings (fan-out + compute): {median_standings * 1000:.0f} ms")
            print(f"standings / slowest stats call: {median_standings / median_slowest:.2f}")
            median_together = statistics.median(together)
            print(
                f"median of the standings' own {len(fan_out)} stats calls made at once:"
                f" {median_together * 1000:.0f} ms; standings / that:"
                f" {median_standings / median_together:.2f}"
            )
    finally:
        for process in processes.values():
            process.stop()
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
