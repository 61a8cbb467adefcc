"""Real service processes for the inspection system tests: migrated SQLite files, uvicorn on
free 127.0.0.1 ports, token keys made for the test, and a way to stop and start each one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.auth import TokenMinter, write_keypair
from scripts.processes import ServiceProcess


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
    brand_registry = ServiceProcess("brand_registry", brand_env, tmp / "brand_registry.log")
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
    inspection = ServiceProcess("inspection", {**base, **inspection_vars}, tmp / "inspection.log")
    brand_registry.migrate()
    inspection.migrate()
    return Suite(brand_registry, inspection, TokenMinter(gateway.private_pem, issuer="gateway"))
