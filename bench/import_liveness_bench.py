"""Whether a CSV upload holds the event loop: `/health/live` of the brand registry, polled
every 10 ms while the same process takes a 100,000-row import and each hostile upload.

    .venv/bin/python bench/import_liveness_bench.py [--rows 100000] [--tree PATH]

Runs the service under `python -m kit.serve` on a free local port, on a SQLite database in a
temporary directory, with a token minted here. `--tree` runs another checkout of the code
(a `git worktree` of an earlier commit, for a before/after comparison): its `libs/` and
`services/` are put first on the service's path. For each case it prints the upload's status
and time (a hostile upload is sent `--repeat` times in turn), and the p50, p99 and slowest
answer of `/health/live` meanwhile, polled from a process of its own (a poll waits for its
answer, so a loop held for 300 ms shows as a 300 ms answer).

Cases: the import of valid rows; a header of 20,000 columns (129 KB); a row of 200,000
columns; a row with one cell of 131,073 characters; a 50 MB file of one line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import queue
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "libs"), str(ROOT)]

from kit.auth import TokenMinter, generate_keypair  # noqa: E402
from kit.identifiers import credit_code_check_char  # noqa: E402
from scripts.processes import free_port  # noqa: E402

FIELDS = ["product_name", "brand_name", "enterprise_credit_code", "enterprise_name",
          "county_code", "tier", "sector", "award_kind", "awarded_on", "valid_until",
          "international_standard", "standard_code", "batch_code"]  # fmt: skip
COUNTIES = ["320302", "320303", "320305", "320311", "320321", "320322", "320323", "320324",
            "320381", "320382"]  # fmt: skip
TIERS = ["provincial_famous", "city_famous"]
POLL_SECONDS = 0.010


def credit_code(number: int) -> str:
    first17 = f"91320303{number:09d}"
    return first17 + credit_code_check_char(first17)


def valid_row(index: int, rng: random.Random) -> dict[str, str]:
    """A new award of the last two years, each of its own enterprise (no rule refuses it)."""
    awarded = date.today() - timedelta(days=rng.randint(30, 700))
    return {
        "product_name": f"產品{index}",
        "brand_name": f"品牌{index % 997}",
        "enterprise_credit_code": credit_code(index),
        "enterprise_name": f"徐州市第{index}食品工業有限公司",
        "county_code": rng.choice(COUNTIES),
        "tier": rng.choice(TIERS),
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": awarded.isoformat(),
        "valid_until": "",
        "international_standard": "false",
        "standard_code": "",
        "batch_code": f"批次{awarded.year}",
    }


def csv_of(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode()


def cases(rows: int) -> list[tuple[str, Callable[[], bytes]]]:
    rng = random.Random(20261202)
    header = ",".join(FIELDS).encode() + b"\r\n"
    return [
        (f"import of {rows:,} rows", lambda: csv_of([valid_row(i, rng) for i in range(rows)])),
        (
            "header of 20,000 columns (129 KB)",
            lambda: ",".join(f"c{i:05d}" for i in range(20_000)).encode()[:132_000] + b"\r\n",
        ),
        ("row of 200,000 columns", lambda: header + b",".join([b"x"] * 200_000) + b"\r\n"),
        (
            "cell of 131,073 characters",
            lambda: csv_of([{**valid_row(0, rng), "product_name": "名" * 131_073}]),
        ),
        ("50 MB file of one line", lambda: b"x" * (50 * 1024 * 1024)),
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _poll(base: str, done: Any, latencies: Any) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        while not done.is_set():
            started = time.perf_counter()
            response = client.get("/health/live")
            latencies.put(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            time.sleep(POLL_SECONDS)


class Poller:
    """GET /health/live every 10 ms from a process of its own, so the uploading client
    cannot delay the polls; a poll waits for its answer."""

    def __init__(self, base: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.done = context.Event()
        self.queue: Any = context.Queue()
        self.process = context.Process(target=_poll, args=(base, self.done, self.queue))

    def __enter__(self) -> Poller:
        self.process.start()
        self.queue.get(timeout=30)  # the first answer: the poller is running
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()

    def latencies(self) -> list[float]:
        found = []
        self.process.join(timeout=30)
        while True:
            try:
                found.append(self.queue.get(timeout=0.5))
            except queue.Empty:
                return found


def idle(base: str, seconds: float = 3.0) -> list[float]:
    """The polls' latencies while nothing else is sent: the floor of the figures."""
    poller = Poller(base)
    with poller:
        time.sleep(seconds)
    return poller.latencies()


def run_case(base: str, token: str, body: bytes, times: int) -> tuple[set[int], float, list[float]]:
    """Send `body` `times` times in turn while polling; the statuses, the time of one upload
    and the polls' latencies."""
    statuses = set()
    poller = Poller(base)
    with poller, httpx.Client(base_url=base, timeout=900) as client:
        started = time.perf_counter()
        for _ in range(times):
            response = client.post(
                "/api/v1/brands/import",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            )
            statuses.add(response.status_code)
        elapsed = (time.perf_counter() - started) / times
    return statuses, elapsed, poller.latencies()


def start_service(tree: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Migrate and start the brand registry of `tree`; wait until it is ready."""
    env = {
        **os.environ,
        "BRAND_REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'brand_registry.db'}",
        "BRAND_REGISTRY_TOKEN_ISSUERS": json.dumps({"gateway": str(workdir / "gateway.pub")}),
        "BRAND_REGISTRY_SECRET_KEY": "bench-" + "x" * 32,
        "BRAND_REGISTRY_LOG_LEVEL": "WARNING",
        "BRAND_REGISTRY_VAR_DIR": str(workdir),
        "PYTHONPATH": f"{tree / 'libs'}:{tree / 'services'}",
    }
    subprocess.run(
        [sys.executable, "-m", "kit.migrate", "brand_registry"],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log = (workdir / "service.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kit.serve",
            "brand_registry.app:build_app",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError((workdir / "service.log").read_text()[-3000:])


def main(rows: int, tree: Path, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="liveness-bench-") as directory:
        workdir = Path(directory)
        port = free_port()
        pair = generate_keypair()
        (workdir / "gateway.pub").write_bytes(pair.public_pem)
        process = start_service(tree, workdir, port)
        try:
            token = TokenMinter(pair.private_pem, issuer="gateway", ttl_seconds=3600).mint(
                audience="brand_registry",
                client_id="bench",
                client_name="Benchmark",
                scopes={"brands:read", "brands:write"},
            )
            print(f"tree {tree}; /health/live polled every {POLL_SECONDS * 1000:.0f} ms")
            print(f"{'case':36s} {'status':>6s} {'upload':>8s} {'polls':>6s} "
                  f"{'p50':>8s} {'p99':>8s} {'max':>8s}")  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            floor = idle(base)
            print(
                f"{'idle (no upload)':36s} {'-':>6s} {'-':>8s} {len(floor):6d} "
                f"{pct(floor, 0.5) * 1000:6.1f}ms {pct(floor, 0.99) * 1000:6.1f}ms "
                f"{max(floor) * 1000:6.1f}ms",
                flush=True,
            )
            for index, (label, build) in enumerate(cases(rows)):
                body = build()
                times = 1 if index == 0 else repeat
                statuses, elapsed, latencies = run_case(base, token, body, times)
                status = ",".join(map(str, sorted(statuses)))
                print(
                    f"{label:36s} {status:>6s} {elapsed:7.2f}s {len(latencies):6d} "
                    f"{pct(latencies, 0.5) * 1000:6.1f}ms {pct(latencies, 0.99) * 1000:6.1f}ms "
                    f"{max(latencies) * 1000:6.1f}ms",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run")
    parser.add_argument(
        "--repeat", type=int, default=20, help="each hostile upload is sent this many times"
    )
    arguments = parser.parse_args()
    main(arguments.rows, arguments.tree.resolve(), arguments.repeat)
