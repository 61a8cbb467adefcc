"""Server-rendered HTML of the standings page and the county page.

Every figure shown is taken as it comes from the standings endpoint or the published run;
`data-*` attributes carry the raw values so a reader (or a browser test) can compare the page
with the API. Each page says which it shows: a publication (with its date) or live standings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from html import escape
from typing import Any

from gateway.ui.charts import attainment_chart, indicator_chart

PUBLISHED, LIVE = "published", "live"
STATUS_LABELS = {
    "met": "達標",
    "missed": "未達標",
    "at_risk": "有風險",
    "pending": "待公布",
    "no_data": "無數據",
    "not_allocated": "未分配",
    "informational": "僅供參考",
}
OUTCOME_LABELS = {
    "commended": "表彰",
    "criticized": "通報批評",
    "none": "—",
    "not_assessed": "未評定",
}
WORKLIST_STATES = {
    "missing": "待填報 missing",
    "submitted": "待審核 submitted",
    "returned": "已退回 returned",
    "accepted": "已採納 accepted",
}
KIND_LABELS = {"district": "區", "county": "縣", "county_city": "縣級市", "city": "市"}
COMPARATOR_LABELS = {
    "at_least": "≥",
    "at_most": "≤",
    "about": "≈",
    "between": "介於",
    "maintain": "保持",
    "above_reference": ">",
    "below_reference": "<",
    "milestone": "里程碑",
    "zero": "=",
    "informational": "",
}
SOURCE_LABELS = {
    "brands": "名牌產品 brands",
    "certificates": "體系認證 certificates",
    "spot_checks": "監督抽查 spot-checks",
    "reported": "縣區上報 reported",
    "incidents": "質量事故 incidents",
    "awards": "質量獎 awards",
    "food_dispositions": "食品加工業整頓 food dispositions",
}


def e(value: Any) -> str:
    """Text escaped for HTML."""
    return escape("" if value is None else str(value), quote=True)


def score_text(score: float | None) -> str:
    """A score as shown on the page (two decimals)."""
    return "—" if score is None else f"{score:.2f}"


def figure(value: float | None, unit: str | None) -> str:
    """An actual or target figure: rates as percentages, counts as numbers."""
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "flag":
        return "是" if value >= 1 else "否"
    return f"{value:g}"


def _account(signed_in: bool) -> str:
    """The sign-in form (the key goes in the request body and a cookie, never the URL), or
    the sign-out button."""
    if signed_in:
        return (
            '<form class="account" method="post" action="/ui/sign-out">'
            '<span id="signed-in">已登錄 signed in</span> '
            '<button type="submit">登出 sign out</button></form>'
        )
    return (
        '<form class="account" id="sign-in" method="post" action="/ui/sign-in">'
        '<label>API key <input type="password" name="api_key" autocomplete="off" '
        'required></label> <button type="submit">登錄 sign in</button></form>'
    )


def layout(
    title: str,
    body: str,
    *,
    year: int | None = None,
    signed_in: bool = False,
    notice: str | None = None,
) -> str:
    """The page frame shared by every view."""
    nav = f'<a href="/?year={year}">全市排名 Ranking</a>' if year else '<a href="/">全市排名</a>'
    shown = f'<p class="notice" id="key-notice">{e(notice)}</p>' if notice else ""
    return f"""<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<link rel="stylesheet" href="/ui/static/style.css">
<script src="/ui/static/app.js" defer></script>
</head>
<body>
<header><strong>質量振興 Quality Revitalization</strong> <nav>{nav} ·
<a href="/docs">API docs</a></nav>{_account(signed_in)}</header>
<main>
{shown}{body}
</main>
</body>
</html>"""


def message_page(
    title: str,
    message: str,
    *,
    year: int | None = None,
    signed_in: bool = False,
    notice: str | None = None,
    beside: str = "",
) -> str:
    """A page that only says why there is nothing to show (and `beside`, a county's worklist)."""
    body = f'<h1>{e(title)}</h1>\n<p class="notice" id="notice">{e(message)}</p>{beside}'
    return layout(title, body, year=year, signed_in=signed_in, notice=notice)


def _when(value: Any) -> str:
    """A timestamp as the page shows it: its date and minute, or a dash."""
    text = "" if value is None else str(value)
    return e(text[:16].replace("T", " ")) if text else "—"


def worklist_section(worklist: dict[str, Any]) -> str:
    """A county's reported indicators of the year: each one's state, figure, comment and due
    date, for the county's own reporting client."""
    code = worklist.get("county_code")
    rows = []
    for item in worklist.get("items") or []:
        state = str(item.get("state") or "missing")
        value = item.get("value")
        rows.append(
            f'<tr class="state-{e(state)}" data-indicator="{e(item.get("indicator"))}" '
            f'data-state="{e(state)}" data-value="{e(value)}" '
            f'data-reported-value-id="{e(item.get("reported_value_id"))}">'
            f'<td class="name">{e(item.get("label"))} <code>{e(item.get("indicator"))}</code></td>'
            f'<td class="due">{e(item.get("due_on") or "—")}</td>'
            f'<td class="state">{e(WORKLIST_STATES.get(state, state))}</td>'
            f'<td class="value">{e("—" if value is None else value)}</td>'
            f'<td class="comment">{e(item.get("comment") or "")}</td>'
            f'<td class="when">{_when(item.get("submitted_at"))}</td>'
            f'<td class="when">{_when(item.get("reviewed_at"))}</td></tr>'
        )
    counts = Counter(str(item.get("state")) for item in worklist.get("items") or [])
    summary = " · ".join(
        f"{label} {counts.get(state, 0)}" for state, label in WORKLIST_STATES.items()
    )
    empty = "" if rows else '<p class="notice">本年度無上報指標 — nothing to report this year</p>'
    source = f"/api/v1/assessments/{e(worklist.get('year'))}/worklist?county_code={e(code)}"
    return f"""<section class="worklist" id="worklist-{e(code)}" data-county="{e(code)}" \
data-year="{e(worklist.get("year"))}">
<h2>{e(worklist.get("county_name"))} <code>{e(code)}</code> 上報任務 Worklist</h2>
<p class="meta">{summary} · <a href="{source}">JSON</a></p>{empty}
<table class="worklist"><thead><tr><th>指標 indicator</th><th>截止 due</th><th>狀態 state</th>
<th>數值 value</th><th>意見 comment</th><th>提交 submitted</th><th>審核 reviewed</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
</section>"""


def worklist_unavailable(county_code: str, why: str) -> str:
    """Where a county's worklist would be, when it could not be read."""
    return (
        f'<section class="worklist" id="worklist-{e(county_code)}" data-county="{e(county_code)}">'
        f"<h2><code>{e(county_code)}</code> 上報任務 Worklist</h2>"
        f'<p class="notice">數據暫不可用 — {e(why)}</p></section>'
    )


def _view(data: dict[str, Any], view: str, run: dict[str, Any] | None) -> str:
    """What the page shows: a publication and its date, or the live standings; and whether
    the outcomes are provisional."""
    if view == PUBLISHED and run is not None:
        published = str(run.get("published_at") or "")[:10]
        replaced = (
            f"; it supersedes run <code>{e(run['supersedes'])}</code>: "
            f"{e(run.get('publication_reason'))}"
            if run.get("supersedes")
            else ""
        )
        shown = (
            f'<p class="view view-published" id="view" data-view="{PUBLISHED}" '
            f'data-run="{e(run.get("id"))}" data-published-on="{e(published)}">'
            f"已發布結果 Published results — 發布於 published on <strong>{e(published)}</strong> "
            f"(run <code>{e(run.get('id'))}</code>{replaced}). 實時與未發布的排名需登錄 "
            "(live and unpublished standings need a key with assessments:read).</p>"
        )
    else:
        shown = (
            f'<p class="view view-live" id="view" data-view="{LIVE}">實時排名 Live standings — '
            "computed now from the data services, not published.</p>"
        )
    if data.get("provisional"):
        shown += (
            f'<p class="provisional" id="provisional">暫定 Provisional: as of '
            f"{e(data.get('as_of'))}, before 31 December; figures due later are pending and "
            "every outcome may still change.</p>"
        )
    return shown


def _outcome_text(outcome: str, provisional: bool) -> str:
    label = OUTCOME_LABELS.get(outcome, outcome)
    return f"{e(label)}{' (暫定)' if provisional and outcome != 'none' else ''}"


def bar(row: dict[str, Any], *, compact: bool = False) -> str:
    """One indicator as a bar: attainment against the target, coloured by status."""
    status = row.get("status") or "no_data"
    attainment = row.get("attainment")
    width = 0.0 if attainment is None else max(0.0, min(1.0, float(attainment))) * 100
    unit = row.get("unit")
    label = (
        f"{row.get('name', row['indicator'])} ({row['indicator']}): "
        f"{figure(row.get('actual'), unit)} / {figure(row.get('target'), unit)} · "
        f"{STATUS_LABELS.get(status, status)} {status}"
    )
    css = "bar compact" if compact else "bar"
    return (
        f'<span class="{css} status-{e(status)}" title="{e(label)}" '
        f'data-indicator="{e(row["indicator"])}" data-status="{e(status)}">'
        f'<span class="fill" style="width:{width:.1f}%"></span></span>'
    )


def status_label(status: str) -> str:
    """A status as the page names it."""
    return STATUS_LABELS.get(status, status)


EXPORTS = (
    ("brands", "名牌產品 brands", "brands:read"),
    ("certificates", "體系認證 certificates", "certificates:read"),
    ("spot-checks", "監督抽查 spot-checks", "spot-checks:read"),
)
"""The data services' exports the page links, as XLSX workbooks."""


def downloads() -> str:
    """Links to the data behind the standings, as XLSX workbooks (the API asks for a key)."""
    links = "".join(
        f'<li><a class="download" href="/api/v1/{path}/export?format=xlsx" '
        f'data-export="{path}" download>{e(label)} (XLSX)</a> <code>{e(scope)}</code></li>'
        for path, label, scope in EXPORTS
    )
    return f"""<section id="downloads">
<h2>下載 Downloads</h2>
<p class="meta">數據匯出需 API key (X-API-Key) — the exports need a key with the scope named.</p>
<ul>{links}</ul>
</section>"""


def charts_section(indicators: Iterable[dict[str, Any]], items: list[dict[str, Any]]) -> str:
    """Per indicator, a bar chart of every county's actual against its target."""
    figures = "".join(
        f'<figure class="chart" id="figure-{e(i["indicator"])}" '
        f'data-indicator="{e(i["indicator"])}"><figcaption>{n}. {e(i.get("name"))} '
        f"<code>{e(i['indicator'])}</code></figcaption>"
        f"{indicator_chart(i, items, figure=figure, status_label=status_label)}</figure>"
        for n, i in enumerate(indicators, start=1)
    )
    if not figures:
        return ""
    return f"""<section id="charts">
<h2>指標圖表 Charts <small>actual (bar) against target (tick), per county</small></h2>
{_legend()}
<div class="charts">{figures}</div>
</section>"""


def _completeness(meta: dict[str, Any]) -> str:
    completeness = meta.get("completeness") or {}
    missing = {k: v for k, v in completeness.items() if v != "ok"}
    if not missing:
        return ""
    items = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in missing.items())
    return f'<div class="warning" id="partial"><p>部分數據缺失 (partial result):</p><ul>{items}</ul></div>'


def _legend() -> str:
    items = "".join(
        f'<span class="legend-item"><span class="swatch status-{k}"></span>{v} {k}</span>'
        for k, v in STATUS_LABELS.items()
    )
    return f'<p class="legend">{items}</p>'


def _indicator_header(indicators: Iterable[dict[str, Any]]) -> str:
    return "".join(
        f'<th class="ind" title="{e(i.get("name"))} ({e(i["indicator"])})">{n}</th>'
        for n, i in enumerate(indicators, start=1)
    )


def _city_summary(city: dict[str, Any]) -> str:
    rows = "".join(_indicator_row(row, explain=False) for row in city.get("indicators", []))
    return f"""<section id="city" data-score="{e(city.get("score"))}">
<h2>全市匯總 City-wide summary</h2>
<p class="big">得分 score <strong>{score_text(city.get("score"))}</strong> ·
等級 grade <strong>{e(city.get("grade_label"))}</strong> <code>{e(city.get("grade"))}</code></p>
<table class="indicators">
<thead><tr><th>指標 indicator</th><th>實際 actual</th><th>目標 target</th><th></th>
<th>狀態 status</th></tr></thead>
<tbody>{rows}</tbody>
</table>
</section>"""


def _group_cell(standing: dict[str, Any]) -> str:
    if not standing.get("group"):
        return '<td class="group">—</td>'
    position = standing.get("group_rank")
    return (
        f'<td class="group" data-group="{e(standing["group"])}">{e(standing.get("group_label"))} '
        f"{e('—' if position is None else position)}</td>"
    )


def standings_page(
    data: dict[str, Any],
    *,
    view: str = LIVE,
    run: dict[str, Any] | None = None,
    signed_in: bool = False,
    notice: str | None = None,
    beside: str = "",
) -> str:
    """The year's ranking of every county and district, with the city-wide summary (and
    `beside` it, the worklist of a signed-in county's client)."""
    year = data["year"]
    items = data.get("items", [])
    provisional = bool(data.get("provisional"))
    present = {row["indicator"] for s in items for row in s.get("indicators", [])}
    city_rows = (data.get("city") or {}).get("indicators", [])
    indicator_order = [row for row in city_rows if row["indicator"] in present]
    head = _indicator_header(indicator_order)
    rows = []
    for s in items:
        bars = {row["indicator"]: row for row in s.get("indicators", [])}
        cells = "".join(
            f'<td class="ind">{bar(bars[i["indicator"]], compact=True)}</td>'
            if i["indicator"] in bars
            else '<td class="ind na">·</td>'
            for i in indicator_order
        )
        outcome = s.get("outcome") or "none"
        rank = s.get("rank")
        rows.append(
            f'<tr class="county outcome-{e(outcome)}" data-county="{e(s["county_code"])}" '
            f'data-rank="{e(rank)}" data-score="{e(s.get("score"))}" '
            f'data-grade="{e(s.get("grade"))}" data-outcome="{e(outcome)}">'
            f'<td class="rank">{e("—" if rank is None else rank)}</td>'
            f'<td class="name"><a href="/counties/{e(s["county_code"])}?year={e(year)}">'
            f"{e(s.get('county_name'))}</a> <code>{e(s['county_code'])}</code>"
            f' <span class="kind">{e(KIND_LABELS.get(s.get("kind", ""), ""))}</span></td>'
            f"{_group_cell(s)}"
            f'<td class="score">{score_text(s.get("score"))}</td>'
            f'<td class="grade">{e(s.get("grade_label") or "—")} <code>{e(s.get("grade"))}</code></td>'
            f'<td class="outcome" title="{e(s.get("outcome_reason"))}">'
            f"{_outcome_text(outcome, provisional)} <code>{e(outcome)}</code></td>"
            f"{cells}</tr>"
        )
    key = "".join(
        f"<li><b>{n}</b> {e(i.get('name'))} <code>{e(i['indicator'])}</code></li>"
        for n, i in enumerate(indicator_order, start=1)
    )
    meta = data.get("meta") or {}
    source = (
        f"/api/v1/assessments/{e(year)}/runs/{e(run.get('id'))}"
        if view == PUBLISHED and run is not None
        else f"/api/v1/assessments/{e(year)}/standings"
    )
    if view == PUBLISHED and run is not None:
        files = (
            f'<a class="download" id="standings-xlsx" href="/ui/downloads/{e(year)}/standings.xlsx"'
            f' download>XLSX</a> · <a class="download" id="report-pdf"'
            f' href="/ui/downloads/{e(year)}/report.pdf" download>考核結果通報 PDF</a>'
        )
    else:
        files = (
            f'<a class="download" id="standings-xlsx" href="{source}?format=xlsx" download>XLSX</a>'
        )
    body = f"""<h1>{e(year)}年度質量振興考核排名 <small>County standings {e(year)}</small></h1>
{_view(data, view, run)}
<p class="meta">截至 as of <span id="as-of">{e(data.get("as_of"))}</span> ·
目標版本 target set v{e(meta.get("target_set_version"))} ·
<a href="{source}">JSON</a> ·
{files}</p>
{_completeness(meta)}
{beside}
<section id="ranking">
<h2>縣區排名 Ranking</h2>
{_legend()}
<table class="ranking" id="standings" data-year="{e(year)}" data-view="{e(view)}">
<thead><tr><th data-sort="num">名次 rank</th><th data-sort="text">縣區 county</th>
<th>組內 group</th><th data-sort="num">得分 score</th><th>等級 grade</th><th>結果 outcome</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody>
</table>
<details class="key"><summary>指標 Indicators</summary><ol>{key}</ol></details>
</section>
{charts_section(indicator_order, items)}
{_city_summary(data.get("city") or {})}
{downloads()}"""
    return layout(
        f"{year}年度質量振興考核排名", body, year=year, signed_in=signed_in, notice=notice
    )


def _explanation(row: dict[str, Any]) -> str:
    explanation = row.get("explanation") or {}
    provenance = row.get("provenance") or {}
    parts = []
    if row.get("reason"):
        parts.append(f"<p>{e(row['reason'])}</p>")
    if explanation.get("formula"):
        parts.append(f"<p>公式 formula: <code>{e(explanation['formula'])}</code></p>")
    if explanation.get("contribution"):
        parts.append(f"<p>貢獻 contribution: <code>{e(explanation['contribution'])}</code></p>")
    inputs = explanation.get("inputs")
    if inputs:
        parts.append(f"<p>輸入 inputs: <code>{e(_compact(inputs))}</code></p>")
    evidence = provenance.get("evidence")
    if isinstance(evidence, dict):
        parts.append(
            f"<p>佐證 evidence: {e(evidence.get('document'))} — {e(evidence.get('text'))}"
            f" ({e(provenance.get('reported_by'))})</p>"
        )
    source = {k: v for k, v in provenance.items() if k != "evidence"}
    if source:
        parts.append(f'<p class="provenance">來源 source: <code>{e(_compact(source))}</code></p>')
    return "".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return str(value)


def _indicator_row(row: dict[str, Any], *, explain: bool) -> str:
    unit = row.get("unit")
    status = row.get("status") or "no_data"
    comparator = row.get("comparator", "")
    detail = f'<tr class="explain"><td colspan="5">{_explanation(row)}</td></tr>' if explain else ""
    if not explain and row.get("reason") and status in ("no_data", "pending"):
        detail = f'<tr class="explain"><td colspan="5">{e(row["reason"])}</td></tr>'
    target = (
        "未分配 not allocated"
        if status == "not_allocated"
        else "僅供參考 for information"
        if status == "informational"
        else f"{e(COMPARATOR_LABELS.get(comparator, comparator))} {figure(row.get('target'), unit)}"
    )
    veto = ' <span class="veto">一票否決 veto</span>' if row.get("veto") else ""
    return (
        f'<tr class="indicator status-{e(status)}" data-indicator="{e(row["indicator"])}" '
        f'data-actual="{e(row.get("actual"))}" data-target="{e(row.get("target"))}" '
        f'data-status="{e(status)}">'
        f"<td>{e(row.get('name'))} <code>{e(row['indicator'])}</code>{veto}"
        f"<br><small>{e(SOURCE_LABELS.get(row.get('source', ''), row.get('source')))}</small></td>"
        f'<td class="num">{figure(row.get("actual"), unit)}</td>'
        f'<td class="num">{target}</td>'
        f"<td>{bar(row)}</td>"
        f'<td class="status">{e(STATUS_LABELS.get(status, status))} <code>{e(status)}</code></td>'
        f"</tr>{detail}"
    )


def county_page(
    data: dict[str, Any],
    year: int,
    *,
    view: str = LIVE,
    run: dict[str, Any] | None = None,
    signed_in: bool = False,
    notice: str | None = None,
) -> str:
    """One county's standing with the explanation of every figure."""
    standing = data.get("standing") or data.get("item") or data
    name = standing.get("county_name", "")
    code = standing.get("county_code", "")
    outcome = standing.get("outcome") or "none"
    rank = standing.get("rank")
    provisional = bool(data.get("provisional"))
    rows = "".join(_indicator_row(row, explain=True) for row in standing.get("indicators", []))
    group = (
        f" · {e(standing.get('group_label'))} 組內 <strong>{e(standing.get('group_rank'))}</strong>"
        if standing.get("group")
        else ""
    )
    body = f"""<h1 id="county" data-county="{e(code)}" data-score="{e(standing.get("score"))}"
 data-rank="{e(rank)}" data-outcome="{e(outcome)}">{e(name)} <code>{e(code)}</code>
<small>{e(year)}年度考核</small></h1>
{_view(data, view, run)}
<p class="big">名次 rank <strong>{e("—" if rank is None else rank)}</strong>{group} ·
得分 score <strong>{score_text(standing.get("score"))}</strong> ·
等級 grade <strong>{e(standing.get("grade_label") or "—")}</strong> <code>{e(standing.get("grade"))}</code> ·
結果 outcome <strong>{_outcome_text(outcome, provisional)}</strong> <code>{e(outcome)}</code></p>
<p class="reason">{e(standing.get("outcome_reason"))}</p>
{_completeness(data.get("meta") or {})}
{_legend()}
<table class="indicators" id="indicators">
<thead><tr><th>指標 indicator</th><th>實際 actual</th><th>目標 target</th><th></th>
<th>狀態 status</th></tr></thead>
<tbody>{rows}</tbody>
</table>
<section id="attainment">
<h2>達成度 Attainment <small>actual against target; the tick is the target (100%)</small></h2>
<figure class="chart">{attainment_chart(standing, figure=figure, status_label=status_label)}</figure>
</section>"""
    return layout(f"{name} {year}年度考核", body, year=year, signed_in=signed_in, notice=notice)
