"""A PostgreSQL cluster and a Redis server of their own, for tests and the fault suite that
stop and freeze them: each on a free 127.0.0.1 port with its files in a temporary folder,
torn down (processes killed, files removed) on exit whatever happened.

PostgreSQL is created with the installed `initdb` and run by `pg_ctl`, as the `postgres`
user when this process is root (PostgreSQL refuses to run as root), with trust
authentication and durability off (a throwaway cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scripts.processes import free_port

HOST = "127.0.0.1"
POSTGRES_USER = "postgres"


def _wait_for_port(port: int, *, up: bool, within: float) -> bool:
    """Whether the port accepts connections (`up`) or refuses them, within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            listening = probe.connect_ex((HOST, port)) == 0
        if listening == up:
            return True
        time.sleep(0.05)
    return False


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's `bin` folder, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def redis_bin() -> str | None:
    return shutil.which("redis-server")


@dataclass
class PrivatePostgres:
    """One PostgreSQL cluster in `directory`, listening on 127.0.0.1:`port` only."""

    directory: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("no PostgreSQL installed under /usr/lib/postgresql")
        self.bin = binaries
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", POSTGRES_USER, "--"] if self._as_postgres else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip() or result.stdout}")

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            account = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            POSTGRES_USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            timeout=120,
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-c listen_addresses={HOST} -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        if not _wait_for_port(self.port, up=True, within=30):
            raise RuntimeError(f"PostgreSQL did not listen on {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (`fast`: sessions are ended; `immediate`: no clean shutdown)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait_for_port(self.port, up=False, within=10)

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{POSTGRES_USER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        asyncio.run(self._execute(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    async def _execute(self, statement: str) -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(
            host=HOST, port=self.port, user=POSTGRES_USER, database="postgres"
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def teardown(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    """One redis-server on 127.0.0.1:`port`, without persistence; it can be frozen
    (SIGSTOP: connections are accepted and never answered), stopped and started again on
    the same port."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = redis_bin()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    HOST,
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not _wait_for_port(self.port, up=True, within=10):
            raise RuntimeError(f"redis-server did not listen on {self.port}")

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (its data is gone; a restart begins empty)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        _wait_for_port(self.port, up=False, within=5)

    def teardown(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_postgres(parent: Path | None = None) -> Iterator[PrivatePostgres]:
    """A started cluster of its own, torn down on exit."""
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="qrp-pg-", dir=parent)))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.teardown()


@contextlib.contextmanager
def private_redis(parent: Path | None = None) -> Iterator[PrivateRedis]:
    """A started redis-server of its own, torn down on exit."""
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="qrp-redis-", dir=parent)))
    try:
        server.start()
        yield server
    finally:
        server.teardown()
