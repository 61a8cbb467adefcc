"""The page's reads of the public API: the same endpoints any client uses, with a read key."""

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


async def get_json(settings: UiSettings, request: Request, path: str, **params: Any) -> Answer:
    """GET `path` on the gateway with the read key."""
    key = read_key(settings)
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
        return Answer(empty=f"{NO_DATA} (the read-only key was not accepted)")
    if response.status_code == 404:
        return Answer(empty=NO_DATA, data=_json(response))
    if response.status_code >= 400:
        detail = (_json(response) or {}).get("detail") or response.reason_phrase
        return Answer(failed=f"{response.status_code}: {detail}")
    return Answer(data=_json(response))


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
