"""The standings page's HTML: which view it shows, provisional outcomes, counties not
assessed, a sign-in form that never puts the key in a URL, and the worklist a client bound
to a county sees beside the standings."""

from __future__ import annotations

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
