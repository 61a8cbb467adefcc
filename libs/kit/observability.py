"""Request IDs, structured JSON logs, Prometheus metrics and the last-resort 500."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.db import DATABASE_RETRY_AFTER_SECONDS, is_database_unavailable, outage_log
from kit.errors import (
    database_unavailable_body,
    problem_body,
    send_problem,
    unexpected_error_body,
)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def configure_logging(*, service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """One JSON line per event on standard output, from structlog and the standard library.

    The platform's own events (the access log among them) take structlog's direct path: the
    processors render the line and it is written, with no `logging` record, handler or
    formatter in between, which costs a fraction of the per-request time of the route through
    `logging`. Libraries' standard-library records (uvicorn's included) are rendered by the
    same processors through a `ProcessorFormatter`.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.EventRenamer("message"),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json_logs
        else structlog.dev.ConsoleRenderer()
    )

    def add_service(_logger: Any, _name: str, event: structlog.typing.EventDict) -> Any:
        event["service"] = service
        return event

    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    _access.service = service
    _access.direct = json_logs and numeric_level <= logging.INFO
    structlog.configure(
        processors=[*shared, add_service, structlog.processors.format_exc_info, renderer],
        logger_factory=_StdoutLogger,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            add_service,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _json_line(event: Any, default: Any = None, **_options: Any) -> str:
    """orjson renders a line in a fraction of `json.dumps`' time; the standard library takes
    what orjson refuses (integers beyond 64 bits, say)."""
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event, default=default, ensure_ascii=False)


_write_lock = threading.Lock()


def _write_line(line: str) -> None:
    """One rendered line to the current `sys.stdout` (tests capture it), whole and flushed."""
    with _write_lock:
        stream = sys.stdout
        stream.write(line + "\n")
        stream.flush()


class _StdoutLogger:
    """structlog's output."""

    def __init__(self, *_args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        _write_line(message)

    debug = info = warning = error = critical = exception = log = msg


class _AccessLogConfig:
    service = ""
    direct = False


_access = _AccessLogConfig()


def _timestamp(at: float | None = None) -> str:
    # The form of structlog's TimeStamper(fmt="iso", utc=True).
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def log_access(logger: Any, *, at: float | None = None, **fields: Any) -> None:
    """The access-log line of one request, answered at `at` (a `time.time()`; now if None).

    Written past structlog's processor chain for speed: part of what brought the gateway's
    added p50 at c=1 from +1.01 ms to about +0.5 ms (`bench/gateway_bench.py`, 2026-11-28, see
    gateway/README.md); `test_access_lines_follow_the_logging_configuration` keeps its keys
    the same as the chain's.

    With JSON logs at level INFO or below, the line is composed and written here: the same
    keys the processors would give it (the bound context, level, timestamp, message and
    service), without the processor chain, which cost twice as much on every request.
    Otherwise (console rendering, or a level above INFO) it goes through structlog, and its
    timestamp is the time of writing.
    """
    if not _access.direct:
        logger.info("request", **fields)
        return
    line = structlog.contextvars.get_contextvars()
    line.update(fields)
    line["level"] = "info"
    line["timestamp"] = _timestamp(at)
    line["message"] = "request"
    line["service"] = _access.service
    _write_line(_json_line(line))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The metrics label of a method: any token is a method to HTTP, so ones outside the
    usual set share `OTHER`, or each would add series."""
    return method if method in _METHODS else "OTHER"


class CountedDurations:
    """A counter and a histogram of the same events, each labelled series looked up once.

    `counted` (the counter's label values) must determine `timed` (the histogram's); like
    every label value, both must come from a bounded set.
    """

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self.counter = counter
        self.histogram = histogram
        self._series: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, counted: tuple[str, ...], timed: tuple[str, ...], seconds: float) -> None:
        series = self._series.get(counted)
        if series is None:
            series = (self.counter.labels(*counted), self.histogram.labels(*timed))
            self._series[counted] = series
        series[0].inc()
        series[1].observe(seconds)


class Metrics:
    """The HTTP metrics of one app, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._answered = CountedDurations(self.requests, self.latency)
        self.hot_answers = Counter(
            "http_hot_answers_total",
            "Requests a hot route answered before the framework (kit.hotpaths)",
            ["route"],
            registry=self.registry,
        )
        self.database_unavailable = Counter(
            "database_unavailable_total",
            "Requests answered 503 because the database could not be reached",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        label = method_label(method)
        self._answered.observe((label, route, str(status)), (label, route), seconds)


_logger = structlog.get_logger("kit.observability")


class Deferred:
    """Bookkeeping that need not delay an answer (metrics, access-log lines).

    Work queued here runs when `run_pending` is called, which a caller does where the process
    would wait anyway (the gateway: once a request is on its way to a backend), and at the
    latest `delay` seconds after it was queued. Each job runs in a copy of the context it was
    queued from, so it logs with that request's bound values. A failing job is logged and the
    others still run.
    """

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self._pending: list[tuple[contextvars.Context, Callable[..., None], tuple[Any, ...]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def defer(self, job: Callable[..., None], *args: Any) -> None:
        self._pending.append((contextvars.copy_context(), job, args))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.run_pending()

    def run_pending(self) -> None:
        """Run everything queued so far."""
        while self._pending:
            batch, self._pending = self._pending, []
            for context, job, args in batch:
                try:
                    context.run(job, *args)
                except Exception:
                    _logger.exception("deferred_job_failed", job=getattr(job, "__qualname__", ""))


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """Gives every request an ID, logs one access line, counts it, and turns a crash into
    a generic problem response that names the request ID and shows nothing else."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, logger_name: str = "access") -> None:
        self.app = app
        self.metrics = metrics
        self.logger = structlog.get_logger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = begin_request(scope)
        started = time.perf_counter()
        status = 500
        response_started = False
        nul_parameter = _parameter_with_nul(scope)
        if nul_parameter is not None:
            problem = problem_body(
                422,
                detail=f"{nul_parameter}: text may not contain the NUL character",
                title="Validation failed",
                slug="validation-error",
                errors=[{"field": nul_parameter, "message": "contains the NUL character"}],
            )
            await _send_problem(send, problem, request_id)
            return

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if is_database_unavailable(error):
                status = 503
                outage_log.report(error, scope.get("path"))
                self.metrics.database_unavailable.inc()
                if not response_started:
                    await _send_problem(
                        send,
                        database_unavailable_body(scope.get("path")),
                        request_id,
                        [(b"retry-after", str(DATABASE_RETRY_AFTER_SECONDS).encode())],
                    )
                return
            self.logger.exception("unhandled_error", path=scope.get("path"))
            status = 500
            if not response_started:
                await send_unexpected_error(send, request_id)
        finally:
            elapsed = time.perf_counter() - started
            record_request(
                self.metrics, self.logger, scope, _route_template(scope), status, elapsed
            )


def record_request(
    metrics: Metrics,
    logger: Any,
    scope: Scope,
    route: str,
    status: int,
    elapsed: float,
    *,
    answered_at: float | None = None,
) -> None:
    """Count one answered request and write its access line (answered at `answered_at`, a
    `time.time()`; now if None)."""
    method = scope.get("method", "")
    metrics.observe(method, route, status, elapsed)
    principal = scope.get("state", {}).get("principal")
    log_access(
        logger,
        at=answered_at,
        method=method,
        path=scope.get("path"),
        route=route,
        status=status,
        duration_ms=round(elapsed * 1000, 2),
        client_id=getattr(principal, "client_id", None),
    )


def current_request_id() -> str | None:
    """The ID of the request being answered, from the log context `begin_request` bound: for
    code that has no request object at hand (a client calling another service)."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return str(request_id) if request_id else None


def begin_request(scope: Scope) -> str:
    """The request's ID (the caller's `X-Request-ID` when it is a valid one, else a new
    one), kept in the scope's state and bound, alone, to the log context."""
    request_id = _incoming_request_id(scope) or new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


async def send_unexpected_error(send: Send, request_id: str) -> None:
    """A 500 problem that names the request ID and shows nothing else."""
    await _send_problem(send, unexpected_error_body(request_id), request_id)


async def _send_problem(
    send: Send,
    problem: dict[str, Any],
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send_problem(
        send, problem, headers=[(b"x-request-id", request_id.encode()), *(headers or [])]
    )


def new_request_id() -> str:
    """32 random hex digits. Unique, not secret: the generator needs no system call."""
    return f"{random.getrandbits(128):032x}"


def _parameter_with_nul(scope: Scope) -> str | None:
    """The query parameter carrying a NUL character, which no database text column stores."""
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query.lower() and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return "query"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _VALID_REQUEST_ID.match(text) else None
    return None
