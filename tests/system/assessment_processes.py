"""The four services the assessment reads from, as real uvicorn processes on migrated SQLite
files in a temporary folder, with token keys made for the test run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kit.auth import TokenMinter, write_keypair

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCOPES = {
    "brand_registry": ("brands:read", "brands:write"),
    "certification": ("certificates:read", "certificates:write"),
    "inspection": ("spot-checks:read", "spot-checks:write"),
    "assessment": ("assessments:read", "assessments:write", "assessments:publish"),
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Process:
    """One service under uvicorn."""

    name: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=_free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN / "alembic"), "-c", f"services/{self.name}/alembic.ini", "upgrade", "head"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [
                    str(BIN / "uvicorn"),
                    "--factory",
                    f"{self.name}.app:build_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def pause(self) -> None:
        """Freeze the process: it accepts connections but never answers."""
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGCONT)
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Stack:
    """The three data services and the assessment service, plus a gateway-style token minter."""

    processes: dict[str, Process]
    minter: TokenMinter

    def client(self, name: str, scopes: Iterable[str] | None = None) -> httpx.Client:
        """A client of one service carrying a gateway token with its scopes."""
        token = self.minter.mint(
            audience=name,
            client_id="system-test",
            client_name="System test",
            scopes=set(scopes if scopes is not None else SCOPES[name]),
        )
        return httpx.Client(
            base_url=self.processes[name].url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


def start_stack(tmp: Path, *, deadline_seconds: float, timeout_seconds: float) -> Stack:
    """Make keys, migrate four SQLite databases in parallel, start the services, wait for them."""
    keys = tmp / "keys"
    gateway = write_keypair(keys, "gateway")
    write_keypair(keys, "assessment")
    base = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    base.pop("QRP_DEMO", None)
    processes: dict[str, Process] = {}
    for name in ("brand_registry", "certification", "inspection", "assessment"):
        prefix = name.upper()
        env = {
            **base,
            f"{prefix}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / name}.db",
            f"{prefix}_VAR_DIR": str(tmp),
            f"{prefix}_LOG_LEVEL": "WARNING",
        }
        processes[name] = Process(name=name, env=env, log=tmp / f"{name}.log")
    processes["inspection"].env["INSPECTION_OUTBOX_ENABLED"] = "false"
    assessment = processes["assessment"].env
    assessment.update(
        ASSESSMENT_BRAND_REGISTRY_URL=processes["brand_registry"].url,
        ASSESSMENT_CERTIFICATION_URL=processes["certification"].url,
        ASSESSMENT_INSPECTION_URL=processes["inspection"].url,
        ASSESSMENT_SERVICE_PRIVATE_KEY_FILE=str(keys / "assessment.pem"),
        ASSESSMENT_STATS_DEADLINE_SECONDS=str(deadline_seconds),
        ASSESSMENT_STATS_TIMEOUT_SECONDS=str(timeout_seconds),
        ASSESSMENT_LOAD_DEMO="false",
    )
    migrations = {name: p.migrate() for name, p in processes.items()}
    for name, migration in migrations.items():
        _, errors = migration.communicate(timeout=120)
        if migration.returncode != 0:
            raise RuntimeError(f"migrating {name} failed:\n{errors.decode()[-3000:]}")
    stack = Stack(processes, TokenMinter(gateway.private_pem, issuer="gateway", ttl_seconds=600))
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack
