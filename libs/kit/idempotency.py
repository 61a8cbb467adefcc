"""`Idempotency-Key` for POST: a retried request gets the first response, not a duplicate.

Keys are scoped to the calling client and the request's method and path. The first request
claims the key (`in_flight`) before it runs; a concurrent retry is a 409, a retry after it
finished replays the stored status and body, and a retry with a different body is a 422.
Server errors release the key so the client may try again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.auth import TokenVerifier
from kit.db import as_utc
from kit.errors import Unauthorized, problem_body, send_problem

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200
MAX_STORED_BODY = 2 * 1024 * 1024
_REPLAYED_HEADERS = {b"content-type", b"location", b"etag"}
logger = structlog.get_logger("kit.idempotency")


def idempotency_table(metadata: MetaData) -> Table:
    """The table of idempotency records, added to a service's own metadata."""
    return Table(
        "idempotency_record",
        metadata,
        Column("scope", String(400), primary_key=True),
        Column("request_hash", String(64), nullable=True),
        Column("state", String(16), nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("headers", Text, nullable=True),
        Column("body", LargeBinary, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def _send_problem(send: Send, status: int, detail: str, slug: str) -> None:
    await send_problem(send, problem_body(status, detail=detail, slug=slug))


class IdempotencyMiddleware:
    """Pure ASGI middleware applying the idempotency rules to POST requests."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        table: Table | None = getattr(self.state, "idempotency_table", None)
        if raw_key is None or table is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(
                send,
                400,
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                "bad-request",
            )
            return
        client = self._client_id(headers)
        if client is None:
            await self.app(scope, receive, send)
            return
        record_scope = f"{client}|{scope['path']}|{key}"
        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        ttl = timedelta(seconds=self.state.settings.idempotency_ttl_seconds)

        async with sessionmaker() as session:
            row = (
                await session.execute(select(table).where(table.c.scope == record_scope))
            ).one_or_none()
            if row is not None and as_utc(row.created_at) < _now() - ttl:
                await session.execute(delete(table).where(table.c.scope == record_scope))
                await session.commit()
                row = None
            if row is None:
                try:
                    await session.execute(
                        insert(table).values(
                            scope=record_scope, state="in_flight", created_at=_now()
                        )
                    )
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    await _send_problem(
                        send,
                        409,
                        "A request with this Idempotency-Key is still being processed.",
                        "conflict",
                    )
                    return
        if row is not None:
            await self._answer_retry(row, scope, receive, send)
            return
        await self._run_first(record_scope, table, scope, receive, send)

    def _client_id(self, headers: dict[bytes, bytes]) -> str | None:
        verifier: TokenVerifier | None = getattr(self.state, "token_verifier", None)
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if verifier is None or scheme.lower() != "bearer":
            return None
        try:
            return verifier.verify(token.strip()).client_id
        except Unauthorized:
            return None

    async def _answer_retry(self, row: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if row.state != "done":
            await _send_problem(
                send,
                409,
                "A request with this Idempotency-Key is still being processed.",
                "conflict",
            )
            return
        digest = await _hash_request(scope, receive)
        if digest != row.request_hash:
            await _send_problem(
                send,
                422,
                "This Idempotency-Key was used with a different request body.",
                "idempotency-key-reused",
            )
            return
        stored_headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in json.loads(row.headers or "[]")
        ]
        stored_headers.append((b"idempotent-replayed", b"true"))
        await send(
            {"type": "http.response.start", "status": row.status_code, "headers": stored_headers}
        )
        await send({"type": "http.response.body", "body": row.body or b""})

    async def _run_first(
        self, record_scope: str, table: Table, scope: Scope, receive: Receive, send: Send
    ) -> None:
        hasher = _request_hasher(scope)
        status = 500
        response_headers: list[tuple[str, str]] = []
        body = bytearray()
        too_large = False

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                hasher.update(message.get("body", b""))
            return message

        async def capturing_send(message: Message) -> None:
            nonlocal status, too_large
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in _REPLAYED_HEADERS:
                        response_headers.append((name.decode("latin-1"), value.decode("latin-1")))
            elif message["type"] == "http.response.body" and not too_large:
                body.extend(message.get("body", b""))
                too_large = len(body) > MAX_STORED_BODY
            await send(message)

        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        try:
            await self.app(scope, hashing_receive, capturing_send)
        except BaseException:
            await self._release(sessionmaker, table, record_scope)
            raise
        if status >= 500 or too_large:
            await self._release(sessionmaker, table, record_scope)
            return
        async with sessionmaker() as session:
            await session.execute(
                update(table)
                .where(table.c.scope == record_scope)
                .values(
                    state="done",
                    request_hash=hasher.hexdigest(),
                    status_code=status,
                    headers=json.dumps(response_headers),
                    body=bytes(body),
                )
            )
            await session.commit()

    async def _release(
        self, sessionmaker: async_sessionmaker[AsyncSession], table: Table, record_scope: str
    ) -> None:
        async with sessionmaker() as session:
            await session.execute(delete(table).where(table.c.scope == record_scope))
            await session.commit()


def _request_hasher(scope: Scope) -> Any:
    hasher = hashlib.sha256()
    hasher.update(scope["method"].encode())
    hasher.update(scope["path"].encode())
    hasher.update(b"?" + scope.get("query_string", b""))
    hasher.update(b"\n")
    return hasher


async def _hash_request(scope: Scope, receive: Receive) -> str:
    hasher = _request_hasher(scope)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        hasher.update(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return str(hasher.hexdigest())
