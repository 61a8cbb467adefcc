"""The change feed merged from the data services' own feeds.

Each data service serves its events at `/api/v1/events?after=<sequence>` in the order of its
own sequence. The gateway asks every service (in parallel, each with a token minted for the
caller, so each filters by the caller's scopes and counties), merges the answers by
(time, source, sequence) and returns the first `limit`. Its cursor holds one position per
service, each moved only past the events of that service actually returned: what a page left
out comes first in the next one, so a reader that stores the last cursor sees every event
once. Within one service the order is its sequence; across services it is by time, as far as
the pages fetched together show it.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog

from gateway.routing import EVENT_SOURCES
from kit.errors import FieldError, ProblemError, ValidationFailed
from kit.events import EVENT_TYPES
from kit.pagination import CursorCodec

logger = structlog.get_logger("gateway.feed")

FEED_PATH = "/api/v1/events"
CURSOR_SCOPE = "events"
"""The fingerprint of every feed cursor: positions hold whatever the type filter."""
DATA_SERVICES = ("brand_registry", "certification", "inspection", "assessment")


class FeedGone(ProblemError):
    """A position lies before what a service still keeps (its events there were purged)."""

    status, slug = 410, "events-purged"

    def __init__(self, backend: str, detail: str, horizon: int | None) -> None:
        super().__init__(
            f"The {backend} service no longer keeps the events after this cursor: {detail}",
            title="Gone",
            field="after",
            backend=backend,
            errors=[FieldError("after", "events after this position were purged").as_dict()],
            horizon=horizon,
        )


@dataclass
class Part:
    """What one service answered: its events, or the reason they are missing."""

    backend: str
    items: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    gone: str | None = None
    horizon: int | None = None


def parse_types(text: str | None, *, field_name: str = "type") -> list[str] | None:
    """The `type` filter: event types and `prefix.*` entries, comma-separated (422 naming
    the field for an unknown one); None without a filter."""
    if text is None or not text.strip():
        return None
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    unknown = [
        entry
        for entry in entries
        if not (entry in EVENT_TYPES or (entry.endswith(".*") and entry[:-2] in EVENT_SOURCES))
    ]
    if unknown:
        raise ValidationFailed.single(field_name, f"unknown event types: {', '.join(unknown)}")
    return list(dict.fromkeys(entries))


def plan(types: list[str] | None, scopes: Collection[str]) -> dict[str, list[str] | None]:
    """The services worth asking, each with the `type` entries that concern it (None for no
    filter): those emitting a type the caller may read and asked for."""
    planned: dict[str, list[str] | None] = {}
    for segment, (backend, scope) in EVENT_SOURCES.items():
        if scope not in scopes:
            continue
        if types is None:
            planned.setdefault(backend, None)
            continue
        wanted = [t for t in types if t.split(".", 1)[0] == segment]
        if wanted:
            current = planned.get(backend) or []
            planned[backend] = [*current, *wanted]
    return planned


def encode_cursor(codec: CursorCodec, positions: Mapping[str, int]) -> str:
    return codec.encode([[name, int(positions[name])] for name in sorted(positions)], CURSOR_SCOPE)


def decode_cursor(codec: CursorCodec, cursor: str | None) -> dict[str, int]:
    """The position of every service in a feed cursor (0 without one); 422 naming `after`
    for a cursor this gateway did not issue."""
    positions = dict.fromkeys(DATA_SERVICES, 0)
    if cursor is None or not cursor.strip():
        return positions
    try:
        decoded = codec.decode(cursor.strip(), CURSOR_SCOPE)
        for name, position in decoded:
            if name not in positions or not isinstance(position, int) or position < 0:
                raise ValueError(name)
            positions[name] = position
    except (ProblemError, ValueError, TypeError):
        raise ValidationFailed.single(
            "after", "is not a cursor of this feed: send the `next` of a previous page"
        ) from None
    return positions


def _sort_key(event: Mapping[str, Any]) -> tuple[float, str, int]:
    try:
        stamp = datetime.fromisoformat(str(event["time"])).timestamp()
    except (KeyError, ValueError):
        stamp = 0.0
    return (stamp, str(event.get("source", "")), int(event.get("sequence", 0)))


def merge(parts: Iterable[Part], limit: int) -> list[dict[str, Any]]:
    """The first `limit` events of the parts by (time, source, sequence); each part is taken
    in its own order, so only a prefix of every part is returned."""
    merged = heapq.merge(*(part.items for part in parts if part.reason is None), key=_sort_key)
    return [event for _, event in zip(range(limit), merged, strict=False)]


def advanced(
    positions: Mapping[str, int], returned: Iterable[Mapping[str, Any]], parts: Iterable[Part]
) -> dict[str, int]:
    """The positions after `returned`: each service's moved to its last event returned."""
    by_source = {f"/{part.backend}": part.backend for part in parts}
    moved = dict(positions)
    for event in returned:
        backend = by_source.get(str(event.get("source")))
        if backend is not None:
            moved[backend] = max(moved[backend], int(event["sequence"]))
    return moved


def completeness(parts: Iterable[Part]) -> dict[str, str]:
    return {part.backend: part.reason or "ok" for part in parts}


def _problem_detail(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("detail") or response.reason_phrase or "error")[:200], body


class FeedClient:
    """Reads one service's part of the change feed."""

    def __init__(
        self, client: httpx.AsyncClient, backends: Mapping[str, str], *, timeout: float
    ) -> None:
        self.client = client
        self.backends = dict(backends)
        self.timeout = timeout

    async def part(
        self, backend: str, token: str, *, after: int, types: list[str] | None, limit: int
    ) -> Part:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if types:
            params["type"] = ",".join(types)
        url = self.backends[backend] + FEED_PATH
        try:
            response = await self.client.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            return Part(backend, reason=f"timeout: no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Part(backend, reason=f"unreachable: {type(exc).__name__}")
        if response.status_code == 410:
            detail, body = _problem_detail(response)
            horizon = body.get("horizon")
            return Part(
                backend,
                reason="gone",
                gone=detail,
                horizon=horizon if isinstance(horizon, int) else None,
            )
        if response.status_code != 200:
            detail, _ = _problem_detail(response)
            return Part(backend, reason=f"HTTP {response.status_code}: {detail}")
        try:
            items = response.json()["items"]
            if not isinstance(items, list):
                raise TypeError("items")
            for item in items:
                int(item["sequence"])
        except (ValueError, KeyError, TypeError):
            return Part(backend, reason="malformed answer")
        return Part(backend, items=items)


async def merged_page(
    feed: FeedClient,
    *,
    positions: Mapping[str, int],
    types: list[str] | None,
    scopes: Collection[str],
    limit: int,
    token_for: Callable[[str], str],
    from_start: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, str]]:
    """One page of the merged feed after `positions`: the events, the positions after them,
    and the completeness of every service asked. A service's 410 is the page's 410, unless
    the reader starts `from_start`: then it reads from the oldest event the service keeps."""
    planned = plan(types, scopes)
    start = {backend: positions.get(backend, 0) for backend in planned}

    async def ask(backend: str, wanted: list[str] | None) -> Part:
        part = await feed.part(
            backend, token_for(backend), after=start[backend], types=wanted, limit=limit
        )
        if part.gone is not None and from_start and part.horizon is not None:
            start[backend] = part.horizon
            part = await feed.part(
                backend, token_for(backend), after=part.horizon, types=wanted, limit=limit
            )
        return part

    parts = await asyncio.gather(*(ask(backend, wanted) for backend, wanted in planned.items()))
    for part in parts:
        if part.gone is not None:
            raise FeedGone(part.backend, part.gone, part.horizon)
        if part.reason is not None:
            logger.warning("event_feed_part_missing", backend=part.backend, reason=part.reason)
    items = merge(parts, limit)
    return items, advanced({**positions, **start}, items, parts), completeness(parts)
