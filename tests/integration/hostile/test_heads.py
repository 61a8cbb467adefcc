"""Request heads are bounded in front of every app, before authentication, with memory flat; a
body in a transfer coding the server does not speak is refused, never read as plain."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.hostile.support import record


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _send(url: str, head: bytes, endless: bytes = b"", seconds: float = 10) -> tuple[int, float]:
    """Send `head`, then `endless` until the server answers; its status and the time taken."""
    started = time.perf_counter()
    with socket.create_connection(_address(url), timeout=seconds) as conn:
        conn.sendall(head)
        conn.setblocking(False)
        answer = b""
        while time.perf_counter() - started < seconds and b"\r\n" not in answer:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
                continue
            if endless:
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    conn.send(endless)
            else:
                time.sleep(0.005)
    elapsed = time.perf_counter() - started
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return (int(match.group(1)) if match else 0), elapsed


REQUEST = b"GET /api/v1/brands HTTP/1.1\r\nHost: qrp\r\n"
CASES = {
    "a 50 MB header without a key": (REQUEST + b"X-Big: ", b"a" * 65536),
    "a header line of 8 KB + 1": (REQUEST + b"X-Long: " + b"a" * 8193 + b"\r\n\r\n", b""),
    "101 header lines": (REQUEST + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", b""),
    "33 KB of short headers": (
        REQUEST + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 400) for i in range(90)) + b"\r\n",
        b"",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_oversized_head_is_a_431_before_authentication(
    service_urls: dict[str, str], case: str
) -> None:
    head, endless = CASES[case]
    for name, url in service_urls.items():
        status, elapsed = _send(url, head, endless)
        record(f"{name}, {case}: {status} in {elapsed * 1000:.0f} ms")
        assert status == 431, name
        assert elapsed < 2, (name, elapsed)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ten_endless_heads_leave_the_gateway_memory_flat(
    service_urls: dict[str, str], gateway_pid: int | None
) -> None:
    if gateway_pid is None or not Path(f"/proc/{gateway_pid}").exists():
        pytest.skip("the gateway's process is not on this machine")
    url = service_urls["gateway"]
    before = _rss_kib(gateway_pid)
    peak = before
    stop = threading.Event()
    refused: list[int] = []

    def attacker() -> None:
        while not stop.is_set():
            status, _ = _send(url, REQUEST + b"X-Endless: ", b"a" * 65536, seconds=3)
            refused.append(status)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(10)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        peak = max(peak, _rss_kib(gateway_pid))
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(10)
    after = _rss_kib(gateway_pid)
    record(
        f"gateway RSS under ten endless heads for 5 s: {before / 1024:.1f} MiB before,"
        f" {peak / 1024:.1f} MiB at most, {after / 1024:.1f} MiB after ({len(refused)} heads refused)"
    )
    assert refused
    assert set(refused) == {431}
    assert peak - before < 8 * 1024, "the gateway grew by more than 8 MiB"


def test_a_body_in_an_unsupported_transfer_coding_is_a_501(service_urls: dict[str, str]) -> None:
    head = (
        b"POST /api/v1/certificates/verify HTTP/1.1\r\nHost: qrp\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    for name, url in service_urls.items():
        status, _ = _send(url, head)
        assert status == 501, name
