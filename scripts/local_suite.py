"""Start the whole suite as local processes for black-box tests, and stop it again.

Each run gets its own keys, its own databases (SQLite files in a temporary folder, or
PostgreSQL databases created for the run and dropped after it) and free ports.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from kit.auth import write_keypair
from scripts.processes import ServiceProcess, finish_migrations, free_port

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["brand_registry", "certification", "inspection", "assessment", "gateway"]
PREFIX = {name: name.upper() + "_" for name in SERVICES}


@dataclass
class LocalSuite:
    """The five processes of a suite, with the settings they were started with."""

    workdir: Path
    postgres_url: str | None = None
    redis_url: str | None = None
    admin_key: str = field(default_factory=lambda: "qrp_admin_" + secrets.token_urlsafe(24))
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in SERVICES})
    databases: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def environment(self) -> dict[str, str]:
        keys = self.workdir / "keys"
        issuers = (
            f'{{"gateway": "{keys}/gateway.pub", "assessment": "{keys}/assessment.pub", '
            f'"inspection": "{keys}/inspection.pub"}}'
        )
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        env.update(QRP_VAR_DIR=str(self.workdir), QRP_CONFIG_DIR=str(ROOT / "config"))
        for service in SERVICES:
            prefix = PREFIX[service]
            env[f"{prefix}DATABASE_URL"] = self.databases[service]
            env[f"{prefix}TOKEN_ISSUERS"] = issuers
            env[f"{prefix}SECRET_KEY"] = "local-suite-" + "s" * 32
            env[f"{prefix}LOG_LEVEL"] = "WARNING"
        for caller in ("GATEWAY", "ASSESSMENT", "INSPECTION"):
            for service in SERVICES[:4]:
                env[f"{caller}_{service.upper()}_URL"] = self.url(service)
        env["GATEWAY_BOOTSTRAP_ADMIN_KEY"] = self.admin_key
        env["GATEWAY_TOKEN_PRIVATE_KEY_FILE"] = str(keys / "gateway.pem")
        env["GATEWAY_OAUTH_PRIVATE_KEY_FILE"] = str(keys / "gateway-oauth.pem")
        env["ASSESSMENT_SERVICE_PRIVATE_KEY_FILE"] = str(keys / "assessment.pem")
        env["INSPECTION_SERVICE_PRIVATE_KEY_FILE"] = str(keys / "inspection.pem")
        if self.redis_url:
            env["GATEWAY_REDIS_URL"] = self.redis_url
        return env

    def create_databases(self) -> None:
        run_id = uuid.uuid4().hex[:8]
        for service in SERVICES:
            if self.postgres_url:
                name = f"qrp_it_{service}_{run_id}"
                asyncio.run(_postgres(self.postgres_url, f'CREATE DATABASE "{name}"'))
                url = make_url(self.postgres_url).set(database=name)
                self.databases[service] = url.render_as_string(hide_password=False)
            else:
                self.databases[service] = f"sqlite+aiosqlite:///{self.workdir / service}.db"

    def drop_databases(self) -> None:
        if not self.postgres_url:
            return
        for url in self.databases.values():
            name = make_url(url).database
            asyncio.run(
                _postgres(self.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )

    def start(self, timeout: float = 120) -> None:
        for name in ("gateway", "gateway-oauth", "assessment", "inspection"):
            write_keypair(self.workdir / "keys", name)
        self.create_databases()
        env = self.environment()
        self.processes = {
            service: ServiceProcess(
                service, env, self.workdir / f"{service}.log", port=self.ports[service]
            )
            for service in SERVICES
        }
        finish_migrations({name: process.migration() for name, process in self.processes.items()})
        for process in self.processes.values():
            process.start(wait=False)
        for process in self.processes.values():
            process.wait_ready(timeout)

    def stop(self) -> None:
        # Signal every process first so they shut down side by side, then wait for each.
        for process in self.processes.values():
            if process.process is not None and process.running:
                process.process.terminate()
        for process in self.processes.values():
            process.stop()
        self.processes.clear()


async def _postgres(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def local_suite(
    *, postgres_url: str | None = None, redis_url: str | None = None
) -> Iterator[LocalSuite]:
    """A started suite, stopped and cleaned up on exit."""
    with tempfile.TemporaryDirectory(prefix="qrp-suite-") as workdir:
        suite = LocalSuite(Path(workdir), postgres_url=postgres_url, redis_url=redis_url)
        try:
            suite.start()
            yield suite
        finally:
            suite.stop()
            suite.drop_databases()
