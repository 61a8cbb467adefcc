"""Wait until every process of `make run` is ready, then print where to find them."""

from __future__ import annotations

import os
import signal
import sys
import time

import httpx

SERVICES = ["gateway", "brand_registry", "certification", "inspection", "assessment"]
TIMEOUT_SECONDS = float(os.environ.get("QRP_READY_TIMEOUT", "90"))


def _port(name: str) -> str:
    return os.environ[f"{name.upper()}_PORT"]


def _wait(client: httpx.Client, url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if client.get(url).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def main() -> int:
    host = os.environ.get("QRP_HOST", "127.0.0.1")
    deadline = time.monotonic() + TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        for name in SERVICES:
            url = f"http://{host}:{_port(name)}/health/ready"
            if not _wait(client, url, deadline):
                print(f"{name} did not become ready at {url}", file=sys.stderr, flush=True)
                return 1
    gateway = f"http://{host}:{_port('gateway')}"
    lines = [
        "",
        "Quality Revitalization Platform is running.",
        f"  Gateway        {gateway}",
        f"  API docs       {gateway}/docs",
        f"  Suite health   {gateway}/health",
    ]
    lines += [f"  {name:<14} http://{host}:{_port(name)}" for name in SERVICES[1:]]
    lines += [
        f"  Admin key      {os.environ.get('GATEWAY_BOOTSTRAP_ADMIN_KEY', '(not set)')}",
        "  Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
