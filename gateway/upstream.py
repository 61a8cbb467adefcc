"""The forwarding transport: keep-alive HTTP/1.1 connections to one backend.

Kept instead of a general client for its measured figures: `bench/forwarding_bench.py` puts
each transport in the same bare proxy in front of the same 2 KB endpoint, and in its run of
2026-11-28 (gateway/README.md, Performance) this pool added +0.27 ms to the p50 at c=1 and
spent 257–258 µs of proxy CPU per request, a pooled `aiohttp.ClientSession` +0.51 ms and
415–477 µs, a pooled `httpx.AsyncClient` +1.35 ms and 1,423–2,365 µs.

The gateway relays requests it has already parsed to backends it knows, so it needs far less
than a general HTTP client: no redirects, cookies, decompression, proxies or connection
upgrades. What it needs is a pool of keep-alive connections with connect, read and pool
timeouts, request and response bodies that stream in both directions with back-pressure, and
little work per request. Connections are asyncio protocols whose responses are parsed by
`httptools` (llhttp, the parser uvicorn uses).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TypeVar, cast
from urllib.parse import urlsplit

import httptools

from kit.waitline import WaitLine

_HIGH_WATER = 256 * 1024
"""Buffered response bytes at which the backend connection stops being read."""
_LOW_WATER = 64 * 1024

T = TypeVar("T")


class UpstreamError(ConnectionError):
    """The backend could not be reached, or broke the connection or the HTTP framing."""


class UpstreamTimeout(TimeoutError):
    """The backend, or a free connection to it, did not come in time."""


def _expire(future: asyncio.Future[T], what: str) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout(what))


class Response:
    """A backend's response: status and headers at once, the body as it arrives."""

    def __init__(self, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]]):
        self.status = status
        self.headers = headers
        self.content_length: int | None = None
        chunked = False
        for name, value in headers:
            if name == b"content-length" and value.isdigit():
                self.content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        # Neither length nor chunks: the body ends when the backend closes the connection.
        self.ends_with_connection = self.content_length is None and not chunked
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    async def read(self) -> bytes:
        """The whole body."""
        if self._complete:
            body = b"".join(self._chunks)
            self._chunks.clear()
            return body
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in; raises `UpstreamError` if it is cut short."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= _LOW_WATER:
                    self._connection.resume_reading()
                yield chunk
            elif self._complete:
                return
            elif self._error is not None:
                raise self._error
            else:
                self._waiter = self._connection.loop.create_future()
                await self._connection.wait(self._waiter, "the backend stopped sending")

    def release(self) -> None:
        """Hand the connection back for reuse if the body was read to its end, else close it."""
        if self._released:
            return
        self._released = True
        self._connection.finished(reusable=self._complete and not self._chunks)

    # Fed by the connection.

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def _end(self, error: BaseException | None = None) -> None:
        if error is None:
            self._complete = True
        elif not self._complete:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._head_request = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._headers_waiter: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._keep_alive = False
        self._reading_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._headers_waiter is None and self._response is None:
            # Nothing was asked: a backend talking out of turn cannot be trusted with the next request.
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response from the backend: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if exc is None and self._response is not None and self._response.ends_with_connection:
            self._response._end()
        self._fail(UpstreamError("the backend closed the connection"))
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(UpstreamError("the backend closed the connection"))

    def pause_writing(self) -> None:
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return  # An interim answer; the final one follows.
        response = Response(self, status, self._headers)
        self._response = response
        if self._headers_waiter is not None and not self._headers_waiter.done():
            self._headers_waiter.set_result(response)
        if self._head_request:
            # A response to HEAD announces a body it does not send; llhttp cannot be told.
            self._keep_alive = self.parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            response._end()

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._response is None:
            return  # The end of an interim answer.
        self._keep_alive = self.parser.should_keep_alive()
        self._response._end()

    # Used by the pool and the response.

    async def send(
        self,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        *,
        chunked: bool,
        head_request: bool,
        while_waiting: Callable[[], None] | None = None,
    ) -> Response:
        assert self.transport is not None
        self._head_request = head_request
        self._headers_waiter = self.loop.create_future()
        if isinstance(body, bytes):
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            if body is not None:
                async for chunk in body:
                    if not chunk:
                        continue
                    if chunked:
                        self.transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                    else:
                        self.transport.write(chunk)
                    await self._drain()
                if chunked:
                    self.transport.write(b"0\r\n\r\n")
        if while_waiting is not None:
            while_waiting()
        return await self.wait(self._headers_waiter, "the backend did not answer in time")

    async def wait(self, future: asyncio.Future[T], what: str) -> T:
        timer = self.loop.call_later(self.pool.read_timeout, _expire, future, what)
        try:
            return await future
        except UpstreamTimeout:
            self.close()
            raise
        finally:
            timer.cancel()

    async def _drain(self) -> None:
        if self.closed:
            raise UpstreamError("the backend closed the connection")
        if self._drain_waiter is not None and not self._drain_waiter.done():
            await self.wait(self._drain_waiter, "the backend stopped reading the request")

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def finished(self, *, reusable: bool) -> None:
        self._headers_waiter = None
        self._response = None
        self.resume_reading()
        if reusable and self._keep_alive and not self.closed:
            self.pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if not self.closed:
            self.closed = True
            self.pool.forget(self)

    def _fail(self, error: UpstreamError) -> None:
        if self._headers_waiter is not None and not self._headers_waiter.done():
            self._headers_waiter.set_exception(error)
        if self._response is not None:
            self._response._end(error)


class _Slot:
    """Room for one more connection, handed to a waiting request."""


_SLOT = _Slot()


class Pool:
    """Keep-alive connections to one backend at `base_url`, at most `size` at once."""

    def __init__(
        self,
        base_url: str,
        *,
        size: int,
        connect_timeout: float,
        read_timeout: float,
        pool_timeout: float,
        keepalive_seconds: float = 4.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._base_path = parts.path.rstrip("/").encode()
        self._host_header = parts.netloc.encode()
        self.size = size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_timeout = pool_timeout
        self.keepalive_seconds = keepalive_seconds
        self.loop = asyncio.get_running_loop()
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()
        self._connecting = 0
        self._line: WaitLine[_Connection | _Slot] = WaitLine()
        self._closed = False

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None = None,
        *,
        content_length: int | None = None,
        while_waiting: Callable[[], None] | None = None,
    ) -> Response:
        """Send a request for `target` (path and query, already encoded); the response's
        headers are in, its body is not. Call `release()` on it when done.

        `while_waiting` is called once the request is sent, before waiting for the answer.
        """
        lines = [
            b"%s %s%s HTTP/1.1\r\nhost: %s\r\n"
            % (method.encode(), self._base_path, target, self._host_header)
        ]
        lines.extend(b"%s: %s\r\n" % header for header in headers)
        chunked = False
        if isinstance(body, bytes):
            lines.append(b"content-length: %d\r\n" % len(body))
        elif body is not None:
            if content_length is None:
                chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                lines.append(b"content-length: %d\r\n" % content_length)
        lines.append(b"\r\n")
        connection = await self._acquire()
        try:
            return await connection.send(
                b"".join(lines),
                body,
                chunked=chunked,
                head_request=method == "HEAD",
                while_waiting=while_waiting,
            )
        except BaseException:
            connection.close()
            raise

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()

    # Connections

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if (
                not connection.closed
                and self.loop.time() - connection.idle_since < self.keepalive_seconds
            ):
                return connection
            connection.close()
        if not self._line.has_waiters and len(self._open) + self._connecting < self.size:
            self._connecting += 1
            return await self._connect()
        # Wait in line: a connection put back goes to the request that has waited longest,
        # and so does the slot of a connection that closed (`_Slot`).
        granted = await self._line.wait(
            self.pool_timeout,
            lambda: UpstreamTimeout("no free connection to the backend"),
            self._give_back,
        )
        if isinstance(granted, _Slot):
            return await self._connect()
        return granted

    async def _connect(self) -> _Connection:
        """A new connection, in a slot already counted in `_connecting`; if none comes of
        it, the slot passes to the next waiting request."""
        connection: _Connection | None = None
        try:
            if self._closed:
                raise UpstreamError("the connection pool is closed")
            _, opened = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl
                ),
                self.connect_timeout,
            )
            connection = opened
        except TimeoutError:
            raise UpstreamTimeout("connecting to the backend timed out") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect to the backend: {exc.strerror or exc}") from None
        finally:
            self._connecting -= 1
            if connection is None:
                self._pass_slot()
        self._open.add(opened)
        return opened

    def put_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = self.loop.time()
        if not self._line.hand(connection):
            self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._pass_slot()
        if connection in self._idle:
            self._idle.remove(connection)

    def _pass_slot(self) -> None:
        """Give a free slot to the longest waiting request, counted as connecting already."""
        self._connecting += 1
        if not self._line.hand(_SLOT):
            self._connecting -= 1

    def _give_back(self, granted: _Connection | _Slot) -> None:
        """What was handed to a request that stopped waiting passes on."""
        if isinstance(granted, _Slot):
            self._connecting -= 1
            self._pass_slot()
        else:
            self.put_back(granted)

    @property
    def stats(self) -> dict[str, int]:
        """Open connections, and how many of them wait idle for the next request."""
        return {"open": len(self._open), "idle": len(self._idle)}
