import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Update, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from kit.idempotency import _now
from kit.testing import Harness


async def test_retry_returns_first_response_and_creates_once(sample: Harness) -> None:
    client = sample.client()
    headers = {"Idempotency-Key": "key-1"}
    body = {"name": "once", "color": "red"}
    first = await client.post("/api/v1/widgets", json=body, headers=headers)
    second = await client.post("/api/v1/widgets", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len((await client.get("/api/v1/widgets")).json()["items"]) == 1


async def test_same_key_different_body_is_422(sample: Harness) -> None:
    client = sample.client()
    headers = {"Idempotency-Key": "key-2"}
    await client.post("/api/v1/widgets", json={"name": "a", "color": "red"}, headers=headers)
    again = await client.post(
        "/api/v1/widgets", json={"name": "b", "color": "red"}, headers=headers
    )
    assert again.status_code == 422
    assert again.headers["content-type"] == "application/problem+json"
    assert len((await client.get("/api/v1/widgets")).json()["items"]) == 1


async def test_keys_are_scoped_per_client(sample: Harness) -> None:
    headers = {"Idempotency-Key": "shared"}
    one = await sample.client(client_id="one").post(
        "/api/v1/widgets", json={"name": "one", "color": "red"}, headers=headers
    )
    two = await sample.client(client_id="two").post(
        "/api/v1/widgets", json={"name": "two", "color": "red"}, headers=headers
    )
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


async def test_key_in_flight_is_409(sample: Harness) -> None:
    table = sample.app.state.idempotency_table
    async with sample.engine.begin() as connection:
        await connection.execute(
            table.insert().values(
                scope="test-client|/api/v1/widgets|busy", state="in_flight", created_at=_now()
            )
        )
    response = await sample.client().post(
        "/api/v1/widgets", json={"name": "x", "color": "red"}, headers={"Idempotency-Key": "busy"}
    )
    assert response.status_code == 409


async def test_unauthenticated_post_with_key_is_not_replayed(sample: Harness) -> None:
    headers = {"Idempotency-Key": "anon"}
    client = sample.client(authenticated=False)
    first = await client.post("/api/v1/widgets", json={"name": "x", "color": "r"}, headers=headers)
    assert first.status_code == 401
    ok = await sample.client().post(
        "/api/v1/widgets", json={"name": "x", "color": "r"}, headers=headers
    )
    assert ok.status_code == 201


async def _record_state(sample: Harness, key: str) -> str | None:
    table = sample.app.state.idempotency_table
    async with sample.engine.connect() as connection:
        row = (
            await connection.execute(
                select(table.c.state).where(table.c.scope == f"test-client|/api/v1/widgets|{key}")
            )
        ).one_or_none()
    return None if row is None else str(row.state)


async def test_the_record_is_finished_before_the_answer_leaves(sample: Harness) -> None:
    """A retry sent the moment the 201 arrives must find the finished record: the record is
    committed before the first byte of the answer is sent, never after."""
    body = json.dumps({"name": "prompt", "color": "red"}).encode()
    headers = sample.tokens.headers("sample", ("widgets:read", "widgets:write"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/widgets",
        "raw_path": b"/api/v1/widgets",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"idempotency-key", b"prompt"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[tuple[int, str | None]] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent.append((int(message["status"]), await _record_state(sample, "prompt")))

    await sample.app(scope, receive, send)
    assert sent == [(201, "done")]
    retry = await sample.client().post(
        "/api/v1/widgets",
        content=body,
        headers={"Idempotency-Key": "prompt", "Content-Type": "application/json"},
    )
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"


async def test_a_failed_commit_leaves_neither_resource_nor_record(
    sample: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    client = sample.client()
    body = {"name": "lost", "color": "red"}
    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    failed = await client.post("/api/v1/widgets", json=body, headers={"Idempotency-Key": "lost"})
    monkeypatch.undo()
    assert failed.status_code == 500
    assert await _record_state(sample, "lost") is None
    assert (await client.get("/api/v1/widgets")).json()["items"] == []
    again = await client.post("/api/v1/widgets", json=body, headers={"Idempotency-Key": "lost"})
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers


async def test_a_claim_whose_owner_died_is_taken_over_after_its_lease(sample: Harness) -> None:
    table = sample.app.state.idempotency_table
    lease = sample.app.state.settings.idempotency_lease_seconds
    async with sample.engine.begin() as connection:
        await connection.execute(
            table.insert().values(
                scope="test-client|/api/v1/widgets|orphan",
                state="in_flight",
                created_at=_now() - timedelta(seconds=lease + 1),
            )
        )
    response = await sample.client().post(
        "/api/v1/widgets", json={"name": "o", "color": "red"}, headers={"Idempotency-Key": "orphan"}
    )
    assert response.status_code == 201
    assert await _record_state(sample, "orphan") == "done"


async def test_a_commit_lost_to_an_outage_is_a_503_to_retry(
    sample: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The database gone as the finished record is written: the client is told to retry
    (503 with Retry-After), no traceback is logged, and the retry is carried out afresh."""
    table = sample.app.state.idempotency_table
    execute = AsyncSession.execute
    lost: list[Update] = []

    async def losing_execute(self: AsyncSession, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(statement, Update) and statement.table is table and not lost:
            lost.append(statement)
            raise OperationalError(
                "UPDATE", {}, ConnectionResetError("gone"), connection_invalidated=True
            )
        return await execute(self, statement, *args, **kwargs)

    client = sample.client()
    body = {"name": "outage", "color": "red"}
    monkeypatch.setattr(AsyncSession, "execute", losing_execute)
    failed = await client.post("/api/v1/widgets", json=body, headers={"Idempotency-Key": "gone"})
    monkeypatch.undo()
    assert lost
    assert failed.status_code == 503, failed.text
    assert failed.headers["retry-after"]
    assert "Traceback" not in capsys.readouterr().err
    assert await _record_state(sample, "gone") is None
    assert (await client.get("/api/v1/widgets")).json()["items"] == []
    again = await client.post("/api/v1/widgets", json=body, headers={"Idempotency-Key": "gone"})
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
