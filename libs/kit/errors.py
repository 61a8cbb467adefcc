"""RFC 9457 problem responses: the one error shape of every service.

ProblemError
 ├── BadRequest (400)          ├── PreconditionFailed (412)
 ├── Unauthorized (401)        ├── PayloadTooLarge (413)
 ├── Forbidden (403)           ├── UnsupportedMediaType (415)
 ├── NotFound (404)            ├── ValidationFailed (422, with `errors`)
 ├── Conflict (409)            ├── PreconditionRequired (428)
 └── ServiceUnavailable (503)  └── GatewayTimeout (504)
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from kit.db import DATABASE_RETRY_AFTER_SECONDS, is_database_unavailable, outage_log

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

logger = structlog.get_logger("kit.errors")

# Driver errors meaning "this value cannot be stored": PostgreSQL refuses NUL characters, and
# asyncpg refuses numbers outside the column's range before sending them.
_UNSTORABLE_TEXT = {
    "UntranslatableCharacterError",
    "CharacterNotInRepertoireError",
    "NumericValueOutOfRangeError",
    "DataError",
}


@dataclass(frozen=True)
class FieldError:
    """One invalid input, named by its field."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ProblemError(Exception):
    """An error that becomes an `application/problem+json` response."""

    status: int = 500
    slug: str = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ProblemError):
    status, slug = 400, "bad-request"


class Unauthorized(ProblemError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError):
    status, slug = 403, "forbidden"


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class PreconditionFailed(ProblemError):
    status, slug = 412, "precondition-failed"


class PayloadTooLarge(ProblemError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "unsupported-media-type"


class ValidationFailed(ProblemError):
    status, slug = 422, "validation-error"

    def __init__(
        self, errors: Sequence[FieldError], detail: str | None = None, **extra: Any
    ) -> None:
        self.errors = list(errors)
        summary = detail or "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(summary or "The request is invalid.", title="Validation failed", **extra)
        self.extra["errors"] = [e.as_dict() for e in self.errors]

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)])


class PreconditionRequired(ProblemError):
    status, slug = 428, "precondition-required"


class TooManyRequests(ProblemError):
    status, slug = 429, "rate-limited"


class ServiceUnavailable(ProblemError):
    status, slug = 503, "service-unavailable"


class GatewayTimeout(ProblemError):
    status, slug = 504, "gateway-timeout"


def problem_body(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON members of a problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ready `application/problem+json` response."""
    body = problem_body(status, detail=detail, title=title, slug=slug, instance=instance, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def send_problem(
    send: Send,
    body: dict[str, Any],
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer an ASGI request with the problem `body` (its `status` member is the status).

    The one writer for code that speaks ASGI directly (middleware, the gateway's forwarder);
    handlers behind FastAPI raise a `ProblemError` or return `problem_response` instead.
    """
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def problem_of(error: ProblemError, *, instance: str | None = None) -> dict[str, Any]:
    """The problem body of a raised `ProblemError`."""
    return problem_body(
        error.status,
        detail=error.detail,
        title=error.title,
        slug=error.slug,
        instance=instance,
        **error.extra,
    )


def request_id_of(request: Request) -> str | None:
    """The request's ID as the kit's middleware kept it (the caller's valid `X-Request-ID`, or
    one made for it); services pass it on to the calls and notices the request causes."""
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def field_name(loc: Sequence[int | str]) -> str:
    """Turn a pydantic location such as ('body', 'items', 0, 'tier') into 'items[0].tier'."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def problem_response_of(error: ProblemError, *, instance: str | None) -> JSONResponse:
    """The response of a raised `ProblemError` (at the path `instance`)."""
    return problem_response(
        error.status,
        detail=error.detail,
        title=error.title,
        slug=error.slug,
        instance=instance,
        headers=error.headers or None,
        **error.extra,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response_of(exc, instance=request.url.path)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        loc = error.get("loc", ())
        message = str(error.get("msg", "invalid value"))
        errors.append(
            {"field": field_name(loc), "message": message, "location": str(loc[0]) if loc else ""}
        )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        422,
        detail=detail or "The request is invalid.",
        title="Validation failed",
        slug="validation-error",
        instance=request.url.path,
        errors=errors,
    )


_DOCUMENTED_METHODS = ("get", "put", "post", "delete", "patch")
_path_methods: weakref.WeakKeyDictionary[Any, list[tuple[int, re.Pattern[str], list[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _documented_paths(app: Any) -> list[tuple[int, re.Pattern[str], list[str]]]:
    """Each path of the app's OpenAPI document as a pattern, with its methods."""
    known = _path_methods.get(app)
    if known is None:
        known = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            methods = [m.upper() for m in _DOCUMENTED_METHODS if m in operations]
            known.append((template.count("{"), re.compile(f"^{pattern}$"), methods))
        known.sort(key=lambda entry: entry[0])
        _path_methods[app] = known
    return known


def allowed_methods(request: Request, fallback: str | None) -> str:
    """The `Allow` of a 405: the methods the OpenAPI document lists for the request's path.

    Starlette's own names only the methods of the first route whose path matched, while an
    item's GET and PATCH are often two routes. Where two documented paths match (a literal
    segment and a parameter), the more literal one speaks; an undocumented path keeps
    Starlette's answer."""
    app = request.scope.get("app")
    if app is not None and hasattr(app, "openapi"):
        for _, pattern, methods in _documented_paths(app):
            if pattern.match(request.url.path):
                return ", ".join(methods)
    return fallback or ""


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    detail = str(exc.detail) if exc.detail else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 405:
        allowed = allowed_methods(request, headers.get("Allow") or headers.get("allow"))
        headers.pop("allow", None)
        headers["Allow"] = allowed
        detail = f"{request.method} is not allowed here; allowed: {allowed}."
    return problem_response(
        exc.status_code, detail=detail, instance=request.url.path, headers=headers or None
    )


async def _on_integrity(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("integrity_conflict", error_class=type(exc).__name__)
    return problem_response(
        409,
        detail="The request conflicts with a record that already exists.",
        slug="conflict",
        instance=request.url.path,
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_database_unavailable(exc):
        return database_unavailable_response(request, exc)
    causes = {type(exc.orig).__name__, type(getattr(exc.orig, "__cause__", None)).__name__}
    if causes & _UNSTORABLE_TEXT:
        return problem_response(
            422,
            detail="The request contains a value the database cannot store "
            "(a NUL character, or a number out of range).",
            title="Validation failed",
            slug="validation-error",
            instance=request.url.path,
            errors=[{"field": "request", "message": "contains a value that cannot be stored"}],
        )
    raise exc


def database_unavailable_body(instance: str | None = None) -> dict[str, Any]:
    """The body of the 503 a request gets while the database cannot be reached."""
    return problem_body(
        503,
        detail="The database is unavailable; retry in a few seconds.",
        slug="database-unavailable",
        instance=instance,
        retry_after_seconds=DATABASE_RETRY_AFTER_SECONDS,
    )


def database_unavailable_response(request: Request, error: BaseException) -> JSONResponse:
    """503 with `Retry-After`, logged once per outage and counted in `/metrics`."""
    outage_log.report(error, request.url.path)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None and hasattr(metrics, "database_unavailable"):
        metrics.database_unavailable.inc()
    return JSONResponse(
        database_unavailable_body(request.url.path),
        status_code=503,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


async def _on_unreachable(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        return database_unavailable_response(request, exc)
    raise exc


async def _on_stale(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        412,
        detail="The resource was changed by another request; fetch it again and retry.",
        slug="precondition-failed",
        instance=request.url.path,
    )


def unexpected_error_body(request_id: str | None) -> dict[str, Any]:
    """The body of a 500: generic, with the request ID to quote to operators."""
    return problem_body(
        500,
        detail="An unexpected error occurred. Quote the request ID when reporting it.",
        slug="internal-error",
        request_id=request_id,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error path of `app` to a problem response."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity)
    app.add_exception_handler(StaleDataError, _on_stale)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(ConnectionError, _on_unreachable)
    app.add_exception_handler(PoolTimeoutError, _on_unreachable)
