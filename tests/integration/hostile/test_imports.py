"""Hostile uploads to every import: each bounded before parsing, answered in milliseconds with a
problem naming the limit, the service answering `/health/live` meanwhile, nothing stored."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.hostile.support import Liveness, record

IMPORTS = {
    "brands": ("/api/v1/brands/import", "brand_registry"),
    "certificates": ("/api/v1/certificates/import", "certification"),
    "spot-checks": ("/api/v1/spot-checks/import", "inspection"),
}


def _header(writer: httpx.Client, kind: str) -> str:
    """The import's own header, as its (possibly empty) export gives it."""
    answer = writer.get(f"/api/v1/{kind}/export", params={"limit": 1})
    assert answer.status_code == 200
    return answer.content.decode("utf-8-sig").splitlines()[0]


def _wide_header(columns: int) -> Callable[[str], bytes]:
    return lambda _: (",".join(f"c{i:05d}" for i in range(columns)) + "\r\nx\r\n").encode()


def _long_cell(header: str) -> bytes:
    cells = ["x" * 131_073] + [""] * (header.count(","))
    return (header + "\r\n" + ",".join(cells) + "\r\n").encode()


def _one_long_line(_: str) -> bytes:
    return b"a" * (50 * 1024 * 1024)


CASES: dict[str, tuple[Callable[[str], bytes], set[int], str]] = {
    "20,000 columns (129 KB of header)": (_wide_header(20_000), {413, 422}, "limit"),
    "200,000 columns": (_wide_header(200_000), {413, 422}, ""),
    "a cell of 131,073 characters": (_long_cell, {422}, ""),
    "a 50 MB file of one line": (_one_long_line, {413, 422}, ""),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(IMPORTS))
def test_a_hostile_upload_is_refused_at_once_while_the_service_stays_live(
    writer: httpx.Client, service_urls: dict[str, str], kind: str, case: str
) -> None:
    path, service = IMPORTS[kind]
    build, statuses, mention = CASES[case]
    body = build(_header(writer, kind))
    watched = service_urls.get(service, service_urls["gateway"])
    with Liveness(watched) as live:
        started = time.perf_counter()
        answer = writer.post(
            path, params={"dry_run": "true"}, content=body, headers={"Content-Type": "text/csv"}
        )
        elapsed = time.perf_counter() - started
    record(
        f"{kind} import, {case}: {answer.status_code} in {elapsed * 1000:.0f} ms; {live.summary()}"
    )
    assert answer.status_code in statuses, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert mention in answer.text
    assert elapsed < 3, f"answered after {elapsed:.1f} s"
    assert live.failures == 0
    assert live.p99 < 100, live.summary()
