"""Real service processes for the inspection system tests: migrated SQLite files, uvicorn on
free 127.0.0.1 ports, token keys made for the test, and a way to stop and start each one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from kit.auth import TokenMinter, write_keypair
from kit.migrations import upgrade_to_head

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """One service run by uvicorn as a subprocess, on its own SQLite file."""

    name: str
    prefix: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def migrate(self) -> None:
        """Bring the service's database to the head of its alembic history."""
        upgrade_to_head(
            ROOT / "services" / self.name / "migrations",
            self.env[f"{self.prefix}DATABASE_URL"],
            f"{self.name}_alembic_version",
        )

    def shut_down_cleanly(self) -> bool:
        """Whether the last run finished its lifespan shutdown (background work included)."""
        return "Application shutdown complete" in self.log_path.read_text(encoding="utf-8")

    def start(self) -> None:
        """Start uvicorn and wait until the service reports ready."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
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
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} never became ready")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, as a process manager does)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Suite:
    """The brand registry and the inspection service, and gateway-style tokens for both."""

    brand_registry: ServiceProcess
    inspection: ServiceProcess
    gateway: TokenMinter

    def headers(self, audience: str, *scopes: str) -> dict[str, str]:
        token = self.gateway.mint(
            audience=audience,
            client_id="system-test",
            client_name="System test",
            scopes=set(scopes),
        )
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        self.inspection.stop()
        self.brand_registry.stop()


def make_suite(tmp: Path, **inspection_env: str) -> Suite:
    """Keys, migrated databases and environments for both services (not started)."""
    keys = tmp / "keys"
    gateway = write_keypair(keys, "gateway")
    write_keypair(keys, "inspection")
    write_keypair(keys, "assessment")
    base: dict[str, Any] = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INSPECTION_", "BRAND_REGISTRY_"))
    }
    brand_env = {
        **base,
        "BRAND_REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'brand_registry.db'}",
        "BRAND_REGISTRY_VAR_DIR": str(tmp),
        "BRAND_REGISTRY_SECRET_KEY": "system-test-secret-" + "b" * 32,
    }
    brand_registry = ServiceProcess(
        "brand_registry", "BRAND_REGISTRY_", brand_env, tmp / "brand_registry.log"
    )
    inspection_vars = {
        "INSPECTION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'inspection.db'}",
        "INSPECTION_VAR_DIR": str(tmp),
        "INSPECTION_SECRET_KEY": "system-test-secret-" + "i" * 32,
        "INSPECTION_BRAND_REGISTRY_URL": brand_registry.url,
        "INSPECTION_OUTBOX_POLL_SECONDS": "0.2",
        "INSPECTION_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
        "INSPECTION_OUTBOX_BACKOFF_MAX_SECONDS": "1",
        **inspection_env,
    }
    inspection = ServiceProcess(
        "inspection", "INSPECTION_", {**base, **inspection_vars}, tmp / "inspection.log"
    )
    brand_registry.migrate()
    inspection.migrate()
    return Suite(brand_registry, inspection, TokenMinter(gateway.private_pem, issuer="gateway"))
