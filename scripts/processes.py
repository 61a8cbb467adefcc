"""One service as a real uvicorn process on a free 127.0.0.1 port, for the local suite, system
tests and benchmarks: migrate it, start it, wait for readiness, freeze it, stop it gracefully."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """One service (`brand_registry`, `inspection`, …) run by uvicorn as a subprocess."""

    name: str
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

    def migration(self) -> subprocess.Popen[bytes]:
        """Start `python -m kit.migrate` for this service (several may run side by side)."""
        return subprocess.Popen(
            [sys.executable, "-m", "kit.migrate", self.name],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def migrate(self) -> None:
        """Bring the service's database to the head of its migration history."""
        finish_migrations({self.name: self.migration()})

    def start(self, *, wait: bool = True) -> None:
        """Start the service (uvicorn through `kit.serve`); by default wait until it is ready."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(BIN / "python"),
                "-m",
                "kit.serve",
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
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.log_path.read_text()[-3000:]}")

    def pause(self) -> None:
        """Freeze the process: it accepts connections but never answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, as a process manager does)."""
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def shut_down_cleanly(self) -> bool:
        """Whether the last run finished its lifespan shutdown (background work included)."""
        return "Application shutdown complete" in self.log_path.read_text(encoding="utf-8")


def finish_migrations(migrations: dict[str, subprocess.Popen[bytes]]) -> None:
    """Wait for migrations started with `ServiceProcess.migration`; raise on the first failure."""
    for name, migration in migrations.items():
        _, errors = migration.communicate(timeout=180)
        if migration.returncode != 0:
            raise RuntimeError(f"migrating {name} failed:\n{errors.decode()[-3000:]}")
