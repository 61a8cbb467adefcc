"""The bounded request head, on a real uvicorn server speaking to real sockets."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request

from kit.serve import MAX_HEAD_BYTES, MAX_HEADER_LINE_BYTES, BoundedHeadersProtocol, parse_arguments

app = FastAPI()


@app.get("/echo")
async def echo(request: Request) -> dict[str, object]:
    return {
        "headers": len(request.headers),
        "client": request.client.host if request.client else None,
    }


@app.post("/size")
async def size(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=BoundedHeadersProtocol,
        log_level="warning",
        proxy_headers=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


async def _exchange(port: int, head: bytes, trickle: bytes = b"", rounds: int = 0) -> bytes:
    """Send `head`, then `trickle` up to `rounds` times while reading the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def keep_sending() -> None:
        for _ in range(rounds):
            writer.write(trickle)
            await writer.drain()

    sender = asyncio.create_task(keep_sending())
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()


def _status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else {}


async def test_an_ordinary_request_passes(port: int) -> None:
    answer = await _exchange(
        port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close\r\n\r\n"
    )
    status, body = _status_and_body(answer)
    assert status == 200
    assert body["headers"] == 3


@pytest.mark.parametrize("length", [40_000, 300_000, 2_000_000])
async def test_a_body_sent_with_its_head_in_one_write_is_not_counted_as_head(
    port: int, length: int
) -> None:
    head = (
        b"POST /size HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        + f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b"a" * length)
    answer = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 10):
        answer += chunk
    writer.close()
    status, body = _status_and_body(answer)
    assert status == 200
    assert body == {"bytes": length}


async def test_many_headers_each_within_the_line_limit_still_hit_the_head_limit(port: int) -> None:
    """Six headers of 7 KB arrive in one write: each line passes, the head (42 KB) does not."""
    lines = b"".join(b"X-%d: " % i + b"v" * 7000 + b"\r\n" for i in range(6))
    answer = await _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    status, body = _status_and_body(answer)
    assert status == 431
    assert f"larger than {MAX_HEAD_BYTES} bytes" in str(body["detail"])


async def test_a_long_header_line_is_431_naming_the_limit(port: int) -> None:
    long = b"X-Long: " + b"a" * (MAX_HEADER_LINE_BYTES + 1) + b"\r\n"
    answer = await _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n" + long + b"\r\n")
    status, body = _status_and_body(answer)
    assert status == 431
    assert f"{MAX_HEADER_LINE_BYTES} bytes" in str(body["detail"])


async def test_too_many_headers_is_431(port: int) -> None:
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    answer = await _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    status, body = _status_and_body(answer)
    assert status == 431
    assert "100 header lines" in str(body["detail"])


async def test_an_endless_head_is_cut_off_at_the_limit_and_closed(port: int) -> None:
    """A head that never ends is refused once it passes the limit, however long the sender
    keeps going, and well before it has sent 50 MB."""
    started = time.perf_counter()
    answer = await _exchange(
        port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Endless: ", trickle=b"a" * 4096, rounds=12_000
    )
    status, body = _status_and_body(answer)
    assert status == 431
    assert f"{MAX_HEAD_BYTES} bytes" in str(body["detail"]) or "longer than" in str(body["detail"])
    assert time.perf_counter() - started < 5


async def test_a_keep_alive_connection_serves_several_requests(port: int) -> None:
    one = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(one * 20 + last)
    data = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 5):
        data += chunk
    writer.close()
    assert data.count(b"HTTP/1.1 200 OK") == 21


async def test_forwarded_addresses_are_not_believed_by_default(port: int) -> None:
    answer = await _exchange(
        port,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    )
    assert _status_and_body(answer)[1]["client"] == "127.0.0.1"
    assert parse_arguments(["m:f"]).trusted_proxies == ""


async def test_a_body_in_a_transfer_coding_other_than_chunked_is_a_501(port: int) -> None:
    body = b"5\r\nhello\r\n0\r\n\r\n"
    answer = await _exchange(
        port,
        b"POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: close\r\n\r\n" + body,
    )
    status, problem = _status_and_body(answer)
    assert status == 501
    assert "gzip" in str(problem["detail"])


async def test_a_chunked_body_is_read_as_sent(port: int) -> None:
    answer = await _exchange(
        port,
        b"POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    status, body = _status_and_body(answer)
    assert status == 200
    assert body == {"bytes": 5}
