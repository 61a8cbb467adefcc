"""`Idempotency-Key` for POST: a retried request gets the first response, not a duplicate.

Keys are scoped to the calling client and the request's method and path. The first request
claims the key (`in_flight`) before it runs; a concurrent retry is a 409, a retry after it
finished replays the stored status and body, and a retry with a different body is a 422.
Server errors release the key so the client may try again.

The finished record is written in the request's own transaction (the session dependency
hands its session over instead of committing), and the response is sent only after that
commit: a retry that follows the answer always finds the record, and a crash before the
commit leaves neither the resource nor a finished record. A claim whose owner died is taken
over once its lease has lapsed; a live owner renews the lease while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
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

from kit.auth import TokenVerifier, parse_bearer
from kit.db import HANDOVER, TransactionHandover, as_utc, is_database_unavailable
from kit.errors import ProblemError, problem_body, send_problem, unexpected_error_body

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
        claim = _Claim(record_scope, table, sessionmaker, self.state.settings)
        outcome, row = await claim.take()
        if outcome == "busy":
            await _send_problem(
                send,
                409,
                "A request with this Idempotency-Key is still being processed.",
                "conflict",
            )
            return
        if outcome == "finished":
            await self._answer_retry(row, scope, receive, send)
            return
        await self._run_first(claim, scope, receive, send)

    def _client_id(self, headers: dict[bytes, bytes]) -> str | None:
        verifier: TokenVerifier | None = getattr(self.state, "token_verifier", None)
        token = parse_bearer(headers.get(b"authorization", b"").decode("latin-1"))
        if verifier is None or token is None:
            return None
        try:
            return verifier.verify(token).client_id
        except ProblemError:
            return None

    async def _answer_retry(self, row: Any, scope: Scope, receive: Receive, send: Send) -> None:
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

    async def _run_first(self, claim: _Claim, scope: Scope, receive: Receive, send: Send) -> None:
        hasher = _request_hasher(scope)
        status = 500
        response_headers: list[tuple[str, str]] = []
        messages: list[Message] = []
        body = bytearray()

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                hasher.update(message.get("body", b""))
            return message

        async def holding_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in _REPLAYED_HEADERS:
                        response_headers.append((name.decode("latin-1"), value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            messages.append(message)

        handover = TransactionHandover()
        inner = {**scope, "state": {**scope.get("state", {}), HANDOVER: handover}}
        renewal = asyncio.create_task(claim.renew_while_running())
        try:
            await self.app(inner, hashing_receive, holding_send)
        except BaseException:
            await handover.discard()
            await claim.release()
            raise
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        if status >= 500:
            await handover.discard()
            await claim.release()
        else:
            record = {
                "state": "done",
                "request_hash": hasher.hexdigest(),
                "status_code": status,
                "headers": json.dumps(response_headers),
                "body": bytes(body),
            }
            if not await claim.finish(handover, record, keep=len(body) <= MAX_STORED_BODY):
                await send_problem(send, unexpected_error_body(None))
                return
        for message in messages:
            await send(message)


@dataclass
class _Claim:
    """One client's claim on one key, from `in_flight` to `done` or released."""

    scope: str
    table: Table
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Any

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.idempotency_lease_seconds)

    async def take(self) -> tuple[str, Any]:
        """("claimed", None), ("finished", record) or ("busy", None)."""
        table = self.table
        ttl = timedelta(seconds=self.settings.idempotency_ttl_seconds)
        now = _now()
        async with self.sessionmaker() as session:
            row = (
                await session.execute(select(table).where(table.c.scope == self.scope))
            ).one_or_none()
            if row is not None and as_utc(row.created_at) < now - ttl:
                await session.execute(delete(table).where(table.c.scope == self.scope))
                await session.commit()
                row = None
            if row is not None and row.state == "done":
                return "finished", row
            if row is not None:
                return ("claimed", None) if await self._take_over(session, now) else ("busy", None)
            try:
                await session.execute(
                    insert(table).values(scope=self.scope, state="in_flight", created_at=now)
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return "busy", None
        return "claimed", None

    async def _take_over(self, session: AsyncSession, now: datetime) -> bool:
        """Claim a key whose owner stopped renewing its lease (it died mid-request)."""
        table = self.table
        result = await session.execute(
            update(table)
            .where(
                table.c.scope == self.scope,
                table.c.state == "in_flight",
                table.c.created_at < now - self.lease,
            )
            .values(created_at=now)
        )
        await session.commit()
        taken = bool(getattr(result, "rowcount", 0) == 1)
        if taken:
            logger.warning("idempotency_claim_taken_over", scope=self.scope)
        return taken

    async def renew_while_running(self) -> None:
        """Keep the claim's lease fresh while the request runs (a third of the lease apart)."""
        period = self.lease.total_seconds() / 3
        table = self.table
        while True:
            await asyncio.sleep(period)
            try:
                async with self.sessionmaker() as session:
                    await session.execute(
                        update(table)
                        .where(table.c.scope == self.scope, table.c.state == "in_flight")
                        .values(created_at=_now())
                    )
                    await session.commit()
            except Exception as error:  # a missed renewal only shortens the lease
                logger.warning("idempotency_lease_not_renewed", error=type(error).__name__)

    async def finish(
        self, handover: TransactionHandover, record: dict[str, Any], *, keep: bool
    ) -> bool:
        """Store the finished record (or drop the claim of an answer too large to keep) in
        the request's transaction and commit both; False when that commit failed."""
        table = self.table
        if keep:
            statement: Any = update(table).where(table.c.scope == self.scope).values(**record)
        else:
            statement = delete(table).where(table.c.scope == self.scope)
        session = handover.session
        try:
            if session is None:
                async with self.sessionmaker() as own:
                    await own.execute(statement)
                    await own.commit()
            else:
                await session.execute(statement)
                await session.commit()
        except Exception as error:
            # The database gone mid-request is an outage, answered 503 with Retry-After and
            # reported once per outage by the request context, not a traceback per request.
            unavailable = is_database_unavailable(error)
            if not unavailable:
                logger.exception("idempotent_request_commit_failed", scope=self.scope)
            await handover.discard()
            try:
                await self.release()
            except Exception as release_error:
                if not (unavailable and is_database_unavailable(release_error)):
                    raise
                # Still down: the claim lapses with its lease, and a retry takes it over.
            if unavailable:
                raise
            return False
        finally:
            if session is not None:
                await session.close()
        return True

    async def release(self) -> None:
        """Give the key up so that the client may try again."""
        async with self.sessionmaker() as session:
            await session.execute(delete(self.table).where(self.table.c.scope == self.scope))
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
