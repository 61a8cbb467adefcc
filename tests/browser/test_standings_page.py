"""The standings page in headless Chromium, checked against the API.

With `GATEWAY_URL` it tests that running suite (the demo loaded, the admin key in
`QRP_ADMIN_KEY` or `GATEWAY_BOOTSTRAP_ADMIN_KEY`, the read key in `var/keys/demo-read.key` or
`DEMO_READ_KEY_FILE`). Without it, it starts the suite as local processes on SQLite, checks
the page before any data, loads the demo city with `scripts/load_demo.py` (twice; the loader
publishes the year's run), then records a major quality incident in 鼓樓區 that no
publication contains yet. Without a key the page must show the published run only (鼓樓區
still commended); signed in with the read key, the live standings (鼓樓區 criticized).
The page's charts draw one bar per county and indicator. `/docs` is opened with every
address outside the gateway blocked, and still lists the standings operation.
Screenshots go to `test-output/`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pypdfium2
import pytest
import python_calamine
from playwright.sync_api import Route, sync_playwright

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
GULOU = "320302"
ROW_SCRIPT = """rows => rows.map(r => ({
    county: r.dataset.county,
    rank: r.querySelector('td.rank').textContent.trim(),
    score: r.querySelector('td.score').textContent.trim(),
    outcome: r.dataset.outcome,
    grade: r.dataset.grade,
    bars: r.querySelectorAll('.bar').length,
}))"""


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
    unpublished_incident: bool = False


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
            _record_incident(suite.gateway_url, suite.admin_key)
            yield Target(
                page_url=page_url,
                api_url=suite.gateway_url,
                read_key=key_file.read_text().strip(),
                first_load=first,
                first_load_seconds=seconds,
                second_load=second,
                page_before_data=before,
                unpublished_incident=True,
            )
        finally:
            suite.stop()


def _record_incident(gateway_url: str, admin_key: str) -> None:
    """A correction after publication: 鼓樓區 reports a major quality incident."""
    response = httpx.post(
        f"{gateway_url}/api/v1/reported-values",
        headers={"X-API-Key": admin_key},
        json={
            "county_code": GULOU,
            "year": YEAR,
            "indicator": "major_quality_incidents",
            "value": 1,
            "evidence": {"document": "鼓質監〔2008〕5號", "text": "補報：轄區食品安全事故一起"},
            "reported_by": "鼓樓區質量技術監督局",
            "measured_on": f"{YEAR}-12-31",
        },
        timeout=60,
    )
    assert response.status_code == 201, response.text
    accepted = httpx.post(
        f"{gateway_url}/api/v1/reported-values/{response.json()['id']}/status",
        headers={"X-API-Key": admin_key, "If-Match": response.headers["ETag"]},
        json={"state": "accepted"},
        timeout=60,
    )
    assert accepted.status_code == 200, accepted.text


@pytest.fixture(scope="module")
def published(target: Target) -> dict:
    """The year's current publication, as the API serves it."""
    headers = {"X-API-Key": target.read_key}
    runs = httpx.get(
        f"{target.api_url}/api/v1/assessments/{YEAR}/runs",
        params={"status": "published"},
        headers=headers,
        timeout=60,
    ).json()["items"]
    (current,) = [r for r in runs if r["superseded_by"] is None]
    run = httpx.get(
        f"{target.api_url}/api/v1/assessments/{YEAR}/runs/{current['id']}",
        headers=headers,
        timeout=60,
    )
    assert run.status_code == 200, run.text
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "published-run.json").write_text(json.dumps(run.json(), ensure_ascii=False, indent=1))
    return run.json()


def _expected(standings: dict) -> list[dict]:
    return [
        {
            "county": s["county_code"],
            "rank": "—" if s["rank"] is None else str(s["rank"]),
            "score": "—" if s["score"] is None else f"{s['score']:.2f}",
            "outcome": s["outcome"],
            "grade": s["grade"] or "",
            "bars": len(s["indicators"]),
        }
        for s in standings["items"]
    ]


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


def test_without_a_key_the_page_shows_only_the_published_run(
    target: Target, published: dict, standings: dict
) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # No ?year=: the latest year with a target set.
            page.goto(f"{target.page_url}/", timeout=60_000)
            page.wait_for_selector("#standings tbody tr.county")
            view = page.locator("#view")
            assert view.get_attribute("data-view") == "published"
            assert view.get_attribute("data-run") == published["id"]
            assert view.get_attribute("data-published-on") == published["published_at"][:10]
            rows = page.eval_on_selector_all("#standings tbody tr.county", ROW_SCRIPT)
            page.screenshot(path=str(OUTPUT / "standings-published.png"), full_page=True)
            assert rows == _expected(published["standings"])
            assert len(rows) == 11
            outcomes = {r["county"]: r["outcome"] for r in rows}
            if target.unpublished_incident:
                # The incident recorded after publication is live, not public.
                assert outcomes[GULOU] == "commended"
                live = {s["county_code"]: s["outcome"] for s in standings["items"]}
                assert live[GULOU] == "criticized"
            page.click(f'#standings tr[data-county="{GULOU}"] td.name a')
            page.wait_for_selector("#county")
            assert page.locator("#view").get_attribute("data-view") == "published"
            assert page.locator("#county").get_attribute("data-outcome") == outcomes[GULOU]
        finally:
            browser.close()


def test_the_ranking_on_the_page_equals_the_api_standings(target: Target, standings: dict) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{target.page_url}/?year={YEAR}", timeout=60_000)
            page.fill('#sign-in input[name="api_key"]', target.read_key)
            page.click('#sign-in button[type="submit"]')
            page.wait_for_selector("#signed-in")
            assert target.read_key not in page.url
            (cookie,) = [c for c in page.context.cookies() if c["name"] == "qrp_ui_key"]
            assert cookie["httpOnly"] is True
            page.goto(f"{target.page_url}/?year={YEAR}", timeout=60_000)
            page.wait_for_selector("#standings tbody tr.county")
            assert page.locator("#view").get_attribute("data-view") == "live"
            rows = page.eval_on_selector_all("#standings tbody tr.county", ROW_SCRIPT)
            page.screenshot(path=str(OUTPUT / "standings.png"), full_page=True)
            assert rows == _expected(standings)
            assert len(rows) == 11
            assert page.text_content("#city .big strong") == f"{standings['city']['score']:.2f}"

            # The demo city is built so that counties differ: a commended top, vetoes, a weak one.
            outcomes = {r["county"]: r["outcome"] for r in rows}
            assert outcomes["320322"] == "criticized"
            assert outcomes["320303"] == "criticized"
            assert "commended" in outcomes.values()
            assert rows[-1]["county"] == "320324"
            grades = {r["grade"] for r in rows}
            assert {"excellent", "good", "pass", "fail"} <= grades

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

            page.click('form.account button[type="submit"]')
            page.wait_for_selector("#sign-in")
            assert page.locator("#view").get_attribute("data-view") == "published"
        finally:
            browser.close()


CHART_SCRIPT = """svgs => svgs.map(svg => ({
    id: svg.id,
    bars: [...svg.querySelectorAll('rect.chart-bar')].map(bar => ({
        county: bar.dataset.county,
        actual: bar.dataset.actual,
        title: bar.querySelector('title').textContent,
        width: bar.getBoundingClientRect().width,
    })),
}))"""


def test_the_charts_draw_a_bar_per_county_and_indicator(target: Target, published: dict) -> None:
    OUTPUT.mkdir(exist_ok=True)
    standings = published["standings"]
    expected: dict[str, list[str]] = {}
    for standing in standings["items"]:
        for row in standing["indicators"]:
            expected.setdefault(f"chart-{row['indicator']}", []).append(standing["county_code"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{target.page_url}/?year={YEAR}", timeout=60_000)
            page.wait_for_selector("#charts svg.indicator-chart rect.chart-bar", state="attached")
            charts = page.eval_on_selector_all("#charts svg.indicator-chart", CHART_SCRIPT)
            page.locator("#charts").screenshot(path=str(OUTPUT / "standings-charts.png"))
            assert {c["id"]: [b["county"] for b in c["bars"]] for c in charts} == expected
            drawn = [b for c in charts for b in c["bars"] if b["width"] > 0]
            assert len(drawn) > len(charts), "bars with an actual are drawn, not only listed"
            for chart in charts:
                # Drawn to scale: a larger actual is a longer bar, a zero or none no bar.
                measured = sorted(
                    (float(b["actual"]), b["width"]) for b in chart["bars"] if b["actual"]
                )
                widths = [width for _, width in measured]
                assert widths == sorted(widths), chart["id"]
                assert all(w == 0 for a, w in measured if a == 0), chart["id"]
                assert all(w > 0 for a, w in measured if a > 0), chart["id"]
            names = {s["county_code"]: s["county_name"] for s in standings["items"]}
            for chart in charts:
                for bar in chart["bars"]:
                    assert bar["title"].startswith(f"{names[bar['county']]} {bar['county']}:")
                    assert "target" in bar["title"]

            county = standings["items"][0]
            page.goto(f"{target.page_url}/counties/{county['county_code']}?year={YEAR}")
            chart = page.locator(f"#attainment-{county['county_code']}")
            chart.wait_for(state="attached")
            assert chart.locator("rect.chart-bar").count() == len(county["indicators"])
            chart.screenshot(path=str(OUTPUT / f"attainment-{county['county_code']}.png"))
        finally:
            browser.close()


def test_the_docs_list_the_standings_with_every_outside_address_blocked(target: Target) -> None:
    OUTPUT.mkdir(exist_ok=True)
    own = urlsplit(target.page_url).netloc
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})

            def only_the_gateway(route: Route) -> None:
                if urlsplit(route.request.url).netloc == own:
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            context.route("**/*", only_the_gateway)
            page = context.new_page()
            page.goto(f"{target.page_url}/docs", timeout=60_000)
            operation = page.locator(
                ".opblock-get .opblock-summary-path"
                '[data-path="/api/v1/assessments/{year}/standings"]'
            )
            operation.wait_for(timeout=60_000)
            operation.scroll_into_view_if_needed()
            page.screenshot(path=str(OUTPUT / "docs-offline.png"))
            assert page.locator(".swagger-ui .info .title").count() == 1
            assert blocked == []
        finally:
            browser.close()


REPORT_OUTCOMES = {"commended": "通報表揚", "criticized": "通報批評", "none": "—"}
"""How the year-end report words each outcome."""


def _download(page: Any, selector: str) -> bytes:
    """Click a download link of the page; the file the browser saved."""
    with page.expect_download(timeout=60_000) as started:
        page.click(selector)
    path = started.value.path()
    assert path is not None
    return Path(path).read_bytes()


def test_the_published_report_and_workbook_download_from_the_page(
    target: Target, published: dict
) -> None:
    """The page without a key links the published run's year-end report and workbook; both
    download in the browser, the report naming every county with its outcome (its pages
    rendered to PNG beside the screenshots) and the workbook ranking every county."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(f"{target.page_url}/?year={YEAR}", timeout=60_000)
            page.wait_for_selector("#report-pdf")
            pdf = _download(page, "#report-pdf")
            workbook = _download(page, "#standings-xlsx")
        finally:
            browser.close()
    assert pdf.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(pdf)
    text = "\n".join(page.get_textpage().get_text_range() for page in document)
    for standing in published["standings"]["items"]:
        assert standing["county_name"] in text
        assert REPORT_OUTCOMES[standing["outcome"]] in text
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "report.pdf").write_bytes(pdf)
    for number, pdf_page in enumerate(document, start=1):
        pdf_page.render(scale=1.5).to_pil().save(OUTPUT / f"report-page-{number}.png")
    ranking = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(workbook))
    rows = ranking.get_sheet_by_name("排名").to_python()
    assert sorted(row[1] for row in rows[1:]) == sorted(
        s["county_code"] for s in published["standings"]["items"]
    )
