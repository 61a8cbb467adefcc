"""Bar charts of the standings as SVG, drawn on the server: no script, no outside asset.

Two charts: per indicator, every county's actual against its target (a bar for the actual, a
tick for the target); and for one county, each indicator's attainment (100 % is the target).
Each bar is a `<rect class="chart-bar …">` (not `bar`: the page's HTML bars are styled with a
CSS `width`, which would size an SVG rect too) carrying an `aria-label` and a `<title>` that
name the county or indicator, the actual and the target, so a screen reader or a tooltip tells
the figures the bar draws. `data-*` attributes carry the raw values, as on the rest of the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

ROW_HEIGHT = 20
BAR_HEIGHT = 12
LABEL_WIDTH = 130
PLOT_WIDTH = 340
VALUE_WIDTH = 140
WIDTH = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
TOP = 6
MAX_ATTAINMENT = 2.0
"""The attainment axis ends at twice the target; a bar beyond it is drawn to the end."""


def _x(value: Any) -> str:
    """Text or an attribute value escaped for SVG (which is XML)."""
    return escape("" if value is None else str(value), quote=True)


def _short(label: str, limit: int = 11) -> str:
    """A label that fits left of the bars (the bar's title keeps it whole)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Bar:
    """One bar: its label on the left, its length in axis units, its marker (the target), the
    text at its end, what a reader is told about it, its CSS class and its data attributes."""

    label: str
    value: float | None
    marker: float | None
    shown: str
    described: str
    css: str
    data: dict[str, Any]


def svg_chart(bars: Sequence[Bar], *, title: str, chart_id: str, scale_max: float, css: str) -> str:
    """A horizontal bar chart: one row per bar, bars from zero, markers as vertical ticks."""
    height = TOP * 2 + ROW_HEIGHT * max(1, len(bars))
    span = scale_max if scale_max > 0 else 1.0

    def at(value: float) -> float:
        return LABEL_WIDTH + PLOT_WIDTH * max(0.0, min(value, span)) / span

    rows = []
    for n, item in enumerate(bars):
        y = TOP + n * ROW_HEIGHT
        bar_y = y + (ROW_HEIGHT - BAR_HEIGHT) / 2
        width = 0.0 if item.value is None else at(item.value) - LABEL_WIDTH
        data = "".join(f' data-{k}="{_x(v)}"' for k, v in item.data.items())
        parts = [
            f'<text class="label" x="{LABEL_WIDTH - 6}" y="{y + 14}" '
            f'text-anchor="end">{_x(_short(item.label))}</text>',
            f'<rect class="track" x="{LABEL_WIDTH}" y="{bar_y:g}" width="{PLOT_WIDTH}" '
            f'height="{BAR_HEIGHT}"/>',
            f'<rect class="{_x(item.css)}" x="{LABEL_WIDTH}" y="{bar_y:g}" '
            f'width="{width:.1f}" height="{BAR_HEIGHT}" role="img" '
            f'aria-label="{_x(item.described)}"{data}><title>{_x(item.described)}</title></rect>',
        ]
        if item.marker is not None:
            x = at(item.marker)
            parts.append(
                f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" '
                f'y2="{y + ROW_HEIGHT - 2}" aria-hidden="true"/>'
            )
        parts.append(
            f'<text class="value" x="{LABEL_WIDTH + PLOT_WIDTH + 6}" y="{y + 14}">'
            f"{_x(item.shown)}</text>"
        )
        rows.append(f'<g class="row">{"".join(parts)}</g>')
    return (
        f'<svg class="{_x(css)}" id="{_x(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="group" '
        f'aria-labelledby="{_x(chart_id)}-title"><title id="{_x(chart_id)}-title">{_x(title)}'
        f"</title>{''.join(rows)}</svg>"
    )


def indicator_chart(
    indicator: dict[str, Any],
    standings: Sequence[dict[str, Any]],
    *,
    figure: Callable[[float | None, str | None], str],
    status_label: Callable[[str], str],
) -> str:
    """Every county's actual of one indicator against its target: one bar per county that
    has the indicator, coloured by its status, with its target as a tick."""
    code = str(indicator["indicator"])
    name = indicator.get("name") or code
    unit = indicator.get("unit")
    bars = []
    for standing in standings:
        row = next((r for r in standing.get("indicators", []) if r["indicator"] == code), None)
        if row is None:
            continue
        actual, target = _number(row.get("actual")), _number(row.get("target"))
        status = str(row.get("status") or "no_data")
        county = f"{standing.get('county_name') or ''} {standing['county_code']}".strip()
        shown = f"{figure(actual, unit)} / {figure(target, unit)}"
        bars.append(
            Bar(
                label=str(standing.get("county_name") or standing["county_code"]),
                value=actual,
                marker=target,
                shown=shown,
                described=(
                    f"{county}: 實際 actual {figure(actual, unit)}, "
                    f"目標 target {figure(target, unit)} · {status_label(status)} {status}"
                ),
                css=f"chart-bar county status-{status}",
                data={
                    "county": standing["county_code"],
                    "actual": row.get("actual"),
                    "target": row.get("target"),
                    "status": status,
                },
            )
        )
    values = [v for b in bars for v in (b.value, b.marker) if v is not None]
    top = max(values, default=0.0)
    if unit in ("rate", "flag"):
        top = max(top, 1.0)
    return svg_chart(
        bars,
        title=f"{name} ({code}): 各縣區實際與目標 each county's actual against its target",
        chart_id=f"chart-{code}",
        scale_max=top * 1.05 if top > 0 else 1.0,
        css="chart indicator-chart",
    )


def attainment_chart(
    standing: dict[str, Any],
    *,
    figure: Callable[[float | None, str | None], str],
    status_label: Callable[[str], str],
) -> str:
    """One county's indicators by attainment (actual against target, the target at 100 %)."""
    bars = []
    for row in standing.get("indicators", []):
        unit = row.get("unit")
        attainment = _number(row.get("attainment"))
        status = str(row.get("status") or "no_data")
        actual, target = _number(row.get("actual")), _number(row.get("target"))
        reached = "—" if attainment is None else f"{attainment * 100:.0f}%"
        bars.append(
            Bar(
                label=str(row.get("name") or row["indicator"]),
                value=attainment,
                marker=1.0,
                shown=reached,
                described=(
                    f"{row.get('name') or ''} ({row['indicator']}): 達成 attainment {reached}, "
                    f"實際 actual {figure(actual, unit)}, 目標 target {figure(target, unit)} · "
                    f"{status_label(status)} {status}"
                ),
                css=f"chart-bar indicator status-{status}",
                data={
                    "indicator": row["indicator"],
                    "attainment": row.get("attainment"),
                    "actual": row.get("actual"),
                    "target": row.get("target"),
                    "status": status,
                },
            )
        )
    values = [b.value for b in bars if b.value is not None]
    top = min(MAX_ATTAINMENT, max([1.0, *values]))
    code = standing.get("county_code", "")
    return svg_chart(
        bars,
        title=(
            f"{standing.get('county_name') or ''} {code}: 各指標達成度 each indicator's "
            "attainment (target = 100%)"
        ),
        chart_id=f"attainment-{code}",
        scale_max=top * 1.05,
        css="chart attainment-chart",
    )
