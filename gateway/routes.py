"""HTTP routes of the gateway itself: API clients, OAuth2 tokens, suite health, merged docs.

Everything under the backends' prefixes is forwarded by `gateway.proxy` before routing.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from gateway import service
from gateway.dependencies import (
    AdminClient,
    ContextDep,
    EventsReader,
    FeedDep,
    RevokingSessionDep,
    client_address,
)
from gateway.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    EventFeedRead,
    KeyRotationRead,
    NewClientRead,
    TokenRead,
)
from gateway.service import OAuthRefusal
from kit.db import SessionDep
from kit.docs import VIEWER_DOCUMENT_URL, swagger_ui_page, viewer_document
from kit.errors import PROBLEM_MEDIA_TYPE, problem_response
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
) -> NewClientRead:
    created = await service.create_client(
        session=session,
        data=body,
        default_rate_limit=context.settings.default_rate_limit,
        region_codes=context.region_codes,
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


@router.patch(
    "/clients/{client_id}",
    summary="Change a client's name, scopes, rate limit or counties (its next request sees it)",
)
async def update_client(
    client_id: str,
    body: ClientUpdate,
    session: RevokingSessionDep,
    context: ContextDep,
    _: AdminClient,
) -> ClientRead:
    return await service.update_client(
        session=session, client_id=client_id, data=body, region_codes=context.region_codes
    )


@router.post("/clients/{client_id}/revoke", summary="Revoke a client and all its keys at once")
async def revoke_client(client_id: str, session: RevokingSessionDep, _: AdminClient) -> ClientRead:
    return await service.revoke_client(session=session, client_id=client_id)


@router.post("/clients/{client_id}/rotate", summary="Issue a new key for a client")
async def rotate_key(
    client_id: str,
    session: RevokingSessionDep,
    _: AdminClient,
    keep_previous: Annotated[
        bool, Query(description="Keep the previous keys working (for a staged switch).")
    ] = False,
) -> KeyRotationRead:
    return await service.rotate_key(
        session=session, client_id=client_id, keep_previous=keep_previous
    )


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _refused(refusal: OAuthRefusal) -> JSONResponse:
    # RFC 6749 names the error in `error`; the problem members come alongside.
    return problem_response(
        refusal.status,
        detail=refusal.detail,
        title=refusal.title,
        slug=refusal.slug,
        headers=refusal.headers or None,
        **refusal.extra,
    )


@public.post(
    "/oauth/token",
    summary="OAuth2 client credentials: an access token for a client id and one of its API keys",
    response_model=TokenRead,
    responses={
        400: _problem("invalid request: the grant type or a scope (`error` names which)"),
        401: _problem("invalid client: unknown id, or a secret that is not one of its keys"),
        429: _problem("too many failed attempts from the address or for the client id"),
    },
)
async def issue_token(
    request: Request,
    context: ContextDep,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> Any:
    basic = _basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        client_id, client_secret = basic
    try:
        service.check_grant_type(grant_type)
        identity = await context.authenticator.by_client_credentials(
            client_id, client_secret, address=client_address(request)
        )
        request.state.principal = identity
        scopes = service.granted_scopes(identity, scope)
    except OAuthRefusal as refusal:
        return _refused(refusal)
    return TokenRead(
        access_token=context.authenticator.issue(identity, scopes),
        expires_in=context.authenticator.ttl_seconds,
        scope=" ".join(sorted(scopes)),
    )


@public.get("/health", summary="Readiness of the gateway and of every backend")
async def suite_health(request: Request, context: ContextDep) -> JSONResponse:
    body = await service.suite_health(
        client=request.app.state.service_client,
        backends=context.backends,
        ready_checks=request.app.state.ready_checks,
    )
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@public.get("/openapi.json", include_in_schema=False)
async def merged_openapi(request: Request) -> JSONResponse:
    return JSONResponse(await request.app.state.merged_spec.get())


@public.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    # Swagger UI's assets come from the gateway itself (`/docs/static`, kept from the kit's
    # docs routes), so the page works on a network without internet access.
    return swagger_ui_page(
        openapi_url=VIEWER_DOCUMENT_URL, title="Quality Revitalization Platform API"
    )


@public.get(VIEWER_DOCUMENT_URL, include_in_schema=False)
async def docs_document(request: Request) -> JSONResponse:
    """The merged document in OpenAPI 3.0 terms, for the Swagger UI the gateway serves."""
    return JSONResponse(viewer_document(await request.app.state.merged_spec.get()))


FEED_DESCRIPTION = """Every change the caller may read, merged from the data services' own feeds.

Each event is a CloudEvent (1.0, JSON format) with the `sequence` extension: its position in
the feed of the service that emitted it (`source`). Events are filtered by the caller's read
scopes (`brand.*` needs `brands:read`, `certificate.*` `certificates:read`, `spot_check.*`
`spot-checks:read`, `reported_value.*` and `assessment_run.*` `assessments:read`) and, for a
client bound to counties without `city:read`, by its counties (events of no county are shown).

**Cursor.** `next` is an opaque cursor holding one position per service; send it back as
`after` to get the events that follow. A position moves only past the events this page
returned, so a reader that stores the last `next` and resumes from it sees every event once,
never skipping or repeating one, also across restarts of a service. Within one service events
come in the order of its sequence; the services' events are interleaved by `time`. A page with
no events gives back the same cursor. A cursor stays valid whatever the `type` filter. Without
`after` the feed starts at the oldest event kept (events are kept for a configured period).

**Completeness.** `meta.completeness` says `ok` for every service that answered, or why its
events are missing from this page (a timeout, an unreachable service): its position in `next`
is then where it was, so its events come in a later page. A cursor whose events a service no
longer keeps is a 410 problem naming `after`; a cursor this gateway did not issue is a 422."""


@public.get(
    "/api/v1/events",
    summary="The change feed: CloudEvents of every service, resumable from a cursor",
    description=FEED_DESCRIPTION,
    tags=["gateway"],
    responses={
        410: _problem("the services no longer keep the events after this cursor"),
        422: _problem("`after`, `type` or `limit` is invalid"),
    },
)
async def event_feed(
    request: Request,
    identity: EventsReader,
    feed: FeedDep,
    context: ContextDep,
    after: Annotated[
        str | None,
        Query(
            max_length=2048, description="The `next` of the previous page; none: from the start."
        ),
    ] = None,
    type: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Event types, comma-separated; an entry `prefix.*` takes every type "
            "of that prefix (e.g. `brand.*,certificate.status_changed`).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events.")] = 100,
) -> EventFeedRead:
    return await service.event_page(
        feed=feed,
        identity=identity,
        codec=request.app.state.cursor_codec,
        after=after,
        types=type,
        limit=limit,
        token_for=lambda backend: context.service_tokens.for_backend(backend, identity),
    )
