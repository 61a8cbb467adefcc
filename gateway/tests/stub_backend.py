"""A backend for the proxy mechanics: a kit service answering under `/api/v1/brands/stub`.

It verifies gateway tokens like every service, and adds endpoints a real service has no
reason to have: echoes, slow and failing answers, a large streamed export. Its counters and
failure switches live under `/stub-control`, reachable only directly.
Served with `uvicorn --app-dir gateway/tests --factory stub_backend:build_app`.

`build_assessment_app` is a stub in the assessment service's place (tokens for the audience
`assessment`): every GET under `/api/v1` answers the JSON document last put for its path with
`PUT /stub-control/canned`, or a 404 problem; each call is counted with its query and the
counties of its token.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic_settings import SettingsConfigDict

from kit.app import ServiceSpec, create_app
from kit.auth import CurrentPrincipal
from kit.settings import ServiceSettings


class StubSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STUB_", extra="ignore")
    service_name: ClassVar[str] = "brand_registry"


class StubAssessmentSettings(StubSettings):
    service_name: ClassVar[str] = "assessment"


router = APIRouter(prefix="/api/v1/brands/stub")
canned_router = APIRouter(prefix="/api/v1")
canned: dict[str, Any] = {}
control = APIRouter(prefix="/stub-control")
calls: Counter[str] = Counter()
switches: dict[str, Any] = {"failing": False}
PAYLOAD = {"items": [{"id": f"{i:04d}", "name": "x" * 80} for i in range(20)]}


@router.get("/ping")
async def ping(_: CurrentPrincipal) -> dict[str, Any]:
    """About 2 KB of JSON: the benchmark's trivial endpoint."""
    return PAYLOAD


@router.api_route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def echo(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    body = await request.body()
    return {
        "method": request.method,
        "query": request.url.query,
        "headers": dict(request.headers),
        "body": body.decode(errors="replace"),
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "counties": sorted(principal.county_codes),
    }


@router.get("/export")
async def export(_: CurrentPrincipal, rows: int = 100_000) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        yield b"id,product_name,brand_name,enterprise_name,county_code\n"
        filler = "b" * 200
        batch = []
        for i in range(rows):
            batch.append(f"{i},product {i},{filler},enterprise {i},320323\n")
            if len(batch) == 500:
                yield "".join(batch).encode()
                batch = []
        if batch:
            yield "".join(batch).encode()

    return StreamingResponse(generate(), media_type="text/csv")


@router.get("/broken-export")
async def broken_export(_: CurrentPrincipal) -> StreamingResponse:
    """An export that fails after its first rows: the connection closes mid-body."""

    async def generate() -> AsyncIterator[bytes]:
        yield b"id,name\n1,first\n"
        await asyncio.sleep(0.05)
        raise RuntimeError("the export failed half-way")

    return StreamingResponse(generate(), media_type="text/csv")


@router.get("/slow")
async def slow(_: CurrentPrincipal, seconds: float = 1.0) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@router.api_route("/flaky", methods=["GET", "POST"])
async def flaky(request: Request, _: CurrentPrincipal, fail_first: int = 1_000_000) -> Response:
    """Fails with 503 for the first `fail_first` calls of a given `X-Test-Key`."""
    key = f"flaky:{request.method}:{request.headers.get('x-test-key', '')}"
    calls[key] += 1
    if calls[key] <= fail_first:
        return Response('{"detail":"down"}', status_code=503, media_type="application/json")
    return Response('{"ok":true}', media_type="application/json")


@router.get("/switchable")
async def switchable(_: CurrentPrincipal) -> Response:
    calls["switchable"] += 1
    if switches["failing"]:
        return Response('{"detail":"down"}', status_code=503, media_type="application/json")
    return Response('{"ok":true}', media_type="application/json")


@canned_router.get("/{rest:path}")
async def canned_answer(rest: str, request: Request, principal: CurrentPrincipal) -> Response:
    path = f"/api/v1/{rest}"
    calls[f"GET {path}?{request.url.query}"] += 1
    calls[f"counties {','.join(sorted(principal.county_codes))}"] += 1
    if path not in canned:
        body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": path}
        return JSONResponse(body, status_code=404, media_type="application/problem+json")
    return JSONResponse(canned[path])


@control.put("/canned")
async def put_canned(request: Request) -> dict[str, int]:
    canned.clear()
    canned.update(await request.json())
    return {"paths": len(canned)}


@control.get("/calls")
async def read_calls() -> dict[str, int]:
    return dict(calls)


@control.post("/switch")
async def switch(failing: bool) -> dict[str, Any]:
    switches["failing"] = failing
    return switches


@asynccontextmanager
async def _no_database_check(app: FastAPI) -> AsyncIterator[None]:
    # The stub keeps no tables, so readiness does not depend on migrations.
    app.state.ready_checks.pop("database", None)
    yield


SPEC = ServiceSpec(
    name="brand_registry",
    title="Stub backend",
    description="Proxy mechanics for the gateway's tests.",
    version="1.0.0",
    routers=[router, control],
    migrations=Path(__file__).parent,
    version_table="stub_alembic_version",
    lifespan_hooks=[_no_database_check],
)


ASSESSMENT_SPEC = ServiceSpec(
    name="assessment",
    title="Stub assessment service",
    description="Canned assessment answers for the gateway's tests.",
    version="1.0.0",
    routers=[control, canned_router],
    migrations=Path(__file__).parent,
    version_table="stub_alembic_version",
    lifespan_hooks=[_no_database_check],
)


def build_app() -> FastAPI:
    """The ASGI app, configured from `STUB_*` variables."""
    return create_app(SPEC, StubSettings())


def build_assessment_app() -> FastAPI:
    """The assessment stand-in, configured from `STUB_*` variables."""
    return create_app(ASSESSMENT_SPEC, StubAssessmentSettings())
