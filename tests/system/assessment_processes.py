"""The four services the assessment reads from, as real uvicorn processes on migrated SQLite
files in a temporary folder, with token keys made for the test run."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from kit.auth import TokenMinter, write_keypair
from scripts.processes import ServiceProcess, finish_migrations

SCOPES = {
    "brand_registry": ("brands:read", "brands:write"),
    "certification": ("certificates:read", "certificates:write"),
    "inspection": ("spot-checks:read", "spot-checks:write"),
    "assessment": (
        "assessments:read",
        "assessments:write",
        "assessments:publish",
        "assessments:review",
    ),
}


@dataclass
class Stack:
    """The three data services and the assessment service, plus a gateway-style token minter."""

    processes: dict[str, ServiceProcess]
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


def start_stack(
    tmp: Path, *, deadline_seconds: float, timeout_seconds: float, log_level: str = "WARNING"
) -> Stack:
    """Make keys, migrate four SQLite databases in parallel, start the services, wait for them
    (each logging from `log_level`: INFO writes their access lines to `<name>.log`)."""
    keys = tmp / "keys"
    gateway = write_keypair(keys, "gateway")
    write_keypair(keys, "assessment")
    base = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    base.pop("QRP_DEMO", None)
    processes: dict[str, ServiceProcess] = {}
    for name in ("brand_registry", "certification", "inspection", "assessment"):
        prefix = name.upper()
        env = {
            **base,
            f"{prefix}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / name}.db",
            f"{prefix}_VAR_DIR": str(tmp),
            f"{prefix}_LOG_LEVEL": log_level,
        }
        processes[name] = ServiceProcess(name=name, env=env, log_path=tmp / f"{name}.log")
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
    finish_migrations({name: p.migration() for name, p in processes.items()})
    stack = Stack(processes, TokenMinter(gateway.private_pem, issuer="gateway", ttl_seconds=600))
    try:
        for process in processes.values():
            process.start(wait=False)
        for process in processes.values():
            process.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack
