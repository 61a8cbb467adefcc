"""What the bounded request head costs and what it saves: uvicorn's own httptools protocol
against `kit.serve`'s `BoundedHeadersProtocol`, serving the same trivial app on 127.0.0.1.

For each server it prints:
- the trivial route at concurrency 1 and 16 (keep-alive connections, requests/s and the
  server's CPU per request, read from /proc);
- the server's RSS before and after ten clients each send an endless header (4 KiB chunks)
  for `--attack-seconds`, and what each of those clients was answered.

    .venv/bin/python bench/header_limits_bench.py [--seconds 4] [--attack-seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from fastapi import FastAPI

from scripts.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
REQUEST = b"GET /ping HTTP/1.1\r\nHost: bench\r\nX-API-Key: qrp_bench_0123456789abcdef\r\n\r\n"
TICKS = os.sysconf("SC_CLK_TCK")


def build_app() -> FastAPI:
    """The trivial app both servers run."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _client(port: int, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        counts[0] += 1
    writer.close()


async def _load(port: int, concurrency: int, seconds: float) -> int:
    counts = [0]
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, deadline, counts) for _ in range(concurrency)))
    return counts[0]


async def _endless_header(port: int, seconds: float) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ping HTTP/1.1\r\nHost: bench\r\nX-Endless: ")
    deadline = time.perf_counter() + seconds
    answer = b""
    try:
        while time.perf_counter() < deadline:
            writer.write(b"a" * 4096)
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(200), 0.001)
            except TimeoutError:
                continue
            if answer or reader.at_eof():
                break
    except ConnectionError:
        pass
    writer.close()
    return answer.split(b"\r\n", 1)[0].decode() or "no answer (still reading)"


def _start(kind: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "uvicorn httptools":
        args = ["-m", "uvicorn", "--http", "httptools", "--factory"]
    else:
        args = ["-m", "kit.serve"]
    args += ["bench.header_limits_bench:build_app", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--no-access-log"]
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _wait(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def measure(kind: str, seconds: float, attack_seconds: float) -> None:
    port = free_port()
    process = _start(kind, port)
    try:
        await _wait(port)
        await _load(port, 4, 1)
        for concurrency in (1, 16):
            cpu = _cpu_seconds(process.pid)
            done = await _load(port, concurrency, seconds)
            used = _cpu_seconds(process.pid) - cpu
            print(
                f"{kind:20} c={concurrency:<3} {done / seconds:8.0f} req/s  "
                f"{used / done * 1e6:6.0f} µs server CPU per request"
            )
        before = _rss_mib(process.pid)
        answers = await asyncio.gather(*(_endless_header(port, attack_seconds) for _ in range(10)))
        after = _rss_mib(process.pid)
        print(
            f"{kind:20} RSS {before:.0f} MiB → {after:.0f} MiB under ten endless headers "
            f"({attack_seconds:.0f} s); answers: {sorted(set(answers))}"
        )
    finally:
        process.terminate()
        process.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--attack-seconds", type=float, default=6)
    arguments = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  header limits bench")
    for kind in ("uvicorn httptools", "kit.serve"):
        await measure(kind, arguments.seconds, arguments.attack_seconds)


if __name__ == "__main__":
    asyncio.run(main())
