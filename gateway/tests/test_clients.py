"""The command-line tool manages the same clients the gateway authenticates."""

import asyncio
import json
import os
import subprocess
import sys

from gateway.tests.conftest import client_of
from gateway.tests.support import ROOT
from kit.testing import Harness


def _cli(service: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": service.database_url}
    return subprocess.run(
        [sys.executable, "-m", "gateway.clients", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_add_use_list_and_revoke_from_the_shell(service: Harness) -> None:
    added = _cli(
        service,
        "add",
        "Provincial platform",
        "--scopes",
        "brands:read",
        "--rate-limit",
        "100/minute",
    )
    assert added.returncode == 0, added.stderr
    client = json.loads(added.stdout)
    assert client["scopes"] == ["brands:read"]
    async with client_of(service.app, api_key=client["api_key"]) as caller:
        assert (await caller.get("/api/v1/brands/stub/echo")).status_code == 200

        listed = _cli(service, "list")
        assert client["id"] in listed.stdout
        assert client["api_key"] not in listed.stdout

        revoked = _cli(service, "revoke", client["id"])
        assert json.loads(revoked.stdout)["status"] == "revoked"
        await asyncio.sleep(service.app.state.settings.auth_cache_seconds + 0.1)
        assert (await caller.get("/api/v1/brands/stub/echo")).status_code == 401


async def test_bad_input_names_the_field(service: Harness) -> None:
    result = _cli(service, "add", "x", "--scopes", "brands:fly")
    assert result.returncode == 2
    assert "scopes" in result.stderr
    assert _cli(service, "rotate", "no-such-client").returncode == 1
    unknown = _cli(service, "add", "x", "--counties", "320399")
    assert unknown.returncode == 1
    assert "county_codes[0]" in unknown.stderr
    bound = _cli(service, "add", "x", "--scopes", "assessments:read", "--counties", "320323")
    assert bound.returncode == 0, bound.stderr
    assert json.loads(bound.stdout)["county_codes"] == ["320323"]
