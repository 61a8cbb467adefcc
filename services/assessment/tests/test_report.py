"""The year-end report of a run as a PDF: every county's name, score and outcome in its text,
the same bytes for the same run, and a draft watermarked."""

import io
import re
from typing import Any

import httpx
import pypdfium2
import pytest
import python_calamine

from assessment.report import OUTCOME_LABELS
from kit.pdf import FONT_CANDIDATES
from kit.testing import Harness

from .fakes import FakeDataServices
from .test_runs import RUNS, _publish
from .test_standings import _load

needs_font = pytest.mark.skipif(
    not any(font.is_file() for font in FONT_CANDIDATES),
    reason="no CJK font installed (Debian: fonts-noto-cjk)",
)


def _text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    return "\n".join(page.get_textpage().get_text_range() for page in document)


def _score(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


async def _report(client: httpx.AsyncClient, run: dict[str, Any]) -> httpx.Response:
    response = await client.get(f"{RUNS}/{run['id']}/report.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    return response


@needs_font
async def test_the_report_of_a_published_run_names_every_county_with_its_score_and_outcome(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    run = await _publish(client)
    report = await _report(client, run)
    text = _text(report.content)
    assert "2007年度質量振興工作考核結果通報" in text
    assert "草稿" not in text
    for standing in run["standings"]["items"]:
        line = next(
            (
                row
                for row in text.splitlines()
                if standing["county_name"] in row and "名次" not in row
            ),
            None,
        )
        assert line is not None, standing["county_name"]
        ranking = re.search(
            rf"{standing['county_name']}\s*{re.escape(_score(standing['score']))}", text
        )
        assert ranking, (standing["county_name"], standing["score"])
        assert OUTCOME_LABELS[standing["outcome"]] in text
    criticized = [s for s in run["standings"]["items"] if s["outcome"] == "criticized"]
    for standing in criticized:
        assert f"{standing['county_name']}（得分" in text
    again = await _report(client, run)
    assert again.content == report.content


@needs_font
async def test_a_draft_report_is_watermarked(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    created = await client.post(RUNS)
    assert created.status_code == 201
    report = await _report(client, created.json())
    assert "草稿 DRAFT" in _text(report.content)


@needs_font
async def test_the_report_needs_the_read_scope(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    created = await service.client().post(RUNS)
    refused = await service.client(scopes=[]).get(f"{RUNS}/{created.json()['id']}/report.pdf")
    assert refused.status_code == 403


async def test_standings_and_a_run_download_as_workbooks_with_every_figure(
    service: Harness, data_services: FakeDataServices
) -> None:
    await _load(service, data_services, complete=True)
    client = service.client()
    run = await _publish(client)
    for path in (f"{RUNS}/{run['id']}", "/api/v1/assessments/2007/standings"):
        answer = await client.get(path, params={"format": "xlsx"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert ".xlsx" in answer.headers["content-disposition"]
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(answer.content))
        names = book.sheet_names
        assert names[0] == "排名"
        assert names[-1] == "說明"
        indicators = {row["name"] for row in run["standings"]["items"][0]["indicators"]}
        assert set(names[1:-1]) == indicators
        ranking = book.get_sheet_by_name("排名").to_python()
        assert ranking[0][:6] == ["名次", "代碼", "縣（市、區）", "得分", "等次", "考核結果"]
        scores = {row[1]: row[3] for row in ranking[1:]}
        expected = {s["county_code"]: s["score"] for s in run["standings"]["items"]}
        assert scores == pytest.approx(expected)
        explained = book.get_sheet_by_name("說明").to_python()
        assert len(explained) - 1 == sum(len(s["indicators"]) for s in run["standings"]["items"])
