"""A real S3-compatible server for tests of kit.storage's S3Store and what uses it.

moto's S3 server answers over HTTP on a free local port, in a thread of the test process:
nothing in boto3 is patched, the requests go through the network stack as they would to S3.
Import the fixtures in a conftest (`from kit.storage_testing import s3_server, s3_store_url`)
or name the module in a test module's `pytest_plugins`; either order works, since pytest is
told not to rewrite this module's assertions (it has none): PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

TEST_REGION = "us-east-1"
TEST_ACCESS_KEY = "testing"
TEST_SECRET_KEY = "testing"  # noqa: S105 (the test server accepts any)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL (http://127.0.0.1:PORT) of a local S3 server for the session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket on the test server; its name."""
    import boto3

    bucket = name or f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
    client.create_bucket(Bucket=bucket)
    return bucket


def store_url(endpoint_url: str, bucket: str, prefix: str = "blobs") -> str:
    """The `s3://` URL (for kit.storage.open_store) of `bucket`/`prefix` on the test server."""
    return (
        f"s3://{TEST_ACCESS_KEY}:{TEST_SECRET_KEY}@{bucket}/{prefix}"
        f"?endpoint_url={endpoint_url}&region={TEST_REGION}"
    )


@pytest.fixture(scope="session")
def s3_store_url(s3_server: str) -> str:
    """An `s3://` store URL on a bucket of its own on the session's test server."""
    return store_url(s3_server, make_bucket(s3_server))
