"""Wait until every process of `make run` is ready, load the demo city (unless `DEMO=0`),
then print where to find everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["gateway", "brand_registry", "certification", "inspection", "assessment"]
TIMEOUT_SECONDS = float(os.environ.get("QRP_READY_TIMEOUT", "120"))
READ_KEY_FILE = Path(os.environ.get("QRP_VAR_DIR", "var")) / "keys" / "demo-read.key"


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
    gateway = f"http://{host}:{_port('gateway')}"
    deadline = time.monotonic() + TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        for name in SERVICES:
            url = f"http://{host}:{_port(name)}/health/ready"
            if not _wait(client, url, deadline):
                print(f"{name} did not become ready at {url}", file=sys.stderr, flush=True)
                return 1
    demo = os.environ.get("QRP_DEMO", "1") != "0"
    if demo:
        loaded = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "load_demo.py"), "--gateway", gateway],
            cwd=ROOT,
        )
        if loaded.returncode != 0:
            print("loading the demo city failed; the suite keeps running", file=sys.stderr)
    read_key = READ_KEY_FILE.read_text().strip() if READ_KEY_FILE.exists() else None
    lines = [
        "",
        "Quality Revitalization Platform is running.",
        f"  Gateway          {gateway}",
        f"  Standings page   {gateway}/" + ("" if demo else "   (empty: started with DEMO=0)"),
        f"  API docs         {gateway}/docs",
        f"  Suite health     {gateway}/health",
    ]
    lines += [f"  {name:<16} http://{host}:{_port(name)}" for name in SERVICES[1:]]
    if read_key:
        lines.append(f"  Demo read key    {read_key}   (X-API-Key, read scopes only)")
    lines += [
        f"  Admin key        {os.environ.get('GATEWAY_BOOTSTRAP_ADMIN_KEY', '(not set)')}",
        "  Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
