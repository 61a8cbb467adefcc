"""The year-end assessment report of a run (考核結果通報) as an A4 PDF, and standings as a workbook.

The report is drawn from the run's stored standings alone, so it says what the run says: the
ranking with scores, grades and outcomes; the commended and the criticized counties with the
reasons their standings give (a veto first); one chart per indicator of every county's actual
against its target; and the city's roll-up. Chinese is set in an OpenType CJK font embedded in
the file (Noto Sans CJK from the system's fonts-noto-cjk package unless another is configured).
Its creation date is the caller's (the service passes the run's publication), so the same
run gives the same bytes; a draft carries a watermark.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.pdf import Document, number
from kit.xlsxio import Column, Table, write_tables

OUTCOME_LABELS = {
    "commended": "通報表揚",
    "criticized": "通報批評",
    "none": "—",
    "not_assessed": "未能考核",
}
STATUS_LABELS = {
    "met": "完成",
    "missed": "未完成",
    "at_risk": "有風險",
    "pending": "待定",
    "pending_review": "待審核",
    "no_data": "無數據",
    "not_allocated": "未分配",
    "informational": "僅供參考",
}
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""The creation date written into a workbook, so the same standings give the same bytes."""


def _reasons(standing: dict[str, Any]) -> list[str]:
    """Why a county got its outcome, in the report's words: each veto it missed first, then
    its grade (the standing's own `outcome_reason` says the same for machines)."""
    vetoes = [
        f"未達成「{row.get('name') or row['indicator']}」（一票否決）"
        for row in standing.get("indicators", [])
        if row.get("veto") and row.get("status") == "missed"
    ]
    grade = standing.get("grade_label") or "—"
    listed = OUTCOME_LABELS.get(str(standing.get("outcome")), "")
    if vetoes:
        return [*vetoes, f"列入{listed}"]
    return [f"考核等次為{grade}，列入{listed}"]


def render_run_report(
    *,
    run: dict[str, Any],
    standings: dict[str, Any],
    font: Path,
    created_at: datetime | None = None,
) -> bytes:
    """The PDF of one run: `run` as the API's run summary gives it, `standings` as stored."""
    year = run["year"]
    published = run.get("status") == "published"
    pdf = Document(
        font,
        footer_text=f"{year}年度質量振興工作考核　運行 {run['id']}",
        created_at=created_at or datetime.now(UTC),
        watermark=None if published else "草稿 DRAFT",
        legend="藍條：實際值　紅線：目標值　右側：實際 / 目標",
    )
    pdf.set_title(f"{year}年度質量振興工作考核結果通報")
    pdf.set_author("質量振興平台")
    pdf.add_page()
    pdf.heading(f"{year}年度質量振興工作考核結果通報", size=17)
    state = f"已發佈（{str(run.get('published_at', ''))[:10]}）" if published else "草稿，未發佈"
    pdf.paragraph(
        f"考核截止日：{standings.get('as_of', run.get('as_of'))}　目標集版本：第"
        f" {run.get('target_set_version')} 版　狀態：{state}"
    )
    items = sorted(
        standings.get("items", []),
        key=lambda s: (s.get("rank") is None, s.get("rank") or 0, s.get("county_code") or ""),
    )
    pdf.heading("一、考核排名")
    pdf.grid(
        (16, 42, 24, 26, 66),
        ("名次", "縣（市、區）", "得分", "等次", "考核結果"),
        (
            (
                number(s.get("rank")),
                str(s.get("county_name") or s.get("county_code")),
                number(s.get("score")),
                str(s.get("grade_label") or "—"),
                OUTCOME_LABELS.get(str(s.get("outcome")), str(s.get("outcome") or "—")),
            )
            for s in items
        ),
    )
    for outcome, title in (("commended", "二、通報表揚"), ("criticized", "三、通報批評")):
        pdf.heading(title)
        chosen = [s for s in items if s.get("outcome") == outcome]
        if not chosen:
            pdf.paragraph("無。")
        for standing in chosen:
            reasons = "；".join(_reasons(standing)) or "—"
            pdf.paragraph(
                f"{standing.get('county_name')}（得分{number(standing.get('score'))}）：{reasons}"
            )
    not_assessed = [s for s in items if s.get("outcome") == "not_assessed"]
    if not_assessed:
        pdf.heading("未能考核")
        for standing in not_assessed:
            missing = "、".join(standing.get("not_assessed") or []) or "—"
            pdf.paragraph(f"{standing.get('county_name')}：缺少 {missing}")
    if pdf.will_page_break(95):
        pdf.add_page()
    pdf.heading("四、各項指標完成情況")
    indicators: dict[str, str] = {}
    for standing in items:
        for row in standing.get("indicators", []):
            indicators.setdefault(row["indicator"], row.get("name") or row["indicator"])
    for key, name in indicators.items():
        bars = []
        for standing in items:
            row = next((r for r in standing.get("indicators", []) if r["indicator"] == key), None)
            if row is not None:
                bars.append(
                    (str(standing.get("county_name")), row.get("actual"), row.get("target"))
                )
        pdf.bar_chart(name, bars)
    city = standings.get("city") or {}
    pdf.heading("五、全市情況")
    pdf.grid(
        (70, 30, 30, 44),
        ("指標", "實際", "目標", "情況"),
        (
            (
                str(row.get("name") or row["indicator"]),
                number(row.get("actual")),
                number(row.get("target")),
                STATUS_LABELS.get(str(row.get("status")), str(row.get("status") or "—")),
            )
            for row in city.get("indicators", [])
        ),
    )
    return bytes(pdf.output())


RANKING_HEADER = (
    "名次",
    "代碼",
    "縣（市、區）",
    "得分",
    "等次",
    "考核結果",
    "原因",
    "缺少數據的指標",
)
INDICATOR_HEADER = (
    "代碼",
    "縣（市、區）",
    "實際",
    "目標",
    "比較",
    "情況",
    "權重",
    "得分貢獻",
    "說明",
)
EXPLANATION_HEADER = ("代碼", "縣（市、區）", "指標", "計算", "計分", "貢獻", "輸入")


def _columns(labels: Sequence[str]) -> list[Column]:
    return [Column(label, label) for label in labels]


def render_standings_xlsx(standings: dict[str, Any]) -> bytes:
    """Standings as a workbook: the ranking, one sheet per indicator, and the explanations."""
    items = sorted(
        standings.get("items", []),
        key=lambda s: (s.get("rank") is None, s.get("rank") or 0, s.get("county_code") or ""),
    )
    tables = [
        Table(
            "排名",
            _columns(RANKING_HEADER),
            [
                (
                    s.get("rank"),
                    s.get("county_code"),
                    s.get("county_name"),
                    s.get("score"),
                    s.get("grade_label"),
                    OUTCOME_LABELS.get(str(s.get("outcome")), s.get("outcome")),
                    "；".join(_reasons(s))
                    if s.get("outcome") in ("commended", "criticized")
                    else "",
                    "、".join(s.get("not_assessed") or []),
                )
                for s in items
            ],
        )
    ]
    indicators: dict[str, str] = {}
    for standing in items:
        for row in standing.get("indicators", []):
            indicators.setdefault(row["indicator"], row.get("name") or row["indicator"])
    explanations: list[Sequence[Any]] = []
    for key, name in indicators.items():
        rows: list[Sequence[Any]] = []
        for standing in items:
            row = next((r for r in standing.get("indicators", []) if r["indicator"] == key), None)
            if row is None:
                continue
            explanation = row.get("explanation") or {}
            rows.append(
                (
                    standing.get("county_code"),
                    standing.get("county_name"),
                    row.get("actual"),
                    row.get("target"),
                    row.get("comparator"),
                    STATUS_LABELS.get(str(row.get("status")), row.get("status")),
                    row.get("weight"),
                    row.get("contribution"),
                    row.get("reason") or explanation.get("formula") or "",
                )
            )
            explanations.append(
                (
                    standing.get("county_code"),
                    standing.get("county_name"),
                    name,
                    explanation.get("formula", ""),
                    explanation.get("scoring", ""),
                    explanation.get("contribution", ""),
                    json.dumps(explanation.get("inputs", {}), ensure_ascii=False, sort_keys=True),
                )
            )
        tables.append(Table(name, _columns(INDICATOR_HEADER), rows))
    tables.append(Table("說明", _columns(EXPLANATION_HEADER), explanations))
    return write_tables(tables, created=_EPOCH)
