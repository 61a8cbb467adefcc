"""The forwarding transport against a real socket server whose answers each test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httptools
import pytest

from gateway.upstream import Pool, UpstreamError, UpstreamTimeout


class ThenClose(bytes):
    """An answer after which the server closes the connection."""


@dataclass
class Request:
    method: str
    target: bytes
    headers: dict[bytes, bytes]
    body: bytes


@dataclass
class ScriptedServer:
    """Parses each request on a connection and writes what `answer` returns for it."""

    answer: Callable[[Request], bytes | None]
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        done: asyncio.Queue[Request] = asyncio.Queue()
        parser = httptools.HttpRequestParser(_RequestCollector(done))
        try:
            while data := await reader.read(65536):
                parser.feed_data(data)
                while not done.empty():
                    request = done.get_nowait()
                    request.method = parser.get_method().decode()
                    self.requests.append(request)
                    answer = self.answer(request)
                    if answer is None:
                        writer.close()
                        return
                    writer.write(answer)
                    await writer.drain()
                    if isinstance(answer, ThenClose):
                        return
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            writer.close()


class _RequestCollector:
    def __init__(self, done: asyncio.Queue[Request]) -> None:
        self.done = done
        self.target = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done.put_nowait(Request("", self.target, self.headers, b"".join(self.body)))
        self.target, self.headers, self.body = b"", {}, []


Serve = Callable[[Callable[[Request], bytes | None]], Awaitable[ScriptedServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[ScriptedServer] = []

    async def start(answer: Callable[[Request], bytes | None]) -> ScriptedServer:
        scripted = ScriptedServer(answer)
        scripted.server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(scripted)
        return scripted

    yield start
    for scripted in servers:
        assert scripted.server is not None
        scripted.server.close()


def ok(body: bytes = b"hello", *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n" % len(body)
    return head + b"".join(extra) + b"\r\n" + body


def pool_for(url: str, **overrides: float) -> Pool:
    options = {"size": 4, "connect_timeout": 1.0, "read_timeout": 2.0, "pool_timeout": 1.0}
    options.update(overrides)
    return Pool(url, **options)  # type: ignore[arg-type]


async def fetch(
    pool: Pool, method: str = "GET", target: bytes = b"/", **kwargs: object
) -> tuple[int, bytes]:
    response = await pool.request(method, target, [(b"x-test", b"1")], **kwargs)  # type: ignore[arg-type]
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_keep_alive_reuses_one_connection(serve: Serve) -> None:
    server = await serve(lambda request: ok(request.target))
    pool = pool_for(server.url)
    for i in range(5):
        assert await fetch(pool, target=b"/n/%d?x=1" % i) == (200, b"/n/%d?x=1" % i)
    assert server.connections == 1
    assert server.requests[0].headers[b"x-test"] == b"1"
    assert server.requests[0].headers[b"host"] == server.url.removeprefix("http://").encode()
    await pool.close()


async def test_a_base_path_prefixes_every_target(serve: Serve) -> None:
    server = await serve(lambda request: ok(request.target))
    pool = pool_for(server.url + "/inner/")
    assert await fetch(pool, target=b"/api/v1/x") == (200, b"/inner/api/v1/x")
    await pool.close()


async def test_request_bodies_arrive_whole(serve: Serve) -> None:
    server = await serve(lambda request: ok(request.body))
    pool = pool_for(server.url)

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one,", b"", b"two,", b"three" * 10_000):
            yield piece

    assert await fetch(pool, "POST", body=b'{"a": 1}') == (200, b'{"a": 1}')
    assert server.requests[-1].headers[b"content-length"] == b"8"
    expected = b"one,two," + b"three" * 10_000
    assert await fetch(pool, "POST", body=pieces()) == (200, expected)
    assert server.requests[-1].headers[b"transfer-encoding"] == b"chunked"
    assert await fetch(pool, "PUT", body=pieces(), content_length=len(expected)) == (200, expected)
    assert server.requests[-1].headers[b"content-length"] == str(len(expected)).encode()
    assert server.connections == 1
    await pool.close()


async def test_work_while_waiting_runs_once_the_whole_request_is_sent(serve: Serve) -> None:
    server = await serve(lambda request: ok(request.body))
    pool = pool_for(server.url)
    calls: list[str] = []

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one,", b"two"):
            calls.append("piece")
            yield piece

    assert await fetch(pool, while_waiting=lambda: calls.append("wait")) == (200, b"")
    assert calls == ["wait"]
    calls.clear()
    assert await fetch(pool, "POST", body=pieces(), while_waiting=lambda: calls.append("wait")) == (
        200,
        b"one,two",
    )
    assert calls == ["piece", "piece", "wait"]
    await pool.close()


async def test_chunked_and_until_close_responses_are_read_to_their_end(serve: Serve) -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    server = await serve(lambda request: chunked if request.target == b"/chunked" else None)
    pool = pool_for(server.url)
    assert await fetch(pool, target=b"/chunked") == (200, b"hello world")

    until_close = await serve(lambda request: ThenClose(b"HTTP/1.1 200 OK\r\n\r\nall of it"))
    pool_b = pool_for(until_close.url)
    response = await pool_b.request("GET", b"/", [])
    assert response.content_length is None
    # The server writes, then closes: the body is whatever came before the close.
    assert await response.read() == b"all of it"
    response.release()
    await pool.close()
    await pool_b.close()


async def test_a_head_response_ends_at_its_headers(serve: Serve) -> None:
    def answer(request: Request) -> bytes:
        if request.method == "HEAD":
            return b"HTTP/1.1 200 OK\r\ncontent-length: 12345\r\n\r\n"
        return ok(b"after head")

    server = await serve(answer)
    pool = pool_for(server.url)
    response = await pool.request("HEAD", b"/", [])
    assert response.status == 200
    assert response.content_length == 12345
    assert await response.read() == b""
    response.release()
    # The connection stays usable: the next response is parsed from its start.
    assert await fetch(pool) == (200, b"after head")
    assert server.connections == 1
    await pool.close()


async def test_interim_responses_are_skipped(serve: Serve) -> None:
    server = await serve(lambda request: b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"))
    pool = pool_for(server.url)
    assert await fetch(pool) == (200, b"final")
    await pool.close()


async def test_a_connection_the_backend_closed_is_not_reused(serve: Serve) -> None:
    server = await serve(lambda request: ok(b"bye", b"connection: close\r\n"))
    pool = pool_for(server.url)
    assert await fetch(pool) == (200, b"bye")
    assert await fetch(pool) == (200, b"bye")
    assert server.connections == 2
    assert pool.stats["open"] <= 1
    await pool.close()


async def test_an_idle_connection_past_its_keep_alive_is_replaced(serve: Serve) -> None:
    server = await serve(lambda request: ok())
    pool = pool_for(server.url, keepalive_seconds=0.05)
    await fetch(pool)
    await asyncio.sleep(0.1)
    await fetch(pool)
    assert server.connections == 2
    await pool.close()


async def test_failures_are_named(serve: Serve) -> None:
    closed = await serve(lambda request: None)
    pool = pool_for(closed.url)
    with pytest.raises(UpstreamError, match="closed the connection"):
        await fetch(pool)

    garbage = await serve(lambda request: b"NOT HTTP AT ALL\r\n\r\n")
    pool_b = pool_for(garbage.url)
    with pytest.raises(UpstreamError, match="malformed response"):
        await fetch(pool_b)

    cut = await serve(
        lambda request: ThenClose(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    )
    pool_c = pool_for(cut.url)
    response = await pool_c.request("GET", b"/", [])
    with pytest.raises(UpstreamError):
        await response.read()
    response.release()

    nobody = pool_for(closed.url.rsplit(":", 1)[0] + ":9")
    with pytest.raises(UpstreamError, match="cannot connect"):
        await fetch(nobody)
    for each in (pool, pool_b, pool_c, nobody):
        assert each.stats == {"open": 0, "idle": 0}
        await each.close()


async def test_a_silent_backend_times_out(serve: Serve) -> None:
    server = await serve(lambda request: b"")
    pool = pool_for(server.url, read_timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        await fetch(pool)
    assert pool.stats == {"open": 0, "idle": 0}
    await pool.close()


async def test_the_pool_size_bounds_connections_and_waiting_times_out(serve: Serve) -> None:
    server = await serve(lambda request: ok())
    pool = pool_for(server.url, size=1, pool_timeout=0.2)
    held = await pool.request("GET", b"/", [])
    with pytest.raises(UpstreamTimeout, match="no free connection"):
        await fetch(pool)
    # A waiter gets the connection as soon as the holder is done with it.
    waiting = asyncio.create_task(fetch(pool))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await held.read()
    held.release()
    assert await waiting == (200, b"hello")
    assert server.connections == 1
    await pool.close()


async def test_a_connection_put_back_goes_to_the_request_that_waited_longest(
    serve: Serve,
) -> None:
    server = await serve(lambda request: ok(request.target))
    pool = pool_for(server.url, size=1)
    held = await pool.request("GET", b"/first", [])
    waited = asyncio.create_task(fetch(pool, target=b"/waited"))
    await asyncio.sleep(0.05)
    # Starts before the waiting request wakes up, so it would find the connection first.
    late = asyncio.create_task(fetch(pool, target=b"/late"))
    await held.read()
    held.release()
    assert await waited == (200, b"/waited")
    assert await late == (200, b"/late")
    assert [request.target for request in server.requests] == [b"/first", b"/waited", b"/late"]
    assert server.connections == 1
    await pool.close()


async def test_the_slot_of_a_closed_connection_goes_to_a_waiting_request(serve: Serve) -> None:
    server = await serve(lambda request: ThenClose(ok()) if request.target == b"/bye" else ok())
    pool = pool_for(server.url, size=1)
    held = await pool.request("GET", b"/bye", [])
    waiting = asyncio.create_task(fetch(pool))
    await asyncio.sleep(0.05)
    await held.read()
    held.release()
    assert await waiting == (200, b"hello")
    assert server.connections == 2
    await pool.close()


async def test_a_connection_handed_to_a_request_cancelled_meanwhile_is_not_lost(
    serve: Serve,
) -> None:
    server = await serve(lambda request: ok())
    pool = pool_for(server.url, size=1, pool_timeout=0.5)
    held = await pool.request("GET", b"/", [])
    cancelled = asyncio.create_task(fetch(pool))
    await asyncio.sleep(0.05)
    await held.read()
    held.release()  # The connection is handed to the waiting request ...
    cancelled.cancel()  # ... which gives up before it runs again.
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await fetch(pool) == (200, b"hello")
    assert server.connections == 1
    await pool.close()


async def test_requests_waiting_for_a_backend_that_refuses_fail_at_once() -> None:
    pool = pool_for("http://127.0.0.1:9", size=1, pool_timeout=5.0)
    outcomes = await asyncio.gather(fetch(pool), fetch(pool), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [UpstreamError, UpstreamError]
    assert pool.stats == {"open": 0, "idle": 0}
    await pool.close()


async def test_a_large_response_is_not_buffered_whole(serve: Serve) -> None:
    body = b"x" * (8 * 1024 * 1024)
    server = await serve(lambda request: ok(body))
    pool = pool_for(server.url)
    response = await pool.request("GET", b"/", [])
    received = 0
    most_buffered = 0
    async for chunk in response.iter_chunks():
        received += len(chunk)
        await asyncio.sleep(0.001)  # A slow reader.
        most_buffered = max(most_buffered, response._buffered)
    response.release()
    assert received == len(body)
    assert most_buffered < 2 * 1024 * 1024
    await pool.close()
