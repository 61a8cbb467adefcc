"""`/health/live`, `/health/ready` and `/metrics`, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.db import ping
from kit.migrations import current_revision, head_revision

ReadyCheck = Callable[[], Awaitable[dict[str, Any]]]
"""An extra readiness check: returns details, raises to report the service unready."""

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def database_check(
    engine: AsyncEngine, script_location: Path, version_table: str
) -> dict[str, Any]:
    """Reachable database whose schema is at the migration head."""
    await ping(engine)
    current = await current_revision(engine, version_table)
    head = head_revision(script_location)
    if current != head:
        raise RuntimeError(f"migrations not at head: database at {current}, code at {head}")
    return {"revision": current}


@router.get("/health/ready", summary="The service can answer requests")
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, ReadyCheck] = request.app.state.ready_checks
    details: dict[str, Any] = {}
    healthy = True
    for name, check in checks.items():
        try:
            details[name] = {"status": "ok", **await check()}
        except Exception as exc:
            healthy = False
            details[name] = {"status": "fail", "reason": _describe(exc)}
    status = "ok" if healthy else "unavailable"
    return JSONResponse({"status": status, "checks": details}, status_code=200 if healthy else 503)


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    request.app.state.deferred.run_pending()
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
