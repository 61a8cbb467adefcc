"""Benchmark of the gateway: the same requests direct and through the gateway, with wrk.

(a) a trivial endpoint (about 2 KB of JSON from a kit service that verifies tokens), and
(b) `GET /api/v1/brands?limit=20` on the real brand registry on PostgreSQL; each at
concurrency 1, 16 and 64, one uvicorn worker per process, all on 127.0.0.1. Creates its
databases on 127.0.0.1:5432 (user postgres) and drops them at the end, even on failure.

Direct and gateway runs alternate in rounds (`--rounds`, each `--duration` seconds per side)
and every figure is the median over the rounds, the added latency that of the per-round
differences: a shared 2-core machine drifts by tens of per cent within a minute, and a
direct run followed much later by a gateway run would measure the drift as much as the gateway.

Beside each run it reads the backend's scheduler statistics: the share of the run it spent on
a core and waiting runnable for one, which tells a backend kept short of requests from one
kept short of CPU by the processes sharing its cores.

    .venv/bin/python bench/gateway_bench.py [--duration 4] [--rounds 5] [--brands 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench import floors
from kit.auth import TokenMinter, write_keypair
from kit.identifiers import credit_code_check_char
from scripts.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_KEY = "qrp_bench_" + uuid.uuid4().hex
CONCURRENCY = (1, 16, 64)
TRIVIAL = "/api/v1/brands/stub/ping"
BRANDS = "/api/v1/brands?limit=20"


class Processes(ExitStack):
    """uvicorn processes stopped on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: dict[str, int] = {}
        """Each started process by name, for its CPU."""

    def start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        workdir: Path,
        *,
        command: list[str] | None = None,
        port: int | None = None,
    ) -> str:
        """Start `PYTHON args port` (or `command`, listening on `port`) and wait until it
        answers `/health/live`; its URL."""
        port = port or free_port()
        with (workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                command or [PYTHON, *args, str(port)], env=env, cwd=ROOT, stdout=log, stderr=log
            )
        self.pids[name] = process.pid
        self.callback(floors.stop, process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health/live", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not start; see {workdir / name}.log")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def wrk(
    url: str,
    header: str,
    connections: int,
    duration: int,
    cpu_of: tuple[int, ...] = (),
    backend: int | None = None,
) -> dict[str, float]:
    """Requests/s, the request count and latency percentiles (ms) from one wrk run, the
    CPU per request (µs) of the processes `cpu_of` while it ran, and the shares of the run
    the `backend` process spent on a core and waiting runnable for one."""
    before = sum(floors.cpu_seconds(pid) for pid in cpu_of)
    scheduled = floors.scheduled_seconds(backend) if backend else (0.0, 0.0)
    started = time.monotonic()
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s"]
    command += ["--latency", "-H", header, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
    }
    for label, key in (("50%", "p50"), ("99%", "p99")):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        figures[key] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses from {url}:\n{output}")
    used = sum(floors.cpu_seconds(pid) for pid in cpu_of) - before
    figures["cpu_us"] = used / figures["requests"] * 1e6 if cpu_of else 0.0
    elapsed = time.monotonic() - started
    if backend:
        ran, waited = floors.scheduled_seconds(backend)
        figures["backend_ran"] = (ran - scheduled[0]) / elapsed
        figures["backend_waited"] = (waited - scheduled[1]) / elapsed
    return figures


def load_brands(url: str, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(count):
            first17 = f"913203{i:011d}"
            response = client.post(
                "/api/v1/brands",
                json={
                    "product_name": f"產品 {i}",
                    "brand_name": f"品牌 {i}",
                    "enterprise_credit_code": first17 + credit_code_check_char(first17),
                    "enterprise_name": f"企業 {i}",
                    "county_code": "320323",
                    "tier": "city_famous",
                    "sector": "industry",
                    "awarded_on": "2008-05-01",
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"loading brands failed: {response.text}")


NGINX_CONF = """
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    upstream backend {{ server {backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "{authorization}";
        }}
    }}
}}
"""
"""nginx in front of a backend as the gateway stands in front of it: one worker (the gateway
is one uvicorn worker), kept-alive upstream connections, the client's key replaced by a
service token (a fixed one: nginx has no token minting)."""


def start_nginx(
    processes: Processes, name: str, backend: str, authorization: str, workdir: Path
) -> str | None:
    """nginx forwarding to `backend` with `authorization`, when nginx is installed; its URL."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None
    port = free_port()
    conf = workdir / f"{name}.conf"
    conf.write_text(
        NGINX_CONF.format(
            workdir=workdir,
            backend=backend.removeprefix("http://"),
            port=port,
            authorization=authorization,
        )
    )
    command = [binary, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
    return processes.start(name, [], {}, workdir, command=command, port=port)


def nginx_worker(master: int) -> int:
    """The worker process of an nginx master (the one serving requests)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.1)
    raise RuntimeError("nginx started no worker")


SERVE = "gateway/tests/serve.py"
"""Migrates a service (not the stub) and serves it with uvicorn in one interpreter."""


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")


def start_stub(processes: Processes, env: dict[str, str], workdir: Path) -> str:
    """The stub backend of `gateway/tests` (the trivial endpoint), started; its URL."""
    return processes.start("stub", [SERVE, "stub", "stub_backend:build_app"], env, workdir)


def bench_environment(workdir: Path) -> tuple[TokenMinter, dict[str, str]]:
    """Keys made for the run (the gateway's service-token and OAuth pairs), a minter of
    service tokens, and the environment of the stub backend and of a gateway in front of it
    (the gateway's backend URLs and database are each caller's)."""
    for name in ("gateway", "gateway-oauth"):
        write_keypair(workdir / "keys", name)
    minter = TokenMinter(
        (workdir / "keys" / "gateway.pem").read_bytes(), issuer="gateway", ttl_seconds=3600
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env.update(
        QRP_VAR_DIR=str(workdir),
        QRP_CONFIG_DIR=str(ROOT / "config"),
        PYTHONUNBUFFERED="1",
        STUB_TOKEN_ISSUERS=json.dumps({"gateway": str(workdir / "keys" / "gateway.pub")}),
        STUB_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'stub.db'}",
        GATEWAY_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        GATEWAY_BOOTSTRAP_ADMIN_RATE_LIMIT="100000000/minute",
        GATEWAY_TOKEN_PRIVATE_KEY_FILE=str(workdir / "keys" / "gateway.pem"),
        GATEWAY_OAUTH_PRIVATE_KEY_FILE=str(workdir / "keys" / "gateway-oauth.pem"),
    )
    return minter, env


def service_token(minter: TokenMinter, *scopes: str) -> str:
    """A token for the brand registry (and the stub, which takes its name) with `scopes`."""
    return minter.mint(
        audience="brand_registry", client_id="bench", client_name="bench", scopes=set(scopes)
    )


@dataclass
class StubRun:
    """A benchmark's working directory and processes, with the stub backend started."""

    workdir: Path
    processes: Processes
    env: dict[str, str]
    """The stub's environment, to which a gateway in front of it adds its own settings."""
    token: str
    """`Bearer …` for the stub, with `brands:read`."""
    backend: str


@contextmanager
def stub_run(prefix: str) -> Iterator[StubRun]:
    """wrk checked, a temporary directory, keys and the stub backend; everything stops and
    is removed on exit."""
    require_wrk()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, Processes() as processes:
        workdir = Path(tmp)
        minter, env = bench_environment(workdir)
        token = "Bearer " + service_token(minter, "brands:read")
        yield StubRun(workdir, processes, env, token, start_stub(processes, env, workdir))


def run(duration: int, rounds: int, brand_count: int) -> None:
    require_wrk()
    run_id = uuid.uuid4().hex[:8]
    databases = {name: f"qrp_bench_gw_{name}_{run_id}" for name in ("gateway", "brands")}
    with tempfile.TemporaryDirectory(prefix="qrp-bench-gw-") as tmp, Processes() as processes:
        workdir = Path(tmp)
        minter, env = bench_environment(workdir)
        try:
            for database in databases.values():
                asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
            pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
            env.update(
                BRAND_REGISTRY_TOKEN_ISSUERS=env["STUB_TOKEN_ISSUERS"],
                BRAND_REGISTRY_DATABASE_URL=pg + databases["brands"],
                GATEWAY_DATABASE_URL=pg + databases["gateway"],
            )
            stub = start_stub(processes, env, workdir)
            brands = processes.start(
                "brand_registry",
                [SERVE, "brand_registry", "brand_registry.app:build_app"],
                env,
                workdir,
            )
            env["GATEWAY_CERTIFICATION_URL"] = env["GATEWAY_INSPECTION_URL"] = "http://127.0.0.1:9"
            env["GATEWAY_ASSESSMENT_URL"] = "http://127.0.0.1:9"
            direct = "Bearer " + service_token(minter, "brands:read")
            targets = {}
            backend_pids = {
                "trivial": processes.pids["stub"],
                "brands": processes.pids["brand_registry"],
            }
            for label, backend in (("trivial", stub), ("brands", brands)):
                env["GATEWAY_BRAND_REGISTRY_URL"] = backend
                name = f"gateway-{label}"
                gateway = processes.start(
                    name, [SERVE, "gateway", "gateway.app:build_app"], env, workdir
                )
                sides = {
                    "direct": (backend, f"Authorization: {direct}", ()),
                    "gateway": (gateway, f"X-API-Key: {ADMIN_KEY}", (processes.pids[name],)),
                }
                nginx = start_nginx(processes, f"nginx-{label}", backend, direct, workdir)
                if nginx:
                    worker = nginx_worker(processes.pids[f"nginx-{label}"])
                    sides["nginx"] = (nginx, "X-API-Key: none", (worker,))
                targets[label] = sides
            load_brands(
                brands,
                service_token(minter, "brands:write"),
                brand_count,
            )
            results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
            for label, path in (("trivial", TRIVIAL), ("brands", BRANDS)):
                sides = targets[label]
                for url, header, _ in sides.values():
                    wrk(url + path, header, 16, 2)
                for connections in CONCURRENCY:
                    for _ in range(rounds):
                        for side, (url, header, pids) in sides.items():
                            results.setdefault((label, side, connections), []).append(
                                wrk(
                                    url + path,
                                    header,
                                    connections,
                                    duration,
                                    pids,
                                    backend=backend_pids[label],
                                )
                            )
            report(results)
        finally:
            for database in databases.values():
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def added_p50(runs: list[dict[str, float]], direct_runs: list[dict[str, float]]) -> float:
    """The median of the per-round differences in p50 between `runs` and the direct runs
    they alternated with."""
    return statistics.median(r["p50"] - d["p50"] for r, d in zip(runs, direct_runs, strict=True))


def report(rounds: dict[tuple[str, str, int], list[dict[str, float]]]) -> None:
    """Medians over the rounds of each side beside direct, and the issue's targets."""
    results = {
        key: {figure: median(runs, figure) for figure in ("rps", "p50", "p99", "cpu_us")}
        for key, runs in rounds.items()
    }
    for key, runs in rounds.items():
        if key[1] != "direct":
            results[key]["added_p50"] = added_p50(runs, rounds[(key[0], "direct", key[2])])
    sides = [side for side in ("gateway", "nginx") if ("trivial", side, 1) in results]
    header = f"{'endpoint':<8} {'c':>3} {'direct rps':>10} {'p50':>7}"
    for side in sides:
        header += f" | {side + ' rps':>11} {'kept':>5} {'+p50':>7} {'p99 x':>5} {'µs/req':>6}"
    print(header)
    for label in ("trivial", "brands"):
        for connections in CONCURRENCY:
            d = results[(label, "direct", connections)]
            line = f"{label:<8} {connections:>3} {d['rps']:>10.0f} {d['p50']:>5.2f}ms"
            for side in sides:
                g = results[(label, side, connections)]
                line += (
                    f" | {g['rps']:>11.0f} {g['rps'] / d['rps']:>5.0%} {g['added_p50']:>5.2f}ms"
                    f" {g['p99'] / d['p99']:>5.1f} {g['cpu_us']:>6.0f}"
                )
            print(line)
    print("(µs/req: CPU of the gateway process, or of the nginx worker, per forwarded request)")
    print("The backend's main thread, share of each run on a core / waiting runnable for one:")
    for label in ("trivial", "brands"):
        for connections in CONCURRENCY:
            line = f"{label:<8} {connections:>3}"
            for side in ("direct", *sides):
                runs = rounds[(label, side, connections)]
                ran, waited = median(runs, "backend_ran"), median(runs, "backend_waited")
                line += f" | {side} {ran:>4.0%} / {waited:>4.0%}"
            print(line)
    for side in sides:
        for name, ok in targets(results, side):
            print(f"{'met ' if ok else 'MISSED'} {side}: {name}")


def targets(
    results: dict[tuple[str, str, int], dict[str, float]], side: str
) -> list[tuple[str, bool]]:
    """The performance issue's targets for a forwarding side, each with whether it was met."""
    checks = []
    for label in ("trivial", "brands"):
        for c in (16, 64):
            kept = results[(label, side, c)]["rps"] / results[(label, "direct", c)]["rps"]
            checks.append((f"{label} keeps >= 85% of direct at c={c} ({kept:.0%})", kept >= 0.85))
    for c in CONCURRENCY[1:]:
        cpu = results[("trivial", side, c)]["cpu_us"]
        checks.append((f"trivial CPU per request <= 250 µs at c={c} ({cpu:.0f})", cpu <= 250))
    added = results[("trivial", side, 1)]["added_p50"]
    checks.append((f"trivial adds <= 0.2 ms p50 at c=1 ({added:.2f})", added <= 0.2))
    return checks


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="direct/gateway pairs per case")
    parser.add_argument("--brands", type=int, default=200, help="listings loaded for (b)")
    arguments = parser.parse_args()
    run(arguments.duration, arguments.rounds, arguments.brands)
