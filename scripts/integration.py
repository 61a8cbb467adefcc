"""`make integration`: the black-box suite and schemathesis against a running gateway.

With `GATEWAY_URL` (and the admin key in `QRP_ADMIN_KEY` or `GATEWAY_BOOTSTRAP_ADMIN_KEY`)
it tests that deployment. Without it, it starts the whole suite as local processes on
PostgreSQL (`INTEGRATION_DATABASE_URL`, databases created and dropped by the run) and Redis
(`INTEGRATION_REDIS_URL`), tests it, and stops it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.local_suite import local_suite

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")
UNFUZZED = r"^/oauth/token$|^/api/v1/admin/clients/\{client_id\}/(revoke|rotate)$"
"""Left to the gateway's own tests: the token endpoint, and revoking or rotating a client,
since schemathesis finds every client in the list, its own too, and once its key is revoked
every call is a 401 and soon a 429 (failed authentication is throttled per address)."""
ALL_SCOPES = [
    "admin",
    "brands:read",
    "brands:write",
    "brands:flag",
    "certificates:read",
    "certificates:write",
    "spot-checks:read",
    "spot-checks:write",
    "assessments:read",
    "assessments:write",
    "assessments:publish",
    "assessments:review",
    "events:read",
    "enterprises:read",
    "webhooks:manage",
    "city:read",
]


def run_checks(
    gateway_url: str,
    admin_key: str,
    watched: dict[str, str] | None = None,
    *,
    hostile: bool = True,
) -> int:
    """The black-box story, the hostile-input suite (unless `hostile` is false), then
    schemathesis, against one gateway.

    `watched` may add what the hostile suite watches while it attacks (QRP_SERVICE_URLS with
    each service's own URL, QRP_GATEWAY_PID). The hostile suite needs to reach the gateway
    from loopback addresses of its own, each seen as itself: behind a port mapping that
    rewrites the caller's address, its guessed keys would throttle every later caller."""
    env = {**os.environ, "GATEWAY_URL": gateway_url, "QRP_ADMIN_KEY": admin_key, **(watched or {})}
    suites = "black-box suite and hostile input" if hostile else "black-box suite"
    print(f"== {suites} against {gateway_url}", flush=True)
    tests = subprocess.run(
        [
            str(BIN / "pytest"),
            "tests/integration",
            "-p",
            "no:randomly",
            *([] if hostile else ["--ignore=tests/integration/hostile"]),
        ],
        env=env,
        cwd=ROOT,
    ).returncode
    print("== schemathesis on the merged OpenAPI document, every phase", flush=True)
    fuzz_key = fuzzing_client(gateway_url, admin_key)
    report = Path(tempfile.mkdtemp(prefix="qrp-schemathesis-"))
    fuzz = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{gateway_url}/openapi.json",
            "--header",
            f"X-API-Key: {fuzz_key}",
            "--max-examples",
            EXAMPLES,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,"
            "content_type_conformance,unsupported_method",
            # One worker: with two, hypothesis (in schemathesis's worker threads) parsed
            # lambda sources with `ast.parse` at once, which CPython 3.11 can fail with
            # "AST constructor recursion depth mismatch" (seen in the compose test's run).
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--exclude-path-regex",
            UNFUZZED,
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report / "events.ndjson"),
        ],
        env=env,
        cwd=ROOT,
    ).returncode
    print(stateful_reach(gateway_url, report / "events.ndjson"), flush=True)
    return tests or fuzz


def fuzzing_client(gateway_url: str, admin_key: str) -> str:
    """A client for schemathesis with every scope and a limit its thousands of calls fit in."""
    import httpx

    answer = httpx.post(
        f"{gateway_url}/api/v1/admin/clients",
        headers={"X-API-Key": admin_key},
        json={"name": "schemathesis", "scopes": ALL_SCOPES, "rate_limit": "100000/minute"},
        timeout=30,
    )
    if answer.status_code != 201:
        print(f"no fuzzing client ({answer.status_code}); the admin key fuzzes", flush=True)
        return admin_key
    key: str = answer.json()["api_key"]
    return key


def stateful_reach(gateway_url: str, events: Path) -> str:
    """How many of the document's operations the stateful phase called, from its events."""
    import httpx

    document = httpx.get(f"{gateway_url}/openapi.json", timeout=30).json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"} and not re.match(UNFUZZED, path)
    }
    reached: set[tuple[str, str]] = set()
    if events.exists():
        for line in events.read_text().splitlines():
            event = json.loads(line).get("ScenarioFinished")
            if not event or event.get("phase") != "stateful":
                continue
            for case in event.get("recorder", {}).get("cases", {}).values():
                value = case.get("value", {})
                reached.add((value.get("method", ""), value.get("path", "")))
    reached &= operations
    share = len(reached) / len(operations) if operations else 0.0
    return (
        f"== stateful phase reached {len(reached)} of {len(operations)} operations"
        f" ({share:.0%}) through the document's links"
    )


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
        gateway = suite.processes["gateway"].process
        watched = {
            "QRP_SERVICE_URLS": json.dumps(
                {name: suite.url(name) for name in suite.ports if name != "gateway"}
            ),
            "QRP_GATEWAY_PID": str(gateway.pid) if gateway is not None else "",
        }
        return run_checks(suite.gateway_url, suite.admin_key, watched)


if __name__ == "__main__":
    raise SystemExit(main())
