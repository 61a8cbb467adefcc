"""Peak memory of the brand registry while it imports a 100,000-row .xlsx workbook and
exports the same listings as a workbook.

    .venv/bin/python bench/xlsx_bench.py [--rows 100000]

Runs the service under `python -m kit.serve` on a SQLite database in a temporary directory
(as bench/import_liveness_bench.py does), builds the workbook here (Chinese column labels,
awards as date cells), and samples the resident set size of the service's processes every
20 ms from /proc during each step: it prints the RSS before, the highest sampled during the
step, and the kernel's high-water mark (VmHWM) after it, with the step's time and the p99 and
slowest answer of `/health/live`, polled every 10 ms meanwhile from a process of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import xlsxwriter

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "libs"), str(ROOT / "services"), str(ROOT), str(ROOT / "bench")]

from import_liveness_bench import FIELDS, Poller, pct, start_service, valid_row  # noqa: E402

from brand_registry.schemas import LABELS  # noqa: E402
from kit.auth import TokenMinter, generate_keypair  # noqa: E402
from kit.xlsxio import XLSX_MEDIA_TYPE  # noqa: E402
from scripts.processes import free_port  # noqa: E402

SAMPLE_SECONDS = 0.020


def workbook_of(rows: int) -> bytes:
    """`rows` valid listings under the Chinese labels, dates as date cells."""
    rng = random.Random(20261202)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True})
    sheet = book.add_worksheet("名牌")
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for column, name in enumerate(FIELDS):
        sheet.write_string(0, column, LABELS[name])
    for index in range(rows):
        values = valid_row(index, rng)
        for column, name in enumerate(FIELDS):
            value = values[name]
            if name == "awarded_on":
                day = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0))
                sheet.write_datetime(index + 1, column, day, dates)
            elif value:
                sheet.write_string(index + 1, column, value)
    book.close()
    return buffer.getvalue()


def _status(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found.extend(_tree(int(child)))
    return found


class RssSampler:
    """The highest RSS (summed over the process and its children) seen while active."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return sum(_status(pid, "VmRSS") for pid in _tree(self.pid))

    def hwm(self) -> int:
        return max(_status(pid, "VmHWM") for pid in _tree(self.pid))

    def _run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.rss())


def mib(value: int) -> str:
    return f"{value / 1024 / 1024:7.1f} MiB"


def main(rows: int) -> None:
    started = time.perf_counter()
    body = workbook_of(rows)
    print(f"workbook of {rows:,} rows: {len(body) / 1024 / 1024:.1f} MiB, built in "
          f"{time.perf_counter() - started:.1f}s")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="xlsx-bench-") as directory:
        workdir = Path(directory)
        port = free_port()
        pair = generate_keypair()
        (workdir / "gateway.pub").write_bytes(pair.public_pem)
        process = start_service(ROOT, workdir, port)
        try:
            token = TokenMinter(pair.private_pem, issuer="gateway", ttl_seconds=3600).mint(
                audience="brand_registry",
                client_id="bench",
                client_name="Benchmark",
                scopes={"brands:read", "brands:write"},
            )
            auth = {"Authorization": f"Bearer {token}"}
            base = f"http://127.0.0.1:{port}"
            print(f"{'step':28s} {'status':>6s} {'time':>8s} {'RSS before':>12s} "
                  f"{'peak RSS':>12s} {'VmHWM after':>12s} {'live p99':>9s} "
                  f"{'live max':>9s}")  # fmt: skip
            with httpx.Client(base_url=base, timeout=1800) as client:
                for label, call in (
                    (
                        f"import of {rows:,} rows",
                        lambda: client.post(
                            "/api/v1/brands/import",
                            content=body,
                            headers={**auth, "Content-Type": XLSX_MEDIA_TYPE},
                        ),
                    ),
                    (
                        f"export of {rows:,} rows",
                        lambda: client.get(
                            "/api/v1/brands/export", params={"format": "xlsx"}, headers=auth
                        ),
                    ),
                ):
                    sampler = RssSampler(process.pid)
                    before = sampler.rss()
                    began = time.perf_counter()
                    poller = Poller(base)
                    with poller, sampler:
                        response = call()
                    elapsed = time.perf_counter() - began
                    polls = poller.latencies()
                    print(
                        f"{label:28s} {response.status_code:6d} {elapsed:7.1f}s "
                        f"{mib(before):>12s} {mib(sampler.peak):>12s} "
                        f"{mib(sampler.hwm()):>12s} {pct(polls, 0.99) * 1000:7.1f}ms "
                        f"{max(polls) * 1000:7.1f}ms",
                        flush=True,
                    )
                    if response.status_code >= 300:
                        print(response.text[:2000])
                    elif "export" in label:
                        print(f"{'':28s} export is {len(response.content) / 1024 / 1024:.1f} MiB")
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    main(parser.parse_args().rows)
