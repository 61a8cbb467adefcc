import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import create_engine, is_sqlite
from kit.testing import Harness


def test_backend_detection() -> None:
    assert is_sqlite("sqlite+aiosqlite:///var/x.db")
    assert not is_sqlite("postgresql+asyncpg://postgres@127.0.0.1/x")


async def test_sqlite_engine_enforces_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/db.sqlite")
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


async def test_failed_commit_is_a_server_error_not_a_200(
    sample: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that returns normally but whose commit fails must not answer 2xx."""

    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    response = await sample.client().post("/api/v1/widgets", json={"name": "lost", "color": "r"})
    monkeypatch.undo()
    assert response.status_code == 500
    assert "connection lost" not in response.text
    assert (await sample.client().get("/api/v1/widgets")).json()["items"] == []
