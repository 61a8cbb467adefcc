"""Keyset pagination with opaque, signed cursors: the one list path of every service.

A route takes `PageParamsDep` (limit and cursor, with the query's fingerprint worked out from
the path and every query parameter); its repository hands its filtered statement to
`paginate`, which orders it by the key columns, resumes after the cursor's position, fetches
`limit + 1` rows and returns the `Page`. Routes never touch limits or cursors.

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
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import Integer, Select, bindparam, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit.db import execute_read, fetch_rows
from kit.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")
U = TypeVar("U")
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
"""A cursor's shape: its payload and signature in unpadded URL-safe base64."""

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=2048,
        pattern=CURSOR_PATTERN,
        description="Opaque cursor from the previous page's `next_cursor`.",
    ),
]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each item converted (e.g. a row to its read schema)."""
        return _AnyPage(items=[convert(item) for item in self.items], next_cursor=self.next_cursor)


_AnyPage = Page[Any]
"""The one parametrization pages are built with. pydantic keeps its generic classes only
weakly, so a `Page[T]` written in a function was built afresh whenever the collector had
freed it between requests: 12 % of the certificate list's CPU samples (py-spy, 2026-12-02)."""


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
    return _AnyPage(items=items, next_cursor=cursor)


@dataclass(frozen=True)
class PageParams:
    """The page a list request asks for: its size, its cursor and the query it belongs to."""

    limit: int
    cursor: str | None
    codec: CursorCodec
    fingerprint: str

    def position(self) -> list[Any] | None:
        """The sort position to resume after, or None for the first page (400 if forged)."""
        return self.codec.decode(self.cursor, self.fingerprint) if self.cursor else None

    def page(self, rows: list[T], key: Callable[[T], Sequence[Any]]) -> Page[T]:
        """A page from `limit + 1` fetched rows; `key(row)` gives the row's sort position."""
        return page_of(
            rows, limit=self.limit, codec=self.codec, fingerprint=self.fingerprint, key=key
        )


async def page_params(
    request: Request, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> PageParams:
    """The `limit` and `cursor` query parameters, fingerprinted with the path and the filters."""
    params: dict[str, Any] = {"path": request.url.path}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        params[name] = values[0] if len(values) == 1 else values
    return PageParams(
        limit=limit,
        cursor=cursor,
        codec=request.app.state.cursor_codec,
        fingerprint=query_fingerprint(params),
    )


PageParamsDep = Annotated[PageParams, Depends(page_params)]


def _revive(value: Any, column: Any) -> Any:
    """A cursor value back in its column's Python type (JSON carries dates as text)."""
    if not isinstance(value, str):
        return value
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is datetime:
            return datetime.fromisoformat(value)
        if python_type is date:
            return date.fromisoformat(value)
    except ValueError:
        raise BadRequest("The cursor is malformed.", field="cursor") from None
    return value


def _key_of(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


_AFTER = "kit_page_after_"
_LIMIT = "kit_page_limit"
_Shape = tuple[bool, bool, tuple[int, ...]]
_ordered: weakref.WeakKeyDictionary[Select[Any], dict[_Shape, Select[Any]]] = (
    weakref.WeakKeyDictionary()
)
"""Each statement a repository keeps (built once per filter shape, with bound parameters)
ordered, resumed and limited once per shape, its position and limit bound parameters too:
executed as the same object, its SQLAlchemy cache key is worked out once rather than at each
call. A fresh statement built for one request leaves with that request. Measured in
`bench/brand_registry_bench.py`'s list: 185 µs of a page of 50's 954 µs in the process,
statement building and cache key generation together."""


def _ordered_statement(
    statement: Select[Any], keys: Sequence[Any], *, descending: bool, resumed: bool
) -> Select[Any]:
    shape = (descending, resumed, tuple(id(key) for key in keys))
    shapes = _ordered.setdefault(statement, {})
    ordered = shapes.get(shape)
    if ordered is None:
        if resumed:
            after = [bindparam(f"{_AFTER}{i}", type_=key.type) for i, key in enumerate(keys)]
            if len(keys) == 1:
                clause = keys[0] < after[0] if descending else keys[0] > after[0]
            else:
                clause = (
                    tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after)
                )
            statement = statement.where(clause)
        order = [key.desc() if descending else key.asc() for key in keys]
        ordered = statement.order_by(None).order_by(*order).limit(bindparam(_LIMIT, type_=Integer))
        shapes[shape] = ordered
    return ordered


async def paginate(
    session: AsyncSession | AsyncEngine,
    statement: Select[*tuple[Any, ...]],
    *,
    params: PageParams,
    keys: Sequence[Any],
    values: Mapping[str, Any] | None = None,
    descending: bool = False,
    mappings: bool = False,
    rows: bool = False,
) -> Page[Any]:
    """One page of `statement` in the order of `keys` (unique together), after the cursor.

    Each key is a column (`col(Table.field)`, or a labelled expression) selected under its own
    name, so that
    the last row's values give the next cursor. `values` are the statement's bound
    parameters; a statement built once and kept, its filters bound by name, is ordered and
    limited once too. With `mappings`, rows are returned as
    mappings; with `rows`, as rows (their columns as attributes); otherwise the first entity
    of each row (an ORM object).

    Given the engine instead of a session, it reads a kept statement's rows or mappings with
    `kit.db.fetch_rows` (on PostgreSQL, straight on the driver: a county's page of 50
    certificates in 2,615 µs of server CPU instead of 2,930, the rows as named tuples and
    the mappings as dicts; `bench/certification_bench.py`'s data, 2026-12-03).
    """
    position = params.position()
    bound = {**(values or {}), _LIMIT: params.limit + 1}
    if position is not None:
        if len(position) != len(keys):
            raise BadRequest("The cursor is malformed.", field="cursor")
        for i, (value, key) in enumerate(zip(position, keys, strict=True)):
            bound[f"{_AFTER}{i}"] = _revive(value, key)
    ordered = _ordered_statement(
        statement, keys, descending=descending, resumed=position is not None
    )
    found: list[Any]
    if isinstance(session, AsyncEngine):
        if not (rows or mappings) or values is None:
            raise ValueError("paging on the engine takes a kept statement's rows or mappings")
        found = await fetch_rows(session, ordered, bound)
        if mappings:
            found = [row._asdict() for row in found]
    elif rows or mappings:
        result = await execute_read(session, ordered, bound)
        found = list(result.mappings()) if mappings else list(result)
    else:
        found = list((await session.execute(ordered, bound)).scalars())
    names = [str(getattr(key, "key", None) or getattr(key, "name", "")) for key in keys]
    return params.page(found, key=lambda row: [_key_of(row, name) for name in names])
