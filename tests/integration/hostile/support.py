"""What the hostile-input tests share: a watch on `/health/live`, and the figures they measure."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[3]
FIGURES = ROOT / "test-output" / "hostile.txt"
_figures: list[str] = []


def record(figure: str) -> None:
    """Keep one measured figure for the end of the run."""
    _figures.append(figure)


def figures() -> list[str]:
    """The figures kept so far, also written to `test-output/hostile.txt`."""
    if _figures:
        FIGURES.parent.mkdir(exist_ok=True)
        FIGURES.write_text("\n".join(_figures) + "\n")
    return list(_figures)


class Liveness:
    """Polls a process's `/health/live` every 10 ms from a thread of its own while in effect."""

    def __init__(self, url: str, interval: float = 0.01) -> None:
        self.url = url.rstrip("/") + "/health/live"
        self.interval = interval
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._during = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.failures += not ok
                self._stop.wait(self.interval)

    def __enter__(self) -> Liveness:
        self._thread.start()
        deadline = time.monotonic() + 5
        while not self.latencies_ms and time.monotonic() < deadline:
            time.sleep(0.005)
        self._during = len(self.latencies_ms)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        deadline = time.monotonic() + 5
        while len(self.latencies_ms) < self._during + 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        self._stop.set()
        self._thread.join(15)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0

    def summary(self) -> str:
        ordered = sorted(self.latencies_ms)
        median = ordered[len(ordered) // 2] if ordered else 0.0
        return (
            f"/health/live p50 {median:.1f} ms, p99 {self.p99:.1f} ms,"
            f" max {max(ordered, default=0.0):.1f} ms over {len(ordered)} probes"
        )
