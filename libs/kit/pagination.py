"""Keyset pagination with opaque, signed cursors.

A cursor carries the sort key of the last item served and a fingerprint of the query
(filters and sort) it belongs to, signed with HMAC-SHA256. A cursor edited by hand, or
replayed against a different query, fails verification and is answered with a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from kit.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).")
]
Cursor = Annotated[
    str | None,
    Query(max_length=2048, description="Opaque cursor from the previous page's `next_cursor`."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_fingerprint(params: Mapping[str, Any]) -> str:
    """A stable digest of the filters a cursor was issued for (limit and cursor excluded)."""
    relevant = {
        key: value
        for key, value in sorted(params.items())
        if key not in {"cursor", "limit"} and value is not None
    }
    canonical = json.dumps(relevant, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class CursorCodec:
    """Signs and verifies cursors with a server-side secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("cursor secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, position: list[Any], fingerprint: str) -> str:
        """A cursor resuming after `position` within the query `fingerprint`."""
        payload = json.dumps({"p": position, "q": fingerprint}, default=str).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, cursor: str, fingerprint: str) -> list[Any]:
        """The position in a cursor; 400 when forged, tampered or from another query."""
        try:
            payload_text, signature_text = cursor.split(".", 1)
            payload = _b64decode(payload_text)
            signature = _b64decode(signature_text)
        except (ValueError, binascii.Error):
            raise BadRequest("The cursor is malformed.", field="cursor") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise BadRequest("The cursor is invalid or has been altered.", field="cursor")
        data = json.loads(payload)
        if data.get("q") != fingerprint:
            raise BadRequest(
                "The cursor belongs to a different query; repeat the original filters.",
                field="cursor",
            )
        position = data.get("p")
        if not isinstance(position, list):
            raise BadRequest("The cursor is malformed.", field="cursor")
        return position


def page_of(
    rows: list[T], *, limit: int, codec: CursorCodec, fingerprint: str, key: Any
) -> Page[T]:
    """Build a page from `limit + 1` fetched rows; `key(row)` gives the row's sort position."""
    has_more = len(rows) > limit
    items = rows[:limit]
    cursor = codec.encode(list(key(items[-1])), fingerprint) if has_more and items else None
    return Page[T](items=items, next_cursor=cursor)
