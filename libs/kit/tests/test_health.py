import json
import logging
import re

import pytest
import structlog
from sqlalchemy import text

from kit.observability import configure_logging, log_access
from kit.testing import Harness


async def test_ready_reports_database_at_head(sample: Harness) -> None:
    response = await sample.client(authenticated=False).get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == {"status": "ok", "revision": "0001"}


async def test_ready_is_503_when_migrations_lag(sample: Harness) -> None:
    table = sample.spec.version_table
    async with sample.engine.begin() as connection:
        await connection.execute(text(f"UPDATE {table} SET version_num = 'old'"))
    try:
        response = await sample.client(authenticated=False).get("/health/ready")
        assert response.status_code == 503
        check = response.json()["checks"]["database"]
        assert check["status"] == "fail"
        assert "not at head" in check["reason"]
    finally:
        async with sample.engine.begin() as connection:
            await connection.execute(text(f"UPDATE {table} SET version_num = '0001'"))


async def test_request_id_is_generated_and_echoed(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    unsafe = await client.get("/health/live", headers={"X-Request-ID": "bad id\nwith newline"})
    assert unsafe.headers["x-request-id"] != "bad id\nwith newline"


async def test_metrics_count_requests_by_route(sample: Harness) -> None:
    client = sample.client()
    await client.get("/api/v1/widgets")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/api/v1/widgets",status="200"}' in response.text
    assert "http_request_duration_seconds_bucket" in response.text


async def test_every_log_line_carries_the_request_id(
    sample: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger().handlers[0].stream = __import__("sys").stdout  # type: ignore[attr-defined]
    capsys.readouterr()
    await sample.client().get("/api/v1/widgets", headers={"X-Request-ID": "trace-me"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    access = [line for line in lines if line.get("message") == "request"]
    assert access
    assert all(line["request_id"] == "trace-me" for line in access)
    assert access[-1]["status"] == 200
    assert access[-1]["client_id"] == "test-client"
    assert access[-1]["service"] == "sample"


async def test_unknown_methods_share_one_metrics_label(sample: Harness) -> None:
    client = sample.client()
    for method in ("FOO1", "FOO2"):
        assert (await client.request(method, "/api/v1/widgets")).status_code == 405
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="OTHER",route="/api/v1/widgets",status="405"}' in text
    assert "FOO1" not in text
    assert "FOO2" not in text


def test_log_lines_render_every_value_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="sample")
    structlog.get_logger("kit.tests").warning(
        "odd_values", big=2**70, text="質量振興", mapping={1: "one"}, thing=object()
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["big"] == 2**70
    assert line["text"] == "質量振興"
    assert line["thing"].startswith("<object object")
    assert line["level"] == "warning"
    assert line["message"] == "odd_values"
    assert line["service"] == "sample"


def test_access_lines_follow_the_logging_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = structlog.get_logger("access")
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        configure_logging(service="sample")
        log_access(logger, method="GET", status=200)
        direct = json.loads(capsys.readouterr().out)
        structlog.get_logger("access").info("request", method="GET", status=200)
        chained = json.loads(capsys.readouterr().out)
        assert direct.keys() == chained.keys()
        assert {k: v for k, v in direct.items() if k != "timestamp"} == {
            k: v for k, v in chained.items() if k != "timestamp"
        }
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", direct["timestamp"])

        configure_logging(service="sample", level="WARNING")
        log_access(logger, method="GET", status=200)
        assert capsys.readouterr().out == ""
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging(service="sample")
