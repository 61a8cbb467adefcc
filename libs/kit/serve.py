"""Serve an app with uvicorn, its request heads bounded: `python -m kit.serve module:factory`.

uvicorn's httptools protocol reads a request's head, however long, before the app sees it: a
50 MB header without a key was read whole before the 401, and ten unfinished 40 MB headers grew
a process by 400 MiB. `BoundedHeadersProtocol` counts the head as it arrives and answers 431
as soon as it passes a limit (8 KB for one line, 32 KB for the whole head, 100 header lines),
before authentication and before it has buffered more than that. It adds one comparison per
received chunk and one per header to the parser's callbacks (`bench/header_limits_bench.py`
measures the trivial route with and without it).

A request whose `Transfer-Encoding` names any coding but `chunked` (`gzip, chunked`, say) is a
501: the parser would remove the chunking and hand the app a still-encoded body as if plain.

Forwarded headers (`X-Forwarded-For`, `X-Forwarded-Proto`) are trusted only from the addresses
named by `--trusted-proxies` (none by default): uvicorn would otherwise trust them from
127.0.0.1, and every client on the machine could pick its own address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kit.errors import PROBLEM_MEDIA_TYPE, problem_body

MAX_HEADER_LINE_BYTES = 8 * 1024
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
LINGER_SECONDS = 1.0


class BoundedHeadersProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request head of bounded size and count.

    Two counts bound a head: the bytes received while it is unfinished (so a head that never
    ends is cut off once they pass the limit), and the size of its parsed lines (so a long head
    that arrives whole in one read is refused too). Body bytes that arrive with the head in
    the same read count toward neither.
    """

    max_line = MAX_HEADER_LINE_BYTES
    max_head = MAX_HEAD_BYTES
    max_headers = MAX_HEADERS

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._in_head = True
        self._unfinished_bytes = 0
        self._head_size = 0
        self._header_count = 0
        self._transfer_codings: list[str] = []
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._unfinished_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self._refused and self._unfinished_bytes > self.max_head:
            self._refuse(f"The request head is larger than {self.max_head} bytes.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        self._header_count = 0
        self._transfer_codings = []

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        super().on_url(url)
        self._head_size += len(url)
        if len(self.url) > self.max_line:
            self._refuse(f"The request line is longer than {self.max_line} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        self._head_size += len(name) + len(value) + 4
        if self._header_count > self.max_headers:
            self._refuse(f"The request has more than {self.max_headers} header lines.")
        elif len(name) + len(value) + 2 > self.max_line:
            self._refuse(
                f"The header {name[:64].decode('latin-1')!r} is longer than {self.max_line} bytes."
            )
        elif self._head_size > self.max_head:
            self._refuse(f"The request head is larger than {self.max_head} bytes.")
        else:
            if name.lower() == b"transfer-encoding":
                self._transfer_codings += [
                    coding.strip().lower()
                    for coding in value.decode("latin-1").split(",")
                    if coding.strip()
                ]
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        unsupported = [coding for coding in self._transfer_codings if coding != "chunked"]
        if unsupported:
            self._refuse(
                f"The transfer coding {', '.join(unsupported)} is not supported; send the body"
                " plain or chunked.",
                status=501,
            )
            return
        self._in_head = False
        self._unfinished_bytes = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True

    def _refuse(self, detail: str, *, status: int = 431) -> None:
        """Answer 431 (or `status`) with a problem naming the limit, and close the connection."""
        if self._refused:
            return
        self._refused = True
        phrase = HTTPStatus(status).phrase
        slug = phrase.lower().replace(" ", "-")
        body = json.dumps(problem_body(status, detail=detail, slug=slug)).encode()
        self.transport.write(
            f"HTTP/1.1 {status} {phrase}\r\n".encode()
            + f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode()
            + f"content-length: {len(body)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + body
        )
        # A sender still writing would get a reset for the bytes left unread, and could lose
        # the answer with it: half-close, discard what still arrives, close a moment later.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kit.serve", description=__doc__)
    parser.add_argument("app", help="the app factory, as module:function")
    parser.add_argument("--host", default=os.environ.get("QRP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--trusted-proxies",
        default="",
        help="comma-separated addresses whose X-Forwarded-* headers are believed (none by default)",
    )
    parser.add_argument("--no-access-log", action="store_true", help="the apps log their own")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    trusted = [
        address.strip() for address in arguments.trusted_proxies.split(",") if address.strip()
    ]
    uvicorn.run(
        arguments.app,
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        http=BoundedHeadersProtocol,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        access_log=not arguments.no_access_log,
        server_header=False,
    )


if __name__ == "__main__":
    main()
