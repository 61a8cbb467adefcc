"""Read routes answered before the framework, for the few GETs a service serves most.

A *hot route* is a plain function of the request for a path the app also serves through
FastAPI. It answers the usual case (the usual query parameters, a caller with a valid token)
with the same service function as the FastAPI route, and returns None for anything else:
the FastAPI route then answers as it always does, with its validation, its errors and its
OpenAPI document. So a hot route changes no answer, only what an answer costs.

Why: FastAPI's routing, dependency solving and response validation cost about 520 µs of a
certificate verification's 1,380 µs of server CPU, as much again as the bare asyncpg
endpoint answering the same question (`bench/certification_bench.py`'s data, uvicorn at
c=1, 2026-12-03); the cheapest FastAPI route, `/health/live`, costs 232 µs.

The middleware sits inside the kit's request context (request ID, access line, metrics,
the 503 of a database outage), so a hot answer is logged and counted under the route's
template like any other. A `ProblemError` a hot route raises becomes the problem response
FastAPI's handler makes of it; a database error hands the request to the FastAPI route,
whose handlers answer it as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from kit.auth import Principal, get_principal
from kit.errors import ProblemError, problem_response_of


@dataclass(frozen=True)
class HotAnswer:
    """A 200 JSON answer: the model as FastAPI would serialize it, and extra headers."""

    body: bytes
    headers: Sequence[tuple[bytes, bytes]] = ()

    @classmethod
    def of(cls, model: BaseModel, *, etag: str | None = None) -> HotAnswer:
        body = model.__pydantic_serializer__.to_json(model)
        return cls(body, [(b"etag", etag.encode())] if etag is not None else [])


class HotRequest:
    """What a hot route reads of its request."""

    __slots__ = ("_request", "path_value", "scope")

    def __init__(self, scope: Scope, path_value: str | None) -> None:
        self.scope = scope
        self.path_value = path_value
        """The value of the path's one `{parameter}`, if its template has one."""
        self._request = Request(scope)

    @property
    def state(self) -> Any:
        """The app's state (its engine, settings, catalogue)."""
        return self.scope["app"].state

    def query(self, allowed: frozenset[str]) -> dict[str, str] | None:
        """The query parameters, each given once and each among `allowed`; None otherwise
        (the FastAPI route then reads them)."""
        params = QueryParams(self.scope["query_string"])
        if len(params) != len(params.multi_items()) or not params.keys() <= allowed:
            return None
        return dict(params)

    async def principal(self, scope: str | None = None) -> Principal | None:
        """The verified caller, holding `scope` if one is named; None for a request without
        a valid token or without the scope (the FastAPI route then answers 401 or 403)."""
        try:
            principal = await get_principal(self._request)
        except ProblemError:
            return None
        return principal if scope is None or principal.has(scope) else None


HotHandler = Callable[[HotRequest], Awaitable[HotAnswer | None]]


@dataclass(frozen=True)
class HotRoute:
    """A GET path template of the app (`/api/v1/things/{thing_id}` or an exact path) and the
    function that answers its usual case."""

    path: str
    handler: HotHandler
    parameter: bool = field(init=False)
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        head, _, last = self.path.rpartition("/")
        templated = last.startswith("{") and last.endswith("}")
        object.__setattr__(self, "parameter", templated)
        object.__setattr__(self, "prefix", head + "/" if templated else self.path)


_DATABASE_ERRORS = (DBAPIError, PoolTimeoutError, asyncpg.PostgresError, OSError)


class HotRoutesMiddleware:
    """Answers the `routes`' usual cases before FastAPI (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[HotRoute], fastapi: FastAPI) -> None:
        self.app = app
        self.exact: dict[str, tuple[HotRoute, BaseRoute, Any]] = {}
        self.templated: dict[str, tuple[HotRoute, BaseRoute, Any]] = {}
        contexts = [
            (c.path or "", c.methods or set(), c.route) for c in iter_route_contexts(fastapi.routes)
        ]
        get_routes = {path: route for path, methods, route in contexts if "GET" in methods}
        for hot in routes:
            served = get_routes.get(hot.path)
            if served is None:
                raise ValueError(f"hot route {hot.path} is not a GET route of the app")
            counted = fastapi.state.metrics.hot_answers.labels(hot.path)
            (self.templated if hot.parameter else self.exact)[hot.prefix] = (hot, served, counted)
        # Paths FastAPI routes elsewhere although a template would match them
        # (`/certificates/verify` beside `/certificates/{certificate_id}`).
        self.taken = {path for path, _, _ in contexts if "{" not in path}

    def _match(self, path: str) -> tuple[HotRoute, BaseRoute, Any, str | None] | None:
        found = self.exact.get(path)
        if found is not None:
            return (*found, None)
        head, _, last = path.rpartition("/")
        found = self.templated.get(head + "/")
        if found is None or not last or path in self.taken:
            return None
        return (*found, last)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = (
            self._match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if matched is None:
            await self.app(scope, receive, send)
            return
        hot, served, counted, value = matched
        try:
            answer = await hot.handler(HotRequest(scope, value))
        except ProblemError as error:
            scope["route"] = served
            counted.inc()
            response = problem_response_of(error, instance=Request(scope).url.path)
            await response(scope, receive, send)
            return
        except _DATABASE_ERRORS:
            answer = None
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = served
        counted.inc()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer.body)).encode()),
                    (b"content-type", b"application/json"),
                    *answer.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
