"""Forwarding to the backends.

Every `/api/v1/…` path of a backend is handled here, before the gateway's own router: the
caller is authenticated, its scope checked and its budget charged, then the request goes to
the backend with a service token naming the client, and the answer streams back.

Forwarding uses one pool of keep-alive connections per backend (`gateway.upstream`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import Message, Receive, Scope, Send

from gateway.auth import ANONYMOUS, Authenticator, AuthMetrics, ServiceTokens
from gateway.breaker import BreakerCall, CircuitBreaker
from gateway.ratelimit import Decision, RateLimiter, StoreMetrics
from gateway.revocations import RevocationBus
from gateway.routing import Prefix, is_public, required_scope, route_label
from gateway.service import Identity
from gateway.settings import Settings
from gateway.upstream import Pool, Response, UpstreamError, UpstreamTimeout
from kit.db import DATABASE_RETRY_AFTER_SECONDS, is_database_unavailable, outage_log
from kit.errors import ProblemError, database_unavailable_body, problem_of, send_problem
from kit.observability import (
    CountedDurations,
    Deferred,
    Metrics,
    begin_request,
    method_label,
    record_request,
    send_unexpected_error,
)

logger = structlog.get_logger("gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Credentials stay at the gateway; forwarding headers and the request ID are set afresh.
_NOT_FORWARDED = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"x-api-key",
    b"cookie",
    b"expect",
    b"content-length",
    b"x-request-id",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
}
# uvicorn writes its own `date` and `server`; the request-ID middleware writes `x-request-id`.
_NOT_RETURNED = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({502, 503, 504})
_SMALL_BODY = 64 * 1024


class RouteLabel:
    """What the access log and the metrics call a forwarded route, worked out when first
    asked (which is after the answer): the route of the request's path, or, for a path the
    backend did not know (404), `/api/v1/<prefix>/*`, so unknown paths do not mint a metrics
    series each."""

    __slots__ = ("_label", "_request_path", "_unknown_under")

    def __init__(self, request_path: str, *, unknown_under: str | None = None) -> None:
        self._request_path = request_path
        self._unknown_under = unknown_under
        self._label: str | None = None

    @property
    def path(self) -> str:
        if self._label is None:
            if self._unknown_under is not None:
                self._label = self._unknown_under + "/*"
            else:
                self._label = route_label(self._request_path)
        return self._label


class ProxyMetrics:
    """Backend calls by backend, route and status, and their time to response headers
    (retries included)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "gateway_backend_requests_total",
            "Requests forwarded to a backend",
            ["backend", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "gateway_backend_duration_seconds",
            "Time until a backend's response headers",
            ["backend", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self._forwarded = CountedDurations(self.calls, self.latency)
        self.rate_limit = StoreMetrics(registry)
        self.auth = AuthMetrics(registry)

    def observe(self, backend: str, method: str, route: str, status: int, seconds: float) -> None:
        label = method_label(method)
        self._forwarded.observe((backend, label, route, str(status)), (backend, route), seconds)


class Backend:
    """One backend service: its base URL, connection pool and circuit breaker."""

    def __init__(self, name: str, base_url: str, settings: Settings) -> None:
        self.name = name
        self.base_url = base_url
        self.breaker = CircuitBreaker(
            name=name,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
        )
        self._settings = settings
        self.pool: Pool | None = None

    async def open(self) -> None:
        self.pool = Pool(
            self.base_url,
            size=self._settings.pool_size,
            connect_timeout=self._settings.connect_timeout_seconds,
            read_timeout=self._settings.read_timeout_seconds,
            pool_timeout=self._settings.pool_timeout_seconds,
            # Below uvicorn's 5 s keep-alive, so an idle connection is dropped here first.
            keepalive_seconds=4.0,
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class UpstreamBroken(Exception):
    """A backend broke off a response that had already started streaming."""


@dataclass
class ProxyContext:
    """Everything the proxy needs, built in the app's lifespan."""

    settings: Settings
    backends: dict[str, Backend]
    authenticator: Authenticator
    limiter: RateLimiter
    service_tokens: ServiceTokens
    metrics: ProxyMetrics
    revocations: RevocationBus
    deferred: Deferred
    """Metrics and access lines of answered requests, run while a backend works."""
    region_codes: frozenset[str] = frozenset()
    """The counties and districts of `config/regions.json`, which clients may be bound to."""


@dataclass(slots=True)
class Exchange:
    """What the metrics and the access line learn of one forwarded request."""

    request_id: str
    status: int = 500
    answering: bool = False
    """The response has started, so a failure can no longer be answered with a problem."""
    route: RouteLabel | None = None
    backend_call: tuple[str, int, float] | None = None
    """The backend asked, its status and the seconds until its response headers."""


class Forwarder:
    """The ASGI app of every backend path: it gives the request its ID, forwards it, and
    once the answer is out queues its metrics and access line (`Deferred`). A forwarded
    request meets none of the gateway's FastAPI stack.

    Kept for measured figures (gateway/README.md, Performance, runs of 2026-11-28): requests
    handed here from the app's `__call__`, past FastAPI's middleware, with the access line
    written directly as one queued job, are part of what brought the added p50 at c=1 from
    +1.01 ms to about +0.5 ms (`bench/gateway_bench.py`); writing that job while the next
    request waits on its backend took it from 0.585 to 0.467 ms side by side with the build
    before (`bench/gateway_ab.py`).
    """

    def __init__(self, state: Any, *, metrics: Metrics, deferred: Deferred) -> None:
        self.state = state
        self.metrics = metrics
        self.deferred = deferred
        self.access = structlog.get_logger("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(begin_request(scope))
        started = time.perf_counter()
        try:
            context: ProxyContext = self.state.proxy
            await _forward(context, scope["gateway.prefix"], scope, receive, send, exchange)
        except ProblemError as problem:
            await answer_problem(send, problem, instance=scope["path"], exchange=exchange)
        except ClientGone:
            logger.info("client_disconnected", path=scope["path"])
        except UpstreamBroken as broken:
            # The caller has the head and part of the body; its connection is closed.
            logger.warning("backend_broke_off_response", path=scope["path"], error=str(broken))
            exchange.status = 502
        except Exception as error:
            if is_database_unavailable(error):
                await self._database_unavailable(send, scope, exchange, error)
            else:
                logger.exception("unhandled_error", path=scope["path"])
                exchange.status = 500
                if not exchange.answering:
                    await send_unexpected_error(send, exchange.request_id)
        finally:
            elapsed = time.perf_counter() - started
            self.deferred.defer(self._record, scope, exchange, elapsed, time.time())

    async def _database_unavailable(
        self, send: Send, scope: Scope, exchange: Exchange, error: Exception
    ) -> None:
        """A 503 with Retry-After while the gateway's database cannot be reached (credentials
        not in the cache are looked up there), logged once per outage and counted as every
        service counts it."""
        outage_log.report(error, scope["path"])
        self.metrics.database_unavailable.inc()
        exchange.status = 503
        if exchange.answering:
            return
        exchange.answering = True
        headers = [
            (b"x-request-id", exchange.request_id.encode()),
            (b"retry-after", str(DATABASE_RETRY_AFTER_SECONDS).encode()),
        ]
        await send_problem(send, database_unavailable_body(scope["path"]), headers=headers)

    def _record(self, scope: Scope, exchange: Exchange, elapsed: float, answered_at: float) -> None:
        route = (exchange.route or RouteLabel(scope["path"])).path
        if exchange.backend_call is not None:
            backend, status, waited = exchange.backend_call
            self.state.proxy.metrics.observe(backend, scope["method"], route, status, waited)
        record_request(
            self.metrics,
            self.access,
            scope,
            route,
            exchange.status,
            elapsed,
            answered_at=answered_at,
        )


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _RequestHead:
    """The request headers the forwarder acts on, read in one pass."""

    __slots__ = (
        "api_key",
        "authorization",
        "chunked",
        "connection",
        "content_length",
        "idempotency_key",
    )

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        api_key = authorization = None
        content_length: int | None = None
        chunked = idempotency_key = connection = False
        for name, value in headers:
            if name == b"x-api-key":
                api_key = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else 0
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"idempotency-key":
                idempotency_key = True
            elif name == b"connection":
                connection = True
        self.api_key: str | None = api_key
        self.authorization: str | None = authorization
        self.content_length = content_length
        self.chunked = chunked
        self.idempotency_key = idempotency_key
        self.connection = connection


async def _forward(
    context: ProxyContext,
    prefix: Prefix,
    scope: Scope,
    receive: Receive,
    send: Send,
    exchange: Exchange,
) -> None:
    """One forwarded request: the caller authenticated and admitted, its budget charged, the
    backend called with a service token in its place, and the answer relayed."""
    method: str = scope["method"]
    head = _RequestHead(scope["headers"])
    public = is_public(method, scope["path"])
    identity = _known_caller(context, head, public) or (
        await context.authenticator.from_headers(
            head.api_key, head.authorization, address=_client_ip(scope)
        )
    )
    limit_key, limit = _admit(context, prefix, scope, identity, public)
    decision = _within_limit(await context.limiter.hit(limit_key, limit))
    backend, call = _backend_for(context, prefix)
    with call:
        token = context.service_tokens.for_backend(backend.name, identity)
        headers = _upstream_headers(scope, exchange.request_id, head.connection, token)
        attempts, kept = _retry_plan(context, method, head)
        data = await _read_body(receive) if kept else _body_stream(head, receive)
        started = time.perf_counter()
        response = await _send_with_retries(
            context,
            backend,
            call,
            method,
            _target(scope),
            headers,
            data,
            head.content_length,
            attempts,
        )
    _note_backend_call(exchange, backend, prefix, scope["path"], response, started)
    try:
        await _relay(response, send, decision, method, exchange)
    finally:
        response.release()


def _known_caller(context: ProxyContext, head: _RequestHead, public: bool) -> Identity | None:
    """The caller as known without any I/O: anonymous on a public path sent without
    credentials, or the client of credentials accepted within the cache period; None when
    the credentials have to be checked (`Authenticator.from_headers`)."""
    if public and not head.api_key and not head.authorization:
        return ANONYMOUS
    return context.authenticator.known(head.api_key, head.authorization)


def _admit(
    context: ProxyContext, prefix: Prefix, scope: Scope, identity: Identity, public: bool
) -> tuple[str, str]:
    """Let the caller in if it holds the route's scope (403 otherwise), as the request's
    principal and in its log context; the key and the limit its requests are counted under."""
    scope.setdefault("state", {})["principal"] = identity
    if identity is ANONYMOUS:
        limit_key, limit = f"ip:{_client_ip(scope)}", context.settings.anonymous_rate_limit
    else:
        needed = required_scope(scope["method"], scope["path"], prefix)
        if not public and needed not in identity.scopes:
            raise ForbiddenScope(needed)
        limit_key, limit = f"client:{identity.client_id}", identity.rate_limit
    structlog.contextvars.bind_contextvars(client_id=identity.client_id, backend=prefix.backend)
    return limit_key, limit


def _within_limit(decision: Decision | None) -> Decision | None:
    """The rate-limit decision of a caller within its budget (429 past it)."""
    if decision is not None and not decision.allowed:
        raise RateLimited(decision)
    return decision


def _backend_for(context: ProxyContext, prefix: Prefix) -> tuple[Backend, BreakerCall]:
    """The backend serving `prefix` and the call its breaker lets through, unless its
    circuit is open (503)."""
    backend = context.backends[prefix.backend]
    call = backend.breaker.call()
    if call is None:
        raise BackendUnavailable(backend.name, backend.breaker.retry_after(), circuit_open=True)
    return backend, call


def _retry_plan(context: ProxyContext, method: str, head: _RequestHead) -> tuple[int, bool]:
    """How many times the request may be sent, and whether its body is read first so that
    it can be sent again: idempotent requests (and POST with Idempotency-Key) are retried
    when their body, if any, has a length within the retry limit; others go out once."""
    retryable = method in _IDEMPOTENT or (method == "POST" and head.idempotency_key)
    if head.chunked or head.content_length:
        length = head.content_length
        if not retryable or length is None or length > context.settings.retry_max_body_bytes:
            return 1, False
        return context.settings.retry_attempts, True
    return (context.settings.retry_attempts if retryable else 1), False


def _body_stream(head: _RequestHead, receive: Receive) -> AsyncIterator[bytes] | None:
    """The request body streamed on as it arrives, or None without one."""
    return _stream_body(receive) if head.chunked or head.content_length else None


def _target(scope: Scope) -> bytes:
    """The request target as the caller sent it: raw path and query string."""
    target: bytes = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return target + b"?" + query if query else target


def _note_backend_call(
    exchange: Exchange,
    backend: Backend,
    prefix: Prefix,
    path: str,
    response: Response,
    started: float,
) -> None:
    """What the metrics learn of the backend call, and the route the request is counted as."""
    exchange.backend_call = (backend.name, response.status, time.perf_counter() - started)
    exchange.route = RouteLabel(path, unknown_under=prefix.path if response.status == 404 else None)


async def _send_with_retries(
    context: ProxyContext,
    backend: Backend,
    call: BreakerCall,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    data: bytes | AsyncIterator[bytes] | None,
    content_length: int | None,
    attempts: int,
) -> Response:
    """The backend's response, retrying connection failures and 502-504 up to `attempts`."""
    assert backend.pool is not None
    for attempt in range(1, attempts + 1):
        try:
            response = await backend.pool.request(
                method,
                target,
                headers,
                data,
                content_length=content_length,
                while_waiting=context.deferred.run_pending,
            )
        except UpstreamTimeout:
            call.failed()
            raise BackendTimeout(backend.name) from None
        except UpstreamError as exc:
            if attempt < attempts:
                await _backoff(context.settings.retry_backoff_seconds, attempt)
                continue
            call.failed()
            logger.warning("backend_unreachable", backend=backend.name, error=str(exc))
            raise BackendUnavailable(backend.name, 1) from None
        if response.status in _RETRY_STATUSES:
            if attempt < attempts:
                response.release()
                await _backoff(context.settings.retry_backoff_seconds, attempt)
                continue
            call.failed()
        else:
            call.succeeded()
        return response
    raise BackendUnavailable(backend.name, 1)


async def _backoff(base: float, attempt: int) -> None:
    # Exponential backoff with full jitter, so retrying replicas do not stampede.
    await asyncio.sleep(random.uniform(0, base * 2 ** (attempt - 1)))


def _upstream_headers(
    scope: Scope, request_id: str, has_connection: bool, token: str
) -> list[tuple[bytes, bytes]]:
    """The request's headers as the backend gets them: hop-by-hop and credentials dropped,
    forwarding headers, the request ID and the service token set."""
    headers: list[tuple[bytes, bytes]] = []
    host = b""
    forwarded_for = b""
    dropped = _NOT_FORWARDED
    if has_connection:
        for name, value in scope["headers"]:
            if name == b"connection":
                # Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
                named = {token.strip().lower() for token in value.split(b",")}
                dropped = dropped | named
    for name, value in scope["headers"]:
        if name in dropped:
            if name == b"host":
                host = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
            continue
        headers.append((name, value))
    peer = _client_ip(scope).encode()
    headers.append((b"x-forwarded-for", forwarded_for + b", " + peer if forwarded_for else peer))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    if host:
        headers.append((b"x-forwarded-host", host))
    headers.append((b"x-request-id", request_id.encode()))
    headers.append((b"authorization", b"Bearer " + token.encode()))
    return headers


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _relay(
    response: Response, send: Send, decision: Decision | None, method: str, exchange: Exchange
) -> None:
    headers = [header for header in response.headers if header[0] not in _NOT_RETURNED]
    headers.append((b"x-request-id", exchange.request_id.encode()))
    if decision is not None:
        headers.extend(decision.headers())
    exchange.status = response.status
    exchange.answering = True
    length = response.content_length
    start: Message = {"type": "http.response.start", "status": response.status, "headers": headers}
    if method == "HEAD" or (length is not None and length <= _SMALL_BODY):
        body = b"" if method == "HEAD" else await response.read()
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    await send(start)
    try:
        async for chunk in response.iter_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (UpstreamError, UpstreamTimeout) as exc:
        raise UpstreamBroken(f"the backend broke off the response: {type(exc).__name__}") from exc
    await send({"type": "http.response.body", "body": b""})


class ClientGone(Exception):
    """The caller disconnected while its request body was being read."""


class ForbiddenScope(ProblemError):
    status, slug = 403, "forbidden"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This operation needs the scope {scope!r}.", required_scope=scope)


class RateLimited(ProblemError):
    status, slug = 429, "rate-limited"

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"Rate limit of {decision.limit} requests exceeded; retry in "
            f"{max(decision.reset_seconds, 1)} s.",
            title="Too Many Requests",
        )
        self.raw_headers = decision.headers()


class BackendUnavailable(ProblemError):
    status, slug = 503, "backend-unavailable"

    def __init__(self, backend: str, retry_after: int, *, circuit_open: bool = False) -> None:
        reason = "is failing; calls are paused" if circuit_open else "cannot be reached"
        super().__init__(
            f"The {backend} service {reason}. Retry in {retry_after} s.",
            title="Service Unavailable",
            headers={"Retry-After": str(retry_after)},
            backend=backend,
            circuit_open=circuit_open,
        )


class BackendTimeout(ProblemError):
    status, slug = 504, "gateway-timeout"

    def __init__(self, backend: str) -> None:
        super().__init__(
            f"The {backend} service did not answer in time.",
            title="Gateway Timeout",
            backend=backend,
        )


async def answer_problem(
    send: Send, problem: ProblemError, *, instance: str, exchange: Exchange
) -> None:
    """Answer with `problem` as `application/problem+json`, its headers and the request ID."""
    headers = [(b"x-request-id", exchange.request_id.encode())]
    headers.extend((k.lower().encode(), v.encode()) for k, v in problem.headers.items())
    headers.extend(getattr(problem, "raw_headers", []))
    exchange.status = problem.status
    exchange.answering = True
    await send_problem(send, problem_of(problem, instance=instance), headers=headers)
