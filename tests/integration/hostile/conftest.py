"""The hostile-input suite: what a hostile caller sends through the gateway, and what must hold.

Each case asserts the clean 4xx (or 5xx the protocol prescribes), the time it took, and that
nothing was stored. `make integration` runs it against the local suite it starts and tells it the
services' own URLs (`QRP_SERVICE_URLS`, for their `/health/live` while an attack runs) and the
gateway's process (`QRP_GATEWAY_PID`, for its memory); against another deployment only the gateway
is watched. Figures go to `test-output/hostile.txt` and the end of the run's output.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.hostile.support import figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    measured = figures()
    if measured:
        terminalreporter.section("hostile input: figures")
        for figure in measured:
            terminalreporter.write_line(figure)


@pytest.fixture(scope="session")
def service_urls(gateway_url: str) -> dict[str, str]:
    """Each watched process's own URL: the gateway always, the services when known."""
    urls: dict[str, str] = json.loads(os.environ.get("QRP_SERVICE_URLS") or "{}")
    return {"gateway": gateway_url, **urls}


@pytest.fixture(scope="session")
def gateway_pid() -> int | None:
    value = os.environ.get("QRP_GATEWAY_PID")
    return int(value) if value else None


@pytest.fixture(scope="session")
def marker() -> str:
    """A text unique to this run, for records the suite may look for."""
    return secrets.token_hex(4).upper()


def exports(client: httpx.Client) -> dict[str, bytes]:
    """Every data service's whole export: what is stored, byte for byte."""
    answers = {
        kind: client.get(f"/api/v1/{kind}/export")
        for kind in ("brands", "certificates", "spot-checks")
    }
    for kind, answer in answers.items():
        assert answer.status_code == 200, (kind, answer.text[:300])
    return {kind: answer.content for kind, answer in answers.items()}


@pytest.fixture
def unchanged(writer: httpx.Client) -> Iterator[None]:
    """The test must leave every data service's records exactly as they were."""
    before = exports(writer)
    yield
    assert exports(writer) == before, "a refused request stored something"
