"""Optimistic concurrency over HTTP: ETags on items, If-Match on writes."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header

from kit.errors import PreconditionFailed, PreconditionRequired

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The item's ETag as read. Required on every change: 428 without, 412 when stale.",
    ),
]
"""The `If-Match` header of a change; services check it with `check_if_match`."""


def make_etag(resource_id: str, version: int) -> str:
    """A strong ETag for one version of one item."""
    digest = hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def _candidates(header: str) -> list[str]:
    return [part.strip().removeprefix("W/") for part in header.split(",") if part.strip()]


def check_if_match(if_match: str | None, current_etag: str) -> None:
    """428 when `If-Match` is absent, 412 when it names another version."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "This change needs an If-Match header with the item's current ETag.",
            field="If-Match",
        )
    candidates = _candidates(if_match)
    if "*" in candidates or current_etag in candidates:
        return
    raise PreconditionFailed(
        "The item has changed since it was read; fetch it again and retry with the new ETag.",
        current_etag=current_etag,
    )
