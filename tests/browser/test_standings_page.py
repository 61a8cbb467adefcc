"""The standings page in headless Chromium, checked against the API's standings.

With `GATEWAY_URL` it tests that running suite (the demo loaded, the admin key in
`QRP_ADMIN_KEY` or `GATEWAY_BOOTSTRAP_ADMIN_KEY`, the read key in `var/keys/demo-read.key` or
`DEMO_READ_KEY_FILE`). Without it, it starts the suite as local processes on SQLite, checks
the page before any data, loads the demo city with `scripts/load_demo.py` (twice), and tests
that. Screenshots go to `test-output/`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from scripts.local_suite import local_suite

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
YEAR = 2007
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_DATA_MARKER = "no data loaded yet"


@dataclass
class Target:
    """A running suite whose gateway serves the page, and the read-only key."""

    page_url: str
    api_url: str
    read_key: str
    first_load: subprocess.CompletedProcess[str] | None = None
    first_load_seconds: float = 0.0
    second_load: subprocess.CompletedProcess[str] | None = None
    page_before_data: str = ""


def _load(
    gateway_url: str, admin_key: str, key_file: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "scripts/load_demo.py",
            "--gateway",
            gateway_url,
            "--key-file",
            str(key_file),
            "--quiet",
        ],
        env={**env, "GATEWAY_BOOTSTRAP_ADMIN_KEY": admin_key},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    url = os.environ.get("GATEWAY_URL")
    if url:
        key_file = Path(
            os.environ.get("DEMO_READ_KEY_FILE", ROOT / "var" / "keys" / "demo-read.key")
        )
        yield Target(
            page_url=url.rstrip("/"), api_url=url.rstrip("/"), read_key=key_file.read_text().strip()
        )
        return
    with local_suite() as suite:
        env = {**suite.environment(), "PYTHONPATH": str(ROOT)}
        page_url = suite.gateway_url
        try:
            before = httpx.get(f"{page_url}/", timeout=30).text
            key_file = suite.workdir / "keys" / "demo-read.key"
            started = time.monotonic()
            first = _load(suite.gateway_url, suite.admin_key, key_file, env)
            seconds = time.monotonic() - started
            second = _load(suite.gateway_url, suite.admin_key, key_file, env)
            OUTPUT.mkdir(exist_ok=True)
            (OUTPUT / "demo-load.txt").write_text(
                f"first run ({seconds:.1f} s):\n{first.stdout}{first.stderr}\n"
                f"second run:\n{second.stdout}{second.stderr}"
            )
            assert first.returncode == 0, first.stderr + first.stdout
            yield Target(
                page_url=page_url,
                api_url=suite.gateway_url,
                read_key=key_file.read_text().strip(),
                first_load=first,
                first_load_seconds=seconds,
                second_load=second,
                page_before_data=before,
            )
        finally:
            suite.stop()


@pytest.fixture(scope="module")
def standings(target: Target) -> dict:
    response = httpx.get(
        f"{target.api_url}/api/v1/assessments/{YEAR}/standings",
        headers={"X-API-Key": target.read_key},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "standings.json").write_text(
        json.dumps(response.json(), ensure_ascii=False, indent=1)
    )
    return response.json()


def test_the_page_says_no_data_before_the_demo_is_loaded(target: Target) -> None:
    if target.first_load is None:
        pytest.skip("a deployment given by GATEWAY_URL is already loaded")
    assert NO_DATA_MARKER in target.page_before_data


def test_loading_takes_under_two_minutes_and_a_second_run_adds_nothing(target: Target) -> None:
    if target.first_load is None:
        pytest.skip("a deployment given by GATEWAY_URL is loaded by its operator")
    assert target.first_load_seconds < 120
    assert target.second_load is not None
    assert target.second_load.returncode == 0, target.second_load.stderr
    assert "nothing new" in target.second_load.stdout


def test_the_ranking_on_the_page_equals_the_api_standings(target: Target, standings: dict) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{target.page_url}/?year={YEAR}", timeout=60_000)
            page.wait_for_selector("#standings tbody tr.county")
            rows = page.eval_on_selector_all(
                "#standings tbody tr.county",
                """rows => rows.map(r => ({
                    county: r.dataset.county,
                    rank: r.querySelector('td.rank').textContent.trim(),
                    score: r.querySelector('td.score').textContent.trim(),
                    outcome: r.dataset.outcome,
                    grade: r.dataset.grade,
                    bars: r.querySelectorAll('.bar').length,
                }))""",
            )
            page.screenshot(path=str(OUTPUT / "standings.png"), full_page=True)

            expected = [
                {
                    "county": s["county_code"],
                    "rank": str(s["rank"]),
                    "score": f"{s['score']:.2f}",
                    "outcome": s["outcome"],
                    "grade": s["grade"],
                    "bars": len(s["indicators"]),
                }
                for s in standings["items"]
            ]
            assert rows == expected
            assert len(rows) == 11
            assert page.text_content("#city .big strong") == f"{standings['city']['score']:.2f}"

            # The demo city is built so that counties differ: a commended top, a veto, a weak one.
            outcomes = {r["county"]: r["outcome"] for r in rows}
            assert outcomes["320322"] == "criticized"
            assert "commended" in outcomes.values()
            assert rows[-1]["county"] == "320324"

            page.click('#standings tr[data-county="320322"] td.name a')
            page.wait_for_selector("#county")
            heading = page.locator("#county")
            assert heading.get_attribute("data-county") == "320322"
            county = next(s for s in standings["items"] if s["county_code"] == "320322")
            assert heading.get_attribute("data-rank") == str(county["rank"])
            assert page.locator("tr.indicator").count() == len(county["indicators"])
            veto = page.locator('tr.indicator[data-indicator="major_quality_incidents"]')
            assert veto.get_attribute("data-status") == "missed"
            assert "evidence" in page.text_content("#indicators")
            page.screenshot(path=str(OUTPUT / "county-320322.png"), full_page=True)
        finally:
            browser.close()
