"""The page's reads of the public API: the same endpoints any client uses, with a key.

Two keys may read: the page's own read-only key (`GATEWAY_UI_READ_KEY_FILE`), with which the
public view reads only published runs, and a visitor's key from the sign-in cookie, with which
the signed-in view reads the live standings as that visitor may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from gateway.ui.settings import UiSettings

NO_DATA = "no data loaded yet"


@dataclass(frozen=True)
class Answer:
    """A JSON document from the API, or why there is none."""

    data: dict[str, Any] | None = None
    empty: str | None = None
    failed: str | None = None
    rejected: bool = False


def read_key(settings: UiSettings) -> str | None:
    """The read-only key, read on every request so the page works as soon as the loader ran."""
    try:
        key = settings.read_key_file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def api_base(settings: UiSettings, request: Request) -> str:
    """The gateway's own URL: configured, or the one this request came in on."""
    return (settings.api_url or str(request.base_url)).rstrip("/")


async def get_json(
    settings: UiSettings, request: Request, path: str, *, key: str | None = None, **params: Any
) -> Answer:
    """GET `path` on the gateway with `key` (by default the page's read-only key)."""
    key = key or read_key(settings)
    if key is None:
        return Answer(empty=NO_DATA)
    timeout = httpx.Timeout(settings.timeout_seconds, connect=3.0)
    headers = {"X-API-Key": key}
    if request_id := request.headers.get("X-Request-ID"):
        headers["X-Request-ID"] = request_id
    try:
        async with httpx.AsyncClient(
            base_url=api_base(settings, request), timeout=timeout
        ) as client:
            response = await client.get(
                path,
                params={k: v for k, v in params.items() if v is not None},
                headers=headers,
            )
    except httpx.HTTPError as exc:
        return Answer(failed=f"the API did not answer ({type(exc).__name__})")
    if response.status_code in (401, 403):
        return Answer(empty=f"{NO_DATA} (the key was not accepted)", rejected=True)
    if response.status_code == 404:
        return Answer(empty=NO_DATA, data=_json(response))
    if response.status_code >= 400:
        detail = (_json(response) or {}).get("detail") or response.reason_phrase
        return Answer(failed=f"{response.status_code}: {detail}")
    return Answer(data=_json(response))


@dataclass(frozen=True)
class File:
    """A file the API answered: its bytes, type and download name."""

    content: bytes
    media_type: str
    disposition: str


async def get_file(
    settings: UiSettings, request: Request, path: str, **params: Any
) -> File | Answer:
    """GET a file (a report, a workbook) on the gateway with the page's read-only key."""
    key = read_key(settings)
    if key is None:
        return Answer(empty=NO_DATA)
    timeout = httpx.Timeout(max(settings.timeout_seconds, 30.0), connect=3.0)
    try:
        async with httpx.AsyncClient(
            base_url=api_base(settings, request), timeout=timeout
        ) as client:
            response = await client.get(path, params=params, headers={"X-API-Key": key})
    except httpx.HTTPError as exc:
        return Answer(failed=f"the API did not answer ({type(exc).__name__})")
    if response.status_code != 200:
        detail = (_json(response) or {}).get("detail") or response.reason_phrase
        return Answer(failed=f"{response.status_code}: {detail}")
    return File(
        content=response.content,
        media_type=response.headers.get("content-type", "application/octet-stream"),
        disposition=response.headers.get("content-disposition", "attachment"),
    )


async def get_all(
    settings: UiSettings, request: Request, path: str, *, key: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], Answer | None]:
    """Every item of a list endpoint, page by page; or the answer that stopped it."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        answer = await get_json(
            settings, request, path, key=key, limit=500, cursor=cursor, **params
        )
        if answer.data is None or answer.failed or answer.rejected:
            return items, answer
        items += answer.data.get("items") or []
        cursor = answer.data.get("next_cursor")
        if not cursor:
            return items, None


async def latest_year(settings: UiSettings, request: Request, *, key: str | None) -> int | None:
    """The latest year that has a target set, or None before any is stored."""
    sets, _ = await get_all(settings, request, "/api/v1/target-sets", key=key)
    return max((int(s["year"]) for s in sets), default=None)


async def published_run(
    settings: UiSettings, request: Request, year: int
) -> tuple[dict[str, Any] | None, Answer | None]:
    """The year's current publication (a run no later one superseded), read with the page's
    own key; or the answer that says why there is none."""
    path = f"/api/v1/assessments/{year}/runs"
    runs, stopped = await get_all(settings, request, path, status="published")
    if stopped is not None and (stopped.failed or stopped.rejected or not runs):
        return None, stopped
    current = [r for r in runs if r.get("superseded_by") is None]
    if not current:
        return None, None
    latest = max(current, key=lambda r: str(r.get("published_at") or ""))
    answer = await get_json(settings, request, f"{path}/{latest['id']}")
    return answer.data, (None if answer.data else answer)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
