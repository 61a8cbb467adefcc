"""The gateway's forwarding transport against the alternatives, each in the same minimal proxy.

A kit service answers about 2 KB of JSON (the gateway benchmark's trivial endpoint); in front
of it, one uvicorn process per transport runs a bare ASGI app that forwards every request
with that transport and nothing else: a pooled `aiohttp.ClientSession`, a pooled
`httpx.AsyncClient`, and the gateway's `gateway.upstream.Pool`. wrk measures each at
concurrency 1 and 16, in alternating rounds; the CPU time each proxy process spends per
request is read from /proc. Loopback only; everything stops at the end.

    .venv/bin/python bench/forwarding_bench.py [--duration 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.gateway_bench import SERVE, TRIVIAL, Processes, median, stub_run, wrk

TRANSPORTS = ("aiohttp", "httpx", "upstream")

Send = Callable[[dict[str, Any]], Awaitable[None]]


def build_app() -> Callable[..., Awaitable[None]]:
    """The minimal proxy for `FORWARD_TRANSPORT` in front of `FORWARD_BACKEND`."""
    transport = os.environ["FORWARD_TRANSPORT"]
    backend = os.environ["FORWARD_BACKEND"]
    token = os.environ["FORWARD_TOKEN"]
    state: dict[str, Any] = {}

    async def startup() -> None:
        if transport == "aiohttp":
            import aiohttp

            state["client"] = aiohttp.ClientSession(auto_decompress=False)
        elif transport == "httpx":
            import httpx

            state["client"] = httpx.AsyncClient(base_url=backend)
        else:
            from gateway.upstream import Pool

            state["client"] = Pool(
                backend, size=100, connect_timeout=2, read_timeout=30, pool_timeout=5
            )

    async def forward(path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        client = state["client"]
        if transport == "aiohttp":
            async with client.get(backend + path, headers={"authorization": token}) as response:
                body = await response.read()
                return response.status, list(response.raw_headers), body
        if transport == "httpx":
            response = await client.get(path, headers={"authorization": token})
            return response.status_code, list(response.headers.raw), response.content
        upstream = await client.request("GET", path.encode(), [(b"authorization", token.encode())])
        try:
            return upstream.status, upstream.headers, await upstream.read()
        finally:
            upstream.release()

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await startup()
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/health/live":
            status, headers, body = 200, [], b"ok"
        else:
            status, headers, body = await forward(scope["path"])
        kept = [(k.lower(), v) for k, v in headers if k.lower() in (b"content-type",)]
        await send({"type": "http.response.start", "status": status, "headers": kept})
        await send({"type": "http.response.body", "body": body})

    return app


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    output = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if f":{port} " in line:
            return int(re.search(r"pid=(\d+)", line).group(1))  # type: ignore[union-attr]
    raise RuntimeError(f"nothing listens on {url}")


def measure(url: str, header: str, connections: int, duration: int) -> dict[str, float]:
    """wrk's figures for the trivial endpoint, and the CPU time the server at `url` spent
    per request meanwhile."""
    pid = listening_pid(url)
    before = cpu_seconds(pid)
    figures = wrk(url + TRIVIAL, header, connections, duration)
    figures["cpu_us"] = (cpu_seconds(pid) - before) / max(figures["requests"], 1) * 1e6
    return figures


def start_proxy(
    processes: Processes,
    env: dict[str, str],
    workdir: Path,
    *,
    name: str,
    transport: str,
    backend: str,
    token: str,
) -> str:
    """The minimal proxy with `transport` in front of `backend`, started; its URL."""
    proxy_env = dict(env, FORWARD_TRANSPORT=transport, FORWARD_BACKEND=backend, FORWARD_TOKEN=token)
    command = [SERVE, "stub", "bench.forwarding_bench:build_app"]
    return processes.start(name, command, proxy_env, workdir)


def run(duration: int, rounds: int) -> None:
    with stub_run("qrp-bench-fw-") as bench:
        processes, workdir, env = bench.processes, bench.workdir, bench.env
        token, backend = bench.token, bench.backend
        targets = {"direct": backend}
        for transport in TRANSPORTS:
            targets[transport] = start_proxy(
                processes,
                env,
                workdir,
                name=transport,
                transport=transport,
                backend=backend,
                token=token,
            )
        header = "Authorization: " + token
        for url in targets.values():
            measure(url, header, 16, 1)
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for connections in (1, 16):
            for _ in range(rounds):
                for name, url in targets.items():
                    results.setdefault((name, connections), []).append(
                        measure(url, header, connections, duration)
                    )
        print(
            f"{'target':<9} {'c':>3} {'rps':>7} {'p50':>9} {'added p50':>10} {'proxy CPU/request':>18}"
        )
        for connections in (1, 16):
            direct_p50 = median(results[("direct", connections)], "p50")
            for name in targets:
                runs = results[(name, connections)]
                rps, p50, cpu = (median(runs, key) for key in ("rps", "p50", "cpu_us"))
                added = "" if name == "direct" else f"{p50 - direct_p50:.2f}ms"
                cpu_text = "(backend)" if name == "direct" else f"{cpu:.0f} us"
                print(
                    f"{name:<9} {connections:>3} {rps:>7.0f} {p50:>7.2f}ms {added:>10} {cpu_text:>18}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all targets")
    arguments = parser.parse_args()
    sys.exit(run(arguments.duration, arguments.rounds))
