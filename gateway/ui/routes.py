"""The standings page at `/`, a county page, the sign-in form, and their static files.

Without a key the page shows the latest publication of a year (read with the page's own key);
a visitor who signs in with a key holding `assessments:read` sees the live standings, drafts and
criticisms not yet published included. The key travels in an HttpOnly cookie, never in a URL.
A visitor's key is checked here first, as any credentials are (failures throttled per the
visitor's address), so the page's own calls to the API carry only keys that work. A client
bound to counties sees each county's worklist of the year beside the standings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gateway.auth import AuthThrottled
from gateway.dependencies import client_address
from gateway.service import Identity
from gateway.ui import render
from gateway.ui.client import NO_DATA, Answer, get_file, get_json, latest_year, published_run
from gateway.ui.settings import UiSettings
from kit.errors import NotFound, ServiceUnavailable, Unauthorized

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"style.css": "text/css", "app.js": "text/javascript"}
KEY_COOKIE = "qrp_ui_key"
MAX_FORM_BYTES = 4096

router = APIRouter(include_in_schema=False, tags=["ui"])

Year = Annotated[int | None, Query(ge=1990, le=2100)]


@lru_cache(maxsize=1)
def ui_settings() -> UiSettings:
    """The page's settings, read once from the environment."""
    return UiSettings()


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def visitor_key(request: Request) -> str | None:
    """The key a visitor signed in with, from the cookie."""
    return (request.cookies.get(KEY_COOKIE) or "").strip() or None


async def _visitor(request: Request, key: str) -> Identity:
    """The client of a visitor's key, checked as the API checks credentials: 401 for a key
    unknown or revoked, 429 after too many failures from the visitor's address."""
    authenticator = request.app.state.proxy.authenticator
    known: Identity | None = authenticator.known(key, None)
    if known is not None:
        return known
    identity: Identity = await authenticator.from_headers(
        key, None, address=client_address(request)
    )
    return identity


async def _signed_in(request: Request) -> tuple[str | None, Identity | None, str | None]:
    """The visitor's key and client if the key works, else the notice saying it did not."""
    key = visitor_key(request)
    if key is None:
        return None, None, None
    try:
        return key, await _visitor(request, key), None
    except (Unauthorized, AuthThrottled):
        return None, None, KEY_REJECTED


async def _year(
    settings: UiSettings, request: Request, year: int | None, key: str | None
) -> int | None:
    """The year asked for, the configured one, or the latest year with a target set."""
    if year is not None:
        return year
    if settings.default_year is not None:
        return settings.default_year
    return await latest_year(settings, request, key=key)


async def _worklists(
    settings: UiSettings, request: Request, year: int, key: str, client: Identity | None
) -> str:
    """The worklist of each county a signed-in client is bound to; nothing for others."""
    if client is None:
        return ""
    sections = []
    for code in sorted(client.county_codes):
        path = f"/api/v1/assessments/{year}/worklist"
        answer = await get_json(settings, request, path, key=key, county_code=code)
        if answer.data is not None and not answer.failed and not answer.empty:
            sections.append(render.worklist_section(answer.data))
        else:
            sections.append(render.worklist_unavailable(code, _unavailable(answer)))
    return "".join(sections)


def _unavailable(answer: Answer) -> str:
    return answer.failed or answer.empty or NO_DATA


KEY_REJECTED = "your key was not accepted (it needs assessments:read): the published results"


def _failure(
    title: str,
    answer: Answer,
    year: int,
    *,
    signed_in: bool,
    missing: int = 200,
    beside: str = "",
) -> HTMLResponse:
    """The page of a read that did not give the standings: 503 when the API failed, else
    `missing` with what it said."""
    if answer.failed:
        message = f"數據暫不可用: {answer.failed}"
        page = render.message_page(title, message, year=year, signed_in=signed_in, beside=beside)
        return _html(page, 503)
    detail = (answer.data or {}).get("detail") or _unavailable(answer)
    page = render.message_page(
        title, f"尚無數據 — {detail}", year=year, signed_in=signed_in, beside=beside
    )
    return _html(page, missing)


def _unpublished(
    title: str, year: int, why: Answer | None, notice: str | None, *, missing: int = 200
) -> HTMLResponse:
    """The public page of a year without a publication."""
    if why is not None and (why.failed or why.empty):
        return _failure(title, why, year, signed_in=False, missing=missing)
    message = f"{year}年度考核結果尚未發布 — no results of {year} are published yet"
    return _html(render.message_page(title, message, year=year, notice=notice), missing)


@router.get("/", response_class=HTMLResponse)
async def standings_page(request: Request, year: Year = None) -> HTMLResponse:
    """The year's county ranking and the city-wide summary: published, or live when signed in
    (with the worklists of a client bound to counties)."""
    settings = ui_settings()
    key, client, notice = await _signed_in(request)
    shown = await _year(settings, request, year, key)
    if shown is None:
        return _html(render.message_page("質量振興考核排名", f"尚無數據 — {NO_DATA}"))
    title = f"{shown}年度質量振興考核排名"
    if key is not None:
        beside = await _worklists(settings, request, shown, key, client)
        live = await get_json(settings, request, f"/api/v1/assessments/{shown}/standings", key=key)
        if not live.rejected:
            if live.data is None or not live.data.get("items"):
                return _failure(title, live, shown, signed_in=True, beside=beside)
            page = render.standings_page(live.data, view=render.LIVE, signed_in=True, beside=beside)
            return _html(page)
        notice = KEY_REJECTED
    run, why = await published_run(settings, request, shown)
    if run is None:
        return _unpublished(title, shown, why, notice)
    page = render.standings_page(run["standings"], view=render.PUBLISHED, run=run, notice=notice)
    return _html(page)


@router.get("/counties/{county_code}", response_class=HTMLResponse)
async def county_page(
    request: Request,
    county_code: Annotated[str, PathParam(pattern=r"^\d{6}$")],
    year: Year = None,
) -> HTMLResponse:
    """One county's standing with the explanation of every figure."""
    settings = ui_settings()
    key, _, notice = await _signed_in(request)
    shown = await _year(settings, request, year, key)
    if shown is None:
        return _html(render.message_page(f"{county_code}年度考核", f"尚無數據 — {NO_DATA}"), 404)
    title = f"{county_code} {shown}年度考核"
    if key is not None:
        path = f"/api/v1/assessments/{shown}/standings/{county_code}"
        live = await get_json(settings, request, path, key=key)
        if not live.rejected:
            if live.data is None or live.empty:
                return _failure(title, live, shown, signed_in=True, missing=404)
            return _html(render.county_page(live.data, shown, view=render.LIVE, signed_in=True))
        notice = KEY_REJECTED
    run, why = await published_run(settings, request, shown)
    standing = _published_standing(run, county_code)
    if run is None or standing is None:
        return _unpublished(title, shown, why, notice, missing=404)
    page = render.county_page(standing, shown, view=render.PUBLISHED, run=run, notice=notice)
    return _html(page)


def _published_standing(run: dict[str, Any] | None, county_code: str) -> dict[str, Any] | None:
    """A county's standing as the run stored it, with the run's completeness."""
    if run is None:
        return None
    standings = run.get("standings") or {}
    item = next(
        (s for s in standings.get("items") or [] if s.get("county_code") == county_code), None
    )
    if item is None:
        return None
    meta = standings.get("meta") or {}
    return {
        **item,
        "year": standings.get("year"),
        "as_of": standings.get("as_of"),
        "provisional": standings.get("provisional", False),
        "meta": {"completeness": meta.get("completeness"), "complete": meta.get("complete")},
    }


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form's fields (the sign-in form has one)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
    return {name: values[0] for name, values in fields.items() if values}


def _back_to(target: str | None) -> str:
    """Where to go after signing in or out: a path on this site, never elsewhere."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.post("/ui/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Keep a key that may read the standings in an HttpOnly cookie; refuse any other."""
    settings = ui_settings()
    form = await _form(request)
    key = (form.get("api_key") or "").strip()
    if key:
        try:
            await _visitor(request, key)
        except AuthThrottled as throttled:
            page = render.message_page("登錄 Sign in", f"登錄失敗 — {throttled.detail}")
            return HTMLResponse(page, status_code=429, headers=throttled.headers)
        except Unauthorized:
            key = ""
    probe = await get_json(settings, request, "/api/v1/regions", key=key) if key else None
    if probe is None or probe.rejected or probe.data is None:
        why = (
            probe.failed
            if probe is not None and probe.failed
            else ("the key was not accepted: it needs the assessments:read scope")
        )
        return _html(render.message_page("登錄 Sign in", f"登錄失敗 — {why}"), 401)
    response = RedirectResponse(_back_to(form.get("next")), status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        key,
        max_age=int(settings.sign_in_hours * 3600),
        path="/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


@router.post("/ui/sign-out")
async def sign_out(request: Request) -> Response:
    """Forget the visitor's key."""
    form = await _form(request)
    response = RedirectResponse(_back_to(form.get("next")), status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response


DOWNLOADS = {"report.pdf": ("/report.pdf", {}), "standings.xlsx": ("", {"format": "xlsx"})}


@router.get("/ui/downloads/{year}/{name}")
async def download(request: Request, year: int, name: str) -> Response:
    """The year's published report (PDF) or standings (XLSX): public, like the published page,
    so they are fetched with the page's own read-only key."""
    if name not in DOWNLOADS:
        raise NotFound(f"There is no download {name!r}; there are {', '.join(DOWNLOADS)}.")
    settings = ui_settings()
    run, why = await published_run(settings, request, year)
    if run is None and why is not None and why.failed:
        raise ServiceUnavailable(
            f"The publication of {year} cannot be read: {why.failed}.",
            headers={"Retry-After": "30"},
        )
    if run is None:
        raise NotFound(f"No results of {year} are published yet.")
    suffix, params = DOWNLOADS[name]
    file = await get_file(
        settings, request, f"/api/v1/assessments/{year}/runs/{run['id']}{suffix}", **params
    )
    if isinstance(file, Answer):
        raise ServiceUnavailable(
            f"The {name} of {year} cannot be fetched: {file.failed or file.empty}.",
            headers={"Retry-After": "30"},
        )
    return Response(
        file.content, media_type=file.media_type, headers={"Content-Disposition": file.disposition}
    )


@router.get("/ui/static/{name}")
async def static_file(name: str) -> FileResponse:
    """The page's stylesheet and script."""
    if name not in STATIC_FILES:
        raise NotFound(f"No static file {name!r}.")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])
