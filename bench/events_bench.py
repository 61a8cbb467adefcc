"""What change events cost and how fast they travel, on PostgreSQL and Redis, all on 127.0.0.1.

It starts the whole suite as local processes (`scripts/local_suite.py`, databases created for
the run and dropped after it) and measures:

1. The added latency of a write that emits an event: `POST /api/v1/brands` (one listing, one
   `brand.created` event in its transaction) on the brand registry as it runs, against a second
   brand registry process on the same database whose emits are replaced by no-ops for the
   baseline. The two take turns in rounds (`--rounds`, `--writes` each at concurrency 1), each
   going first in every other round, so the machine's drift falls on both alike; p50 and p99
   are medians over the rounds.
2. Outbox -> feed: an import of `--events` listings writes as many events in its transaction;
   a reader then pages through them (1,000 a page), from the brand registry's own feed and from
   the gateway's merged feed, numbered (`kit.events.sequence_due`) by the first read or by the service's background loop.
3. Outbox -> webhook: a subscription to `brand.created` with a receiver on 127.0.0.1 that checks
   every signature with `standardwebhooks`; the time from the import's answer until the receiver
   has every one of its events, and the deliveries per second.

    .venv/bin/python bench/events_bench.py [--rounds 5] [--writes 300] [--events 5000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kit.auth import TokenMinter  # noqa: E402
from kit.identifiers import credit_code_check_char  # noqa: E402
from scripts.local_suite import local_suite  # noqa: E402
from scripts.processes import free_port  # noqa: E402

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/13"
COUNTIES = ("320303", "320311", "320321", "320322", "320323", "320381", "320382")
WITHOUT_EVENTS = """
import runpy, sys
import kit.events
import brand_registry.service as service

async def _nothing(*args, **kwargs):
    return None

kit.events.emit_many = service.emit_many = service.emit = _nothing
sys.argv = ["kit.serve", "brand_registry.app:build_app", "--host", "127.0.0.1",
            "--port", sys.argv[1], "--no-access-log"]
runpy.run_module("kit.serve", run_name="__main__")
"""
"""The baseline brand registry: the same app with every emit a no-op."""


def credit_code(county: str) -> str:
    body = "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    first17 = "91" + county + body + "0"
    return first17 + credit_code_check_char(first17)


def listing(n: int) -> dict[str, Any]:
    county = COUNTIES[n % len(COUNTIES)]
    return {
        "product_name": f"電纜{n}",
        "brand_name": "淮海",
        "enterprise_credit_code": credit_code(county),
        "enterprise_name": f"徐州電纜有限公司{n}",
        "county_code": county,
        "tier": "city_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": f"{date.today().year - 1}-03-15",
        "international_standard": False,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed_writes(client: httpx.Client, url: str, writes: int) -> list[float]:
    seconds = []
    for n in range(writes):
        started = time.perf_counter()
        answer = client.post(f"{url}/api/v1/brands", json=listing(n))
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 201, answer.text
    return seconds


class Receiver(ThreadingHTTPServer):
    """Counts the deliveries whose signature verifies, by event id, with their arrival time."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.webhook: Webhook | None = None
        self.arrived: dict[str, tuple[float, dict[str, Any]]] = {}
        self.rejected = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            assert self.server.webhook is not None
            event = self.server.webhook.verify(body, dict(self.headers.items()))
        except Exception:
            with self.server.lock:
                self.server.rejected += 1
            self.send_response(400)
            self.end_headers()
            return
        with self.server.lock:
            self.server.arrived.setdefault(event["id"], (time.monotonic(), event))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def import_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()})
    return out.getvalue().encode()


def read_feed(client: httpx.Client, url: str, after: str | None, wanted: int) -> tuple[int, float]:
    """Pages through the feed from `after` until `wanted` events came; (events, seconds)."""
    started, count = time.perf_counter(), 0
    while count < wanted:
        params: dict[str, Any] = {"limit": 1000, "type": "brand.created"}
        if after is not None:
            params["after"] = after
        page = client.get(f"{url}/api/v1/events", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["items"]:
            break
        count += len(body["items"])
        after = str(body.get("next") or body.get("next_after"))
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  events bench (PostgreSQL, {os.cpu_count()} cores)")

    with local_suite(postgres_url=POSTGRES, redis_url=REDIS) as suite:
        env = suite.environment()
        keys = suite.workdir / "keys"
        minter = TokenMinter(
            (keys / "gateway.pem").read_bytes(), issuer="gateway", ttl_seconds=7200
        )
        scopes = {"brands:read", "brands:write", "events:read"}
        token = minter.mint(
            audience="brand_registry", client_id="bench", client_name="bench", scopes=scopes
        )
        baseline_port = free_port()
        with (suite.workdir / "baseline.log").open("wb") as log:
            baseline = subprocess.Popen(
                [sys.executable, "-c", WITHOUT_EVENTS, str(baseline_port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        try:
            baseline_url = f"http://127.0.0.1:{baseline_port}"
            emitting_url = suite.url("brand_registry")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(headers=headers, timeout=60) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if client.get(f"{baseline_url}/health/ready").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                write_latency(client, emitting_url, baseline_url, args)
            with httpx.Client(base_url=suite.gateway_url, timeout=120) as gateway:
                throughput(gateway, suite.admin_key, headers, emitting_url, args.events)
        finally:
            baseline.terminate()
            baseline.wait(10)


def write_latency(
    client: httpx.Client, emitting_url: str, baseline_url: str, args: argparse.Namespace
) -> None:
    timed_writes(client, emitting_url, 30)
    timed_writes(client, baseline_url, 30)
    rounds: dict[str, list[tuple[float, float]]] = {"with event": [], "without": []}
    sides = [("with event", emitting_url), ("without", baseline_url)]
    for round_number in range(args.rounds):
        # Each side goes first in every other round, so neither always follows the other.
        for name, url in sides if round_number % 2 == 0 else sides[::-1]:
            seconds = timed_writes(client, url, args.writes)
            rounds[name].append((percentile(seconds, 0.5), percentile(seconds, 0.99)))
    print(f"\nPOST /api/v1/brands at c=1, {args.rounds} rounds of {args.writes} each side")
    p50 = {}
    for name, figures in rounds.items():
        p50[name] = statistics.median(f[0] for f in figures) * 1000
        p99 = statistics.median(f[1] for f in figures) * 1000
        print(f"  {name:11s} p50 {p50[name]:6.2f} ms   p99 {p99:6.2f} ms")
    added = statistics.median(
        (emitting[0] - plain[0]) / plain[0]
        for emitting, plain in zip(rounds["with event"], rounds["without"], strict=True)
    )
    print(
        f"  the event adds {p50['with event'] - p50['without']:+.2f} ms at p50; the median of "
        f"the rounds' own differences {added:+.1%}"
    )


def throughput(
    gateway: httpx.Client,
    admin_key: str,
    service_headers: dict[str, str],
    service_url: str,
    events: int,
) -> None:
    made = gateway.post(
        "/api/v1/admin/clients",
        headers={"X-API-Key": admin_key},
        json={
            "name": "events-bench",
            "scopes": ["brands:read", "brands:write", "events:read", "webhooks:manage"],
            "rate_limit": "100000/minute",
        },
    )
    assert made.status_code == 201, made.text
    gateway.headers["X-API-Key"] = made.json()["api_key"]
    end = gateway.get("/api/v1/events", params={"limit": 1000, "type": "brand.created"})
    after_gateway = end.json()["next"]
    while end.json()["items"]:
        end = gateway.get(
            "/api/v1/events",
            params={"limit": 1000, "type": "brand.created", "after": after_gateway},
        )
        after_gateway = end.json()["next"]
    after_service = "0"
    while True:
        page = httpx.get(
            f"{service_url}/api/v1/events",
            params={"limit": 1000, "type": "brand.created", "after": after_service},
            headers=service_headers,
        ).json()
        if not page["items"]:
            break
        after_service = str(page["next_after"])

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    subscription = gateway.post(
        "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["brand.created"]}
    )
    assert subscription.status_code == 201, subscription.text
    receiver.webhook = Webhook(subscription.json()["secret"])

    rows = [listing(100_000 + n) for n in range(events)]
    body = import_csv(rows)
    started = time.perf_counter()
    imported = gateway.post(
        "/api/v1/brands/import", content=body, headers={"Content-Type": "text/csv"}
    )
    imported_at = time.monotonic()
    assert imported.status_code in (200, 201), imported.text[:500]
    print(
        f"\nimport of {events:,} listings (one brand.created each): "
        f"{time.perf_counter() - started:.2f} s"
    )

    with httpx.Client(headers=service_headers, timeout=120) as direct:
        count, seconds = read_feed(direct, service_url, after_service, events)
    print(
        f"  outbox -> brand registry feed: {count:,} events in {seconds:.2f} s "
        f"({count / seconds:,.0f} events/s, numbered by this read or the background loop)"
    )
    count, seconds = read_feed(gateway, "", after_gateway, events)
    print(
        f"  outbox -> gateway merged feed: {count:,} events in {seconds:.2f} s "
        f"({count / seconds:,.0f} events/s)"
    )

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(receiver.arrived) < events:
        time.sleep(0.2)
    arrivals = sorted(at for at, _ in receiver.arrived.values())
    if arrivals:
        spent = arrivals[-1] - imported_at
        print(
            f"  outbox -> webhook: {len(arrivals):,} of {events:,} delivered and verified "
            f"{spent:.2f} s after the import answered ({len(arrivals) / spent:,.0f}/s; "
            f"first after {arrivals[0] - imported_at:.2f} s); {receiver.rejected} rejected"
        )
    receiver.shutdown()


if __name__ == "__main__":
    main()
