"""`kit.observability.Deferred`: bookkeeping queued off an answer's path."""

import asyncio
import json

import pytest
import structlog

from kit.observability import Deferred, configure_logging, log_access


async def test_queued_jobs_wait_for_run_pending_and_see_their_own_context() -> None:
    deferred = Deferred(delay=60)
    seen: list[tuple[str, object]] = []

    def record(label: str) -> None:
        seen.append((label, structlog.contextvars.get_contextvars().get("request_id")))

    async def request(request_id: str) -> None:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        deferred.defer(record, request_id)

    # Each request runs in its own task, hence its own context, as under uvicorn.
    await asyncio.gather(asyncio.create_task(request("a")), asyncio.create_task(request("b")))
    assert seen == []
    deferred.run_pending()
    assert seen == [("a", "a"), ("b", "b")]
    deferred.run_pending()
    assert len(seen) == 2


async def test_queued_jobs_run_by_themselves_after_the_delay() -> None:
    deferred = Deferred(delay=0.01)
    done = asyncio.Event()
    deferred.defer(done.set)
    await asyncio.wait_for(done.wait(), timeout=2)
    # The timer is armed again for work queued after it fired.
    again = asyncio.Event()
    deferred.defer(again.set)
    await asyncio.wait_for(again.wait(), timeout=2)


async def test_a_failing_job_is_logged_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="sample")
    deferred = Deferred(delay=60)
    ran: list[int] = []

    def broken() -> None:
        raise RuntimeError("boom")

    deferred.defer(ran.append, 1)
    deferred.defer(broken)
    deferred.defer(ran.append, 2)
    deferred.run_pending()
    assert ran == [1, 2]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failure = next(line for line in lines if line["message"] == "deferred_job_failed")
    assert failure["level"] == "error"
    assert "boom" in failure["exception"]


def test_a_deferred_access_line_carries_the_time_of_the_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="sample")
    log_access(structlog.get_logger("access"), at=0.25, method="GET", status=200)
    line = json.loads(capsys.readouterr().out)
    assert line["timestamp"] == "1970-01-01T00:00:00.250000Z"
