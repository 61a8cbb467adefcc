"""HTTP routes of the gateway itself: API clients, OAuth2 tokens, suite health, merged docs.

Everything under the backends' prefixes is forwarded by `gateway.proxy` before routing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway import service
from gateway.dependencies import AdminClient, ContextDep
from gateway.schemas import ClientCreate, ClientCreated, ClientRead, KeyRotated, TokenResponse
from kit.db import SessionDep
from kit.errors import Unauthorized, problem_response
from kit.pagination import Page, PageParamsDep

router = APIRouter(prefix="/api/v1/admin", tags=["gateway"])
public = APIRouter(tags=["gateway"])


@router.post("/clients", status_code=201, summary="Create an API client and its first key")
async def create_client(
    body: ClientCreate,
    session: SessionDep,
    context: ContextDep,
    _: AdminClient,
    response: Response,
) -> ClientCreated:
    created = await service.create_client(
        session=session, data=body, default_rate_limit=context.settings.default_rate_limit
    )
    response.headers["Location"] = f"/api/v1/admin/clients/{created.id}"
    return created


@router.get("/clients", summary="List API clients")
async def list_clients(
    page: PageParamsDep, session: SessionDep, _: AdminClient
) -> Page[ClientRead]:
    return await service.list_clients(session=session, page=page)


@router.get("/clients/{client_id}", summary="One API client with its keys (never the keys)")
async def get_client(client_id: str, session: SessionDep, _: AdminClient) -> ClientRead:
    return await service.get_client(session=session, client_id=client_id)


@router.post("/clients/{client_id}/revoke", summary="Revoke a client and all its keys at once")
async def revoke_client(
    client_id: str, session: SessionDep, context: ContextDep, _: AdminClient
) -> ClientRead:
    revoked = await service.revoke_client(session=session, client_id=client_id)
    # Committed before the caches are dropped, so no request can re-cache the old state.
    await session.commit()
    await context.revocations.publish()
    return revoked


@router.post("/clients/{client_id}/rotate", summary="Issue a new key for a client")
async def rotate_key(
    client_id: str,
    session: SessionDep,
    context: ContextDep,
    _: AdminClient,
    keep_previous: Annotated[
        bool, Query(description="Keep the previous keys working (for a staged switch).")
    ] = False,
) -> KeyRotated:
    rotated = await service.rotate_key(
        session=session, client_id=client_id, keep_previous=keep_previous
    )
    await session.commit()
    await context.revocations.publish()
    return rotated


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _oauth_error(status: int, error: str, detail: str) -> JSONResponse:
    # RFC 6749 names the error in `error`; the problem members come alongside.
    return problem_response(
        status,
        detail=detail,
        slug=f"oauth-{error.replace('_', '-')}",
        headers={"WWW-Authenticate": 'Basic realm="qrp"'} if status == 401 else None,
        error=error,
    )


@public.post(
    "/oauth/token",
    summary="OAuth2 client credentials: an access token for a client id and one of its API keys",
    response_model=TokenResponse,
    responses={400: {"description": "invalid request"}, 401: {"description": "invalid client"}},
)
async def issue_token(
    request: Request,
    context: ContextDep,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> Any:
    if grant_type != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
        )
    basic = _basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        return _oauth_error(
            401, "invalid_client", "Send client_id and client_secret (an API key of the client)."
        )
    try:
        identity = await context.authenticator.by_api_key(client_secret)
    except Unauthorized:
        identity = None
    if identity is None or identity.client_id != client_id:
        return _oauth_error(401, "invalid_client", "The client credentials are not valid.")
    request.state.principal = identity
    requested = frozenset(scope.split()) if scope else identity.scopes
    if not requested <= identity.scopes:
        extra = " ".join(sorted(requested - identity.scopes))
        return _oauth_error(400, "invalid_scope", f"The client does not hold: {extra}.")
    token = context.authenticator.issue(identity, requested)
    return TokenResponse(
        access_token=token,
        expires_in=context.authenticator.ttl_seconds,
        scope=" ".join(sorted(requested)),
    )


async def _backend_health(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await client.get(url + "/health/ready")
    except httpx.HTTPError as exc:
        return {"status": "fail", "reason": f"{type(exc).__name__}: unreachable"}
    try:
        details = response.json()
    except ValueError:
        details = {}
    if response.status_code != 200:
        return {
            "status": "fail",
            "reason": f"ready check answered {response.status_code}",
            **details,
        }
    return {"status": "ok", "checks": details.get("checks", {})}


@public.get("/health", summary="Readiness of the gateway and of every backend")
async def suite_health(request: Request, context: ContextDep) -> JSONResponse:
    client: httpx.AsyncClient = request.app.state.service_client
    names = list(context.backends)
    results = await asyncio.gather(
        *(_backend_health(client, context.backends[name].base_url) for name in names)
    )
    backends = {}
    for name, result in zip(names, results, strict=True):
        backends[name] = {**result, "circuit": context.backends[name].breaker.state}
    gateway: dict[str, Any] = {"status": "ok"}
    for check_name, check in request.app.state.ready_checks.items():
        try:
            gateway[check_name] = {"status": "ok", **await check()}
        except Exception as exc:
            gateway["status"] = "fail"
            gateway[check_name] = {"status": "fail", "reason": type(exc).__name__}
    healthy = gateway["status"] == "ok" and all(b["status"] == "ok" for b in backends.values())
    body = {"status": "ok" if healthy else "degraded", "gateway": gateway, "backends": backends}
    return JSONResponse(body, status_code=200 if healthy else 503)


@public.get("/openapi.json", include_in_schema=False)
async def merged_openapi(request: Request) -> JSONResponse:
    return JSONResponse(await request.app.state.merged_spec.get())


@public.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title="Quality Revitalization Platform API"
    )
