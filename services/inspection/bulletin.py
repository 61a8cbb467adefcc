"""The spot-check bulletin (監督抽查結果公告) of one plan and level, as an A4 PDF and a workbook.

A bulletin lists what the public may know: the checks whose `published_on` has come, each
enterprise with its product, sample, laboratory and result, and the nonconforming items of each
failure, with the plan's totals. Both files are drawn from the same rows, in the order the
repository gives them (county, enterprise, sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from kit.pdf import Document, number
from kit.xlsxio import Column, Table, write_tables

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""The creation date written into a workbook, so the same checks give the same bytes."""
RESULT_LABELS = {"pass": "合格", "fail": "不合格"}
COLUMNS = (
    "序號",
    "縣（市、區）",
    "企業名稱",
    "產品名稱",
    "樣品編號",
    "檢驗機構",
    "結果",
    "不合格項目",
)


def _items(check: Any) -> str:
    """A failure's nonconforming items as a bulletin prints them: item (requirement; measured)."""
    parts = []
    for item in check.nonconforming_items or []:
        detail = "；".join(
            str(item[key]) for key in ("requirement", "measured") if item.get(key) is not None
        )
        parts.append(f"{item.get('item', '')}（{detail}）" if detail else str(item.get("item", "")))
    return "、".join(parts)


def _rows(checks: Sequence[Any], counties: dict[str, str]) -> list[tuple[str, ...]]:
    return [
        (
            str(index),
            counties.get(check.county_code, check.county_code),
            check.enterprise_name,
            check.product_name or check.equipment_code or "—",
            check.sample_code or "—",
            check.testing_lab or "—",
            RESULT_LABELS.get(check.result, check.result),
            _items(check),
        )
        for index, check in enumerate(checks, start=1)
    ]


def _title(plan_code: str, level_label: str) -> str:
    return f"{level_label}結果公告（{plan_code}）"


def _totals(checks: Sequence[Any]) -> str:
    passed = sum(1 for check in checks if check.result == "pass")
    rate = f"{100 * passed / len(checks):.1f}%" if checks else "—"
    return f"共抽查 {len(checks)} 批次，合格 {passed} 批次，不合格 {len(checks) - passed} 批次，合格率 {rate}。"


def _bulletin_day(checks: Sequence[Any]) -> date | None:
    days = [check.published_on for check in checks if check.published_on is not None]
    return max(days) if days else None


def render_bulletin_pdf(
    *,
    checks: Sequence[Any],
    plan_code: str,
    level_label: str,
    counties: dict[str, str],
    font: Path,
) -> bytes:
    """The bulletin as PDF, dated by its latest bulletin day so that its bytes are reproducible."""
    day = _bulletin_day(checks)
    created = datetime.combine(day or date(2000, 1, 1), time(), tzinfo=UTC)
    pdf = Document(font, footer_text=_title(plan_code, level_label), created_at=created)
    pdf.set_title(_title(plan_code, level_label))
    pdf.add_page(orientation="landscape")
    pdf.heading(_title(plan_code, level_label), size=16)
    pdf.paragraph(f"公告日期：{day.isoformat() if day else '—'}　{_totals(checks)}")
    widths = (14, 30, 70, 45, 35, 50, 17)
    failures = [row for row in _rows(checks, counties) if row[6] != RESULT_LABELS["pass"]]
    pdf.heading("一、抽查結果")
    pdf.grid(widths, COLUMNS[:7], (row[:7] for row in _rows(checks, counties)))
    pdf.heading("二、不合格產品及項目")
    if not failures:
        pdf.paragraph("本次抽查未發現不合格產品。")
    for row in failures:
        pdf.paragraph(f"{row[2]}（{row[1]}）生產的{row[3]}（樣品 {row[4]}）：{row[7] or '—'}")
    pdf.heading("三、各縣（市、區）抽查情況")
    pdf.grid(
        (60, 40, 40, 40),
        ("縣（市、區）", "抽查批次", "合格批次", "合格率"),
        (
            (
                name,
                str(len(group)),
                str(sum(c.result == "pass" for c in group)),
                f"{number(100 * sum(c.result == 'pass' for c in group) / len(group), 1)}%",
            )
            for name, group in _by_county(checks, counties)
        ),
    )
    return bytes(pdf.output())


def _by_county(checks: Sequence[Any], counties: dict[str, str]) -> list[tuple[str, list[Any]]]:
    grouped: dict[str, list[Any]] = {}
    for check in checks:
        grouped.setdefault(counties.get(check.county_code, check.county_code), []).append(check)
    return list(grouped.items())


def render_bulletin_xlsx(
    *, checks: Sequence[Any], plan_code: str, level_label: str, counties: dict[str, str]
) -> bytes:
    """The bulletin as a workbook: one typed row per check, headers frozen with filters."""
    header = (*COLUMNS, "抽樣日期", "公告日期", "報告編號")
    rows = [
        (index, *row[1:], check.sampled_on, check.published_on, check.report_number or "")
        for index, (check, row) in enumerate(zip(checks, _rows(checks, counties), strict=True), 1)
    ]
    columns = [Column(label, label) for label in header]
    return write_tables([Table("抽查結果", columns, rows)], created=_EPOCH)
