"""The standings page's HTML: which view it shows, provisional outcomes, counties not
assessed, and a sign-in form that never puts the key in a URL."""

from __future__ import annotations

from typing import Any

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
