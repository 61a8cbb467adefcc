"""The standings page's HTML: which view it shows, provisional outcomes, counties not
assessed, a sign-in form that never puts the key in a URL, and the worklist a client bound
to a county sees beside the standings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.tests.conftest import Served
from gateway.tests.support import Backends, Process, service_environment, uvicorn, wait_ready
from gateway.ui import render
from gateway.ui.routes import _back_to, _published_standing


def _standing(code: str, **fields: Any) -> dict[str, Any]:
    row = {
        "indicator": "spot_check_pass_rate",
        "name": "合格率",
        "source": "spot_checks",
        "unit": "rate",
        "actual": 0.9,
        "target": 0.925,
        "comparator": "above_reference",
        "status": "missed",
        "attainment": 0.97,
        "veto": False,
    }
    return {
        "county_code": code,
        "county_name": "銅山縣",
        "kind": "county",
        "group": "counties",
        "group_label": "縣(市)",
        "group_rank": 1,
        "score": 81.25,
        "rank": 2,
        "grade": "good",
        "grade_label": "良好",
        "outcome": "criticized",
        "outcome_reason": "a veto indicator was missed",
        "indicators": [row],
        **fields,
    }


def _standings(**fields: Any) -> dict[str, Any]:
    return {
        "year": 2007,
        "as_of": "2007-12-31",
        "provisional": False,
        "items": [
            _standing("320323"),
            _standing(
                "320381",
                score=None,
                rank=None,
                grade=None,
                grade_label=None,
                group_rank=None,
                outcome="not_assessed",
                outcome_reason="not assessed: no data",
            ),
        ],
        "city": {"score": 76.0, "grade": "pass", "grade_label": "合格", "indicators": []},
        "meta": {"completeness": {"brands": "ok"}, "target_set_version": 1},
        **fields,
    }


RUN = {"id": "run-1", "published_at": "2008-01-28T09:00:00+00:00", "supersedes": None}


def test_a_published_run_says_so_with_its_date() -> None:
    page = render.standings_page(_standings(), view=render.PUBLISHED, run=RUN)
    assert 'data-view="published"' in page
    assert 'data-published-on="2008-01-28"' in page
    assert "/api/v1/assessments/2007/runs/run-1" in page
    assert "實時排名" not in page
    assert 'id="sign-in"' in page


def test_the_live_view_says_it_is_not_published() -> None:
    page = render.standings_page(_standings(), view=render.LIVE, signed_in=True)
    assert 'data-view="live"' in page
    assert "not published" in page
    assert 'action="/ui/sign-out"' in page


def test_provisional_outcomes_are_labelled() -> None:
    page = render.standings_page(_standings(provisional=True, as_of="2007-06-30"), view=render.LIVE)
    assert 'id="provisional"' in page
    assert "通報批評 (暫定)" in page


def test_a_county_not_assessed_has_no_rank_score_or_grade() -> None:
    page = render.standings_page(_standings(), view=render.LIVE)
    row = page[page.index('data-county="320381"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="rank">—</td>' in row
    assert '<td class="score">—</td>' in row
    assert "未評定" in row


def test_the_sign_in_form_posts_the_key_in_its_body() -> None:
    form = render.message_page("t", "m")
    assert 'method="post" action="/ui/sign-in"' in form
    assert 'type="password" name="api_key"' in form


def test_after_signing_in_the_visitor_stays_on_this_site() -> None:
    assert _back_to("/counties/320323?year=2007") == "/counties/320323?year=2007"
    assert _back_to("//evil.example/") == "/"
    assert _back_to("https://evil.example/") == "/"
    assert _back_to(None) == "/"


def test_a_county_of_a_published_run_keeps_the_run_completeness() -> None:
    run = {**RUN, "standings": _standings()}
    standing = _published_standing(run, "320323")
    assert standing is not None
    assert (standing["year"], standing["meta"]["completeness"]) == (2007, {"brands": "ok"})
    page = render.county_page(standing, 2007, view=render.PUBLISHED, run=run)
    assert 'data-outcome="criticized"' in page
    assert "縣(市) 組內" in page
    assert _published_standing(run, "320399") is None


def _worklist(code: str = "320323") -> dict[str, Any]:
    item = {
        "indicator": "brand_cultivation",
        "label": "名牌培育",
        "due_on": "2026-12-15",
        "state": "missing",
        "value": None,
        "reported_value_id": None,
        "comment": None,
        "submitted_at": None,
        "reviewed_at": None,
    }
    returned = {
        **item,
        "indicator": "quality_incidents",
        "label": "質量事故",
        "state": "returned",
        "value": 2,
        "reported_value_id": "rv-1",
        "comment": "請附事故報告 <附件>",
        "submitted_at": "2026-11-20T08:30:00+00:00",
        "reviewed_at": "2026-11-22T10:00:00+00:00",
    }
    accepted = {**returned, "indicator": "standards", "label": "標準", "state": "accepted"}
    return {
        "year": 2026,
        "county_code": code,
        "county_name": "銅山縣",
        "items": [item, returned, accepted],
    }


def test_a_worklist_shows_each_indicator_state_and_comment() -> None:
    section = render.worklist_section(_worklist())
    assert 'id="worklist-320323"' in section
    row = section[section.index('data-indicator="quality_incidents"') :]
    row = row[: row.index("</tr>")]
    assert 'data-state="returned"' in row
    assert 'data-reported-value-id="rv-1"' in row
    assert "請附事故報告 &lt;附件&gt;" in row, "comments are escaped"
    assert "2026-11-20 08:30" in row
    assert (
        "待填報 missing 1 · 待審核 submitted 0 · 已退回 returned 1 · 已採納 accepted 1" in section
    )
    empty = render.worklist_section({**_worklist(), "items": []})
    assert "nothing to report this year" in empty


@pytest.fixture(scope="module")
async def stub_assessment(backends: Backends, keys: Path) -> AsyncIterator[Process]:
    """A stand-in for the assessment service, answering canned documents."""
    env = service_environment(backends.workdir, keys)
    process = uvicorn("stub_assessment", "stub_backend:build_assessment_app", env, backends.workdir)
    try:
        await wait_ready(process)
        yield process
    finally:
        process.stop()


async def _client(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await admin.post(
        "/api/v1/admin/clients",
        json={"name": "county office", "scopes": ["assessments:read"], **body},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _signed_in_page(url: str, key: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as visitor:
        signed = await visitor.post("/ui/sign-in", data={"api_key": key, "next": "/?year=2026"})
        assert signed.status_code == 303, signed.text
        return await visitor.get("/?year=2026")


async def test_a_county_bound_client_sees_its_worklist_beside_the_standings(
    admin: httpx.AsyncClient, served: Served, stub_assessment: Process
) -> None:
    bound = await _client(admin, county_codes=["320323"])
    city_wide = await _client(admin)
    documents = {
        "/api/v1/regions": {"items": [], "next_cursor": None},
        "/api/v1/assessments/2026/standings": _standings(year=2026),
        "/api/v1/assessments/2026/worklist": _worklist(),
    }
    async with httpx.AsyncClient(base_url=stub_assessment.url) as direct:
        assert (await direct.put("/stub-control/canned", json=documents)).status_code == 200
    async with served(assessment_url=stub_assessment.url) as url:
        page = await _signed_in_page(url, bound["api_key"])
        assert page.status_code == 200, page.text
        assert 'data-view="live"' in page.text
        assert 'id="standings"' in page.text
        assert 'id="worklist-320323"' in page.text
        assert 'data-state="returned"' in page.text
        assert page.text.index('id="worklist-320323"') < page.text.index('id="ranking"')

        others = await _signed_in_page(url, city_wide["api_key"])
        assert others.status_code == 200
        assert 'id="standings"' in others.text
        assert 'class="worklist"' not in others.text

        async with httpx.AsyncClient(base_url=url) as visitor:
            refused = await visitor.post("/ui/sign-in", data={"api_key": "qrp_not-a-key"})
            assert refused.status_code == 401
    async with httpx.AsyncClient(base_url=stub_assessment.url) as direct:
        calls = (await direct.get("/stub-control/calls")).json()
    assert calls["GET /api/v1/assessments/2026/worklist?county_code=320323"] == 1
    assert calls["counties 320323"] >= 1


async def test_a_worklist_that_cannot_be_read_is_said_so_and_the_standings_still_show(
    admin: httpx.AsyncClient, served: Served, stub_assessment: Process
) -> None:
    bound = await _client(admin, county_codes=["320321"])
    documents = {
        "/api/v1/regions": {"items": [], "next_cursor": None},
        "/api/v1/assessments/2026/standings": _standings(year=2026),
    }
    async with httpx.AsyncClient(base_url=stub_assessment.url) as direct:
        await direct.put("/stub-control/canned", json=documents)
    async with served(assessment_url=stub_assessment.url) as url:
        page = await _signed_in_page(url, bound["api_key"])
    assert page.status_code == 200, page.text
    assert 'id="worklist-320321"' in page.text
    assert "數據暫不可用" in page.text or "no data" in page.text
    assert 'id="standings"' in page.text


def _row(indicator: str, **fields: Any) -> dict[str, Any]:
    names = {"spot_check_pass_rate": "合格率", "famous_brands": "名牌數"}
    units = {"spot_check_pass_rate": "rate", "famous_brands": "count"}
    row = {
        "indicator": indicator,
        "name": names[indicator],
        "source": "spot_checks",
        "unit": units[indicator],
        "comparator": "at_least",
        "status": "met",
        "veto": False,
    }
    return {**row, **fields}


def _charted() -> dict[str, Any]:
    """Three counties, two indicators; the third county has no spot-check figure."""
    counties = [
        ("320323", "銅山縣", 0.9, 0.925, "missed", 6, 5),
        ("320381", "新沂市", 0.45, 0.9, "missed", 2, 4),
        ("320382", "邳州<市>", None, 0.9, "no_data", 10, 5),
    ]
    items = []
    for code, name, rate, rate_target, status, brands, brand_target in counties:
        indicators = [
            _row(
                "spot_check_pass_rate",
                actual=rate,
                target=rate_target,
                status=status,
                attainment=None if rate is None else rate / rate_target,
            ),
            _row("famous_brands", actual=brands, target=brand_target, attainment=brands / 5),
        ]
        items.append(_standing(code, county_name=name, indicators=indicators))
    city = [_row("spot_check_pass_rate"), _row("famous_brands")]
    return _standings(items=items, city={"score": 80.0, "grade": "pass", "indicators": city})


def _svg(page: str, svg_id: str) -> ET.Element:
    start = page.index('<svg class="chart')
    start = page.index(f'id="{svg_id}"', start)
    start = page.rindex("<svg", 0, start)
    markup = page[start : page.index("</svg>", start) + len("</svg>")]
    return ET.fromstring(markup)  # noqa: S314 - the page these tests rendered themselves


def _bars(svg: ET.Element) -> list[ET.Element]:
    return [r for r in svg.iter("rect") if "chart-bar" in (r.get("class") or "").split()]


def test_each_indicator_chart_has_one_bar_per_county_with_its_figures_in_the_title() -> None:
    page = render.standings_page(_charted(), view=render.LIVE)
    assert 'id="charts"' in page
    for indicator in ("spot_check_pass_rate", "famous_brands"):
        bars = _bars(_svg(page, f"chart-{indicator}"))
        assert [b.get("data-county") for b in bars] == ["320323", "320381", "320382"]
        for bar in bars:
            title = bar.find("title")
            assert title is not None
            assert title.text == bar.get("aria-label")
    rate = _bars(_svg(page, "chart-spot_check_pass_rate"))
    titles = [b.findtext("title") or "" for b in rate]
    assert "銅山縣 320323" in titles[0]
    assert "90.0%" in titles[0]
    assert "92.5%" in titles[0]
    assert "新沂市 320381" in titles[1]
    assert "45.0%" in titles[1]
    assert "90.0%" in titles[1]
    assert "邳州<市> 320382" in titles[2], "the name is escaped in the markup, whole in the title"
    assert "actual —" in titles[2]
    assert "no_data" in titles[2]
    assert [b.get("class") for b in rate] == [
        "chart-bar county status-missed",
        "chart-bar county status-missed",
        "chart-bar county status-no_data",
    ]
    brands = _bars(_svg(page, "chart-famous_brands"))
    assert "actual 6, 目標 target 5" in (brands[0].findtext("title") or "")


def test_a_bar_is_as_long_as_its_actual_and_its_target_is_a_tick() -> None:
    page = render.standings_page(_charted(), view=render.LIVE)
    svg = _svg(page, "chart-spot_check_pass_rate")
    widths = [float(b.get("width") or 0) for b in _bars(svg)]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.2)
    assert widths[2] == 0
    ticks = [float(line.get("x1") or 0) for line in svg.iter("line")]
    assert len(ticks) == 3
    assert ticks[0] > ticks[1] == ticks[2], "a tick at each county's own target"
    brands = _bars(_svg(page, "chart-famous_brands"))
    assert float(brands[2].get("width") or 0) > float(brands[0].get("width") or 0)


def test_a_county_without_an_indicator_has_no_bar_in_its_chart() -> None:
    data = _charted()
    data["items"][2]["indicators"] = data["items"][2]["indicators"][1:]
    page = render.standings_page(data, view=render.LIVE)
    assert len(_bars(_svg(page, "chart-spot_check_pass_rate"))) == 2
    assert len(_bars(_svg(page, "chart-famous_brands"))) == 3


def test_a_county_page_charts_each_indicators_attainment() -> None:
    standing = _charted()["items"][1]
    page = render.county_page({**standing, "year": 2007}, 2007)
    svg = _svg(page, "attainment-320381")
    bars = _bars(svg)
    assert [b.get("data-indicator") for b in bars] == ["spot_check_pass_rate", "famous_brands"]
    assert "attainment 50%" in (bars[0].findtext("title") or "")
    assert "45.0%" in (bars[0].findtext("title") or "")
    assert "attainment 40%" in (bars[1].findtext("title") or "")
    assert svg.findtext("title", "").startswith("新沂市 320381")


def test_the_page_links_the_data_exports_as_xlsx_and_names_no_outside_host() -> None:
    page = render.standings_page(_charted(), view=render.LIVE)
    for path in ("brands", "certificates", "spot-checks"):
        assert f'href="/api/v1/{path}/export?format=xlsx"' in page
    assert 'href="/api/v1/assessments/2007/standings?format=xlsx"' in page
    published = render.standings_page(_charted(), view=render.PUBLISHED, run=RUN)
    assert 'href="/ui/downloads/2007/standings.xlsx"' in published
    assert 'href="/ui/downloads/2007/report.pdf"' in published
    assert "http://" not in page
    assert "https://" not in page
    assert "<script src=" not in page.replace('<script src="/ui/static/app.js"', "")


def test_every_indicator_of_the_shipped_target_set_shows_with_its_seed_wording() -> None:
    """The 2007 set's rows as the standings give them, the plan's new measures among them
    (the informational ones with no target, the veto counting incidents): the ranking and a
    county page show each by key and name, with their source and status labelled."""
    shipped = Path(__file__).resolve().parents[2] / "config" / "target_sets" / "2007.json"
    indicators = json.loads(shipped.read_text(encoding="utf-8"))["indicators"]
    rows = [
        {
            "indicator": i["key"],
            "name": i["name"],
            "source": i["source"],
            "unit": "rate" if "rate" in i["measure"]["kind"] else "count",
            "actual": 0.0 if i["comparator"] == "zero" else 3.0,
            "target": None if i["comparator"] == "informational" else 1.0,
            "comparator": i["comparator"],
            "status": "informational" if i["comparator"] == "informational" else "met",
            "attainment": None if i["comparator"] == "informational" else 1.0,
            "veto": i.get("veto", False),
        }
        for i in indicators
    ]
    data = _standings(
        items=[_standing("320322", county_name="沛縣", indicators=rows)],
        city={"score": 80.0, "grade": "pass", "indicators": rows},
    )
    ranking = render.standings_page(data, view=render.LIVE)
    county = render.county_page({**data["items"][0], "year": 2007}, 2007)
    new = {
        "food_processing_rectification": "完成食品加工業集中整頓",
        "quality_county_activity": "其他縣(市)、區啟動和開展質量興縣(市、區)活動",
        "metrology_special_checks": "車輛檢測線",
        "special_equipment_overdue": "特種設備動態監管",
        "licensed_food_producers": "推進食品安全市場準入",
        "new_gi_products": "做好地理標志產品申報和保護工作",
        "quality_awards_won": "爭創國家質量獎",
    }
    for key, wording in new.items():
        assert f'data-indicator="{key}"' in ranking, key
        assert f'data-indicator="{key}"' in county, key
        assert wording in county, key
    row = county[county.index('data-indicator="new_gi_products"') :]
    row = row[: row.index("</tr>")]
    assert "僅供參考 for information" in row
    assert "僅供參考 <code>informational</code>" in row
    rectification = county[county.index('data-indicator="food_processing_rectification"') :]
    assert "食品加工業整頓 food dispositions" in rectification[: rectification.index("</tr>")]
    assert "僅供參考 informational" in county, "the legend names the status"
