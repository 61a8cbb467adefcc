"""`make integration`: the black-box suite and schemathesis against a running gateway.

With `GATEWAY_URL` (and the admin key in `QRP_ADMIN_KEY` or `GATEWAY_BOOTSTRAP_ADMIN_KEY`)
it tests that deployment. Without it, it starts the whole suite as local processes on
PostgreSQL (`INTEGRATION_DATABASE_URL`, databases created and dropped by the run) and Redis
(`INTEGRATION_REDIS_URL`), tests it, and stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.local_suite import local_suite

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")


def run_checks(gateway_url: str, admin_key: str) -> int:
    env = {**os.environ, "GATEWAY_URL": gateway_url, "QRP_ADMIN_KEY": admin_key}
    print(f"== black-box suite against {gateway_url}", flush=True)
    tests = subprocess.run(
        [str(BIN / "pytest"), "tests/integration", "-p", "no:randomly"], env=env, cwd=ROOT
    ).returncode
    print("== schemathesis on the merged OpenAPI document", flush=True)
    fuzz = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{gateway_url}/openapi.json",
            "--header",
            f"X-API-Key: {admin_key}",
            "--max-examples",
            EXAMPLES,
            "--phases",
            "examples,fuzzing,stateful",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--exclude-path-regex",
            "^/oauth/token$",
        ],
        env=env,
        cwd=ROOT,
    ).returncode
    return tests or fuzz


def main() -> int:
    gateway_url = os.environ.get("GATEWAY_URL")
    if gateway_url:
        admin_key = os.environ.get("QRP_ADMIN_KEY") or os.environ.get("GATEWAY_BOOTSTRAP_ADMIN_KEY")
        if not admin_key:
            print("set QRP_ADMIN_KEY to an admin client's key", file=sys.stderr)
            return 2
        return run_checks(gateway_url.rstrip("/"), admin_key)
    postgres_url = os.environ.get(
        "INTEGRATION_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("INTEGRATION_REDIS_URL", "redis://127.0.0.1:6379/15")
    with local_suite(postgres_url=postgres_url, redis_url=redis_url) as suite:
        print(f"== suite started (logs in {suite.workdir})", flush=True)
        return run_checks(suite.gateway_url, suite.admin_key)


if __name__ == "__main__":
    raise SystemExit(main())
