"""The standings page at `/`, a county page, and their static files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from gateway.ui import render
from gateway.ui.client import get_json
from gateway.ui.settings import UiSettings
from kit.errors import NotFound

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"style.css": "text/css", "app.js": "text/javascript"}

router = APIRouter(include_in_schema=False, tags=["ui"])

Year = Annotated[int | None, Query(ge=1990, le=2100)]


@lru_cache(maxsize=1)
def ui_settings() -> UiSettings:
    """The page's settings, read once from the environment."""
    return UiSettings()


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse)
async def standings_page(request: Request, year: Year = None) -> HTMLResponse:
    """The year's county ranking and the city-wide summary."""
    settings = ui_settings()
    year = year or settings.default_year
    title = f"{year}年度質量振興考核排名"
    answer = await get_json(settings, request, f"/api/v1/assessments/{year}/standings")
    if answer.failed:
        return _html(render.message_page(title, f"數據暫不可用: {answer.failed}", year=year), 503)
    if answer.empty or not answer.data or not answer.data.get("items"):
        return _html(
            render.message_page(
                title, f"尚無數據 — {answer.empty or 'no data loaded yet'}", year=year
            )
        )
    return _html(render.standings_page(answer.data))


@router.get("/counties/{county_code}", response_class=HTMLResponse)
async def county_page(
    request: Request,
    county_code: Annotated[str, PathParam(pattern=r"^\d{6}$")],
    year: Year = None,
) -> HTMLResponse:
    """One county's standing with the explanation of every figure."""
    settings = ui_settings()
    year = year or settings.default_year
    path = f"/api/v1/assessments/{year}/standings/{county_code}"
    answer = await get_json(settings, request, path)
    title = f"{county_code} {year}年度考核"
    if answer.failed:
        return _html(render.message_page(title, f"數據暫不可用: {answer.failed}", year=year), 503)
    if answer.empty or not answer.data:
        detail = (answer.data or {}).get("detail") or answer.empty or "no data loaded yet"
        return _html(render.message_page(title, f"尚無數據 — {detail}", year=year), 404)
    return _html(render.county_page(answer.data, year))


@router.get("/ui/static/{name}")
async def static_file(name: str) -> FileResponse:
    """The page's stylesheet and script."""
    if name not in STATIC_FILES:
        raise NotFound(f"No static file {name!r}.")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])
