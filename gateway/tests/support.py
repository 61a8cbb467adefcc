"""Real processes for the gateway's tests: the four services and a stub backend, each a
uvicorn subprocess on a free loopback port, migrated first, with keys made for the run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent
PYTHON = sys.executable
SERVICES = ("brand_registry", "certification", "inspection", "assessment")


@dataclass
class Process:
    name: str
    url: str
    log: Path
    popen: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def peak_rss_kib(self) -> int:
        """The process's peak resident memory (VmHWM) in KiB."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("VmHWM not found")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def uvicorn(
    name: str,
    factory: str,
    env: dict[str, str],
    workdir: Path,
    *,
    port: int | None = None,
) -> Process:
    """Migrate and serve `factory` on a free port, its output in `<workdir>/<name>.log`."""
    port = port or free_port()
    log = workdir / f"{name}.log"
    command = [PYTHON, str(TESTS / "serve.py"), name, factory, str(port)]
    with log.open("wb") as output:
        popen = subprocess.Popen(
            command,
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Process(name, f"http://127.0.0.1:{port}", log, popen)


async def wait_ready(process: Process, *, path: str = "/health/ready", within: float = 90) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(process.url + path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} did not start:\n{process.log_text()[-3000:]}")
            await asyncio.sleep(0.2)


@dataclass
class Backends:
    """The running backends: the four real services and the stub."""

    workdir: Path
    keys: Path
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def stub(self) -> Process:
        return self.processes["stub"]

    def url(self, name: str) -> str:
        return self.processes[name].url

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


def service_environment(workdir: Path, keys: Path) -> dict[str, str]:
    issuers = json.dumps(
        {
            "gateway": str(keys / "gateway.pub"),
            "assessment": str(keys / "assessment.pub"),
            "inspection": str(keys / "inspection.pub"),
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env.update(QRP_VAR_DIR=str(workdir), QRP_CONFIG_DIR=str(ROOT / "config"))
    for name in (*SERVICES, "stub"):
        prefix = name.upper() + "_"
        env[prefix + "DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / name}.db"
        env[prefix + "TOKEN_ISSUERS"] = issuers
        env[prefix + "SECRET_KEY"] = "gateway-tests-" + "s" * 32
        env[prefix + "LOG_LEVEL"] = "INFO"
    env["ASSESSMENT_SERVICE_PRIVATE_KEY_FILE"] = str(keys / "assessment.pem")
    env["INSPECTION_SERVICE_PRIVATE_KEY_FILE"] = str(keys / "inspection.pem")
    return env


async def start_backends(workdir: Path, keys: Path) -> Backends:
    """Start the four services (each migrating first) and the stub; wait until all are ready."""
    env = service_environment(workdir, keys)
    backends = Backends(workdir, keys)
    ports = {name: free_port() for name in SERVICES}
    for caller in ("ASSESSMENT", "INSPECTION"):
        for name in SERVICES:
            env[f"{caller}_{name.upper()}_URL"] = f"http://127.0.0.1:{ports[name]}"
    try:
        for name in SERVICES:
            backends.processes[name] = uvicorn(
                name, f"{name}.app:build_app", env, workdir, port=ports[name]
            )
        backends.processes["stub"] = uvicorn("stub", "stub_backend:build_app", env, workdir)
        await asyncio.gather(*(wait_ready(p) for p in backends.processes.values()))
    except BaseException:
        backends.stop()
        raise
    return backends
