"""Dependencies of the gateway's own routes."""

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.delivery import WebhookWorker
from gateway.feed import FeedClient
from gateway.proxy import ProxyContext, RateLimited
from gateway.routing import EVENTS_SCOPE, WEBHOOKS_SCOPE
from gateway.service import Identity
from kit.db import get_session
from kit.errors import Forbidden


def client_address(request: Request) -> str:
    """The caller's address as the server gives it (a trusted proxy's forwarded one)."""
    return request.client.host if request.client else "unknown"


def proxy_context(request: Request) -> ProxyContext:
    context: ProxyContext = request.app.state.proxy
    return context


ContextDep = Annotated[ProxyContext, Depends(proxy_context)]

_request_session = asynccontextmanager(get_session)


async def revoking_session(request: Request, context: ContextDep) -> AsyncIterator[AsyncSession]:
    """The request's session for a change to credentials: committed (or rolled back) as every
    request's is, and only then every replica told to drop its cached credentials, so no
    request can cache the old state again."""
    async with _request_session(request) as session:
        yield session
    await context.revocations.publish()


RevokingSessionDep = Annotated[AsyncSession, Depends(revoking_session, scope="function")]


async def current_client(request: Request, context: ContextDep) -> Identity:
    """The calling client, by API key or access token; 401 otherwise."""
    identity = await context.authenticator.from_headers(
        request.headers.get("x-api-key"),
        request.headers.get("authorization"),
        address=client_address(request),
    )
    request.state.principal = identity
    return identity


def require_client_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Identity]]:
    """Admit callers holding `scope` (403 otherwise)."""

    async def dependency(
        identity: Annotated[Identity, Depends(current_client)],
    ) -> Identity:
        if scope not in identity.scopes:
            raise Forbidden(f"This operation needs the scope {scope!r}.", required_scope=scope)
        return identity

    return dependency


AdminClient = Annotated[Identity, Depends(require_client_scope("admin"))]


def charged_client_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Identity]]:
    """Admit callers holding `scope` (403 otherwise) within their rate limit, charged as a
    forwarded request is (429 past it, `RateLimit-*` headers on the answer)."""

    async def dependency(
        identity: Annotated[Identity, Depends(require_client_scope(scope))],
        context: ContextDep,
        response: Response,
    ) -> Identity:
        decision = await context.limiter.hit(f"client:{identity.client_id}", identity.rate_limit)
        if decision is None:
            return identity
        headers = {name.decode(): value.decode() for name, value in decision.headers()}
        if not decision.allowed:
            refused = RateLimited(decision)
            refused.headers.update(headers)
            raise refused
        response.headers.update(headers)
        return identity

    return dependency


EventsReader = Annotated[Identity, Depends(charged_client_scope(EVENTS_SCOPE))]
WebhookManager = Annotated[Identity, Depends(charged_client_scope(WEBHOOKS_SCOPE))]


@dataclass(frozen=True)
class WebhookCaller:
    """Who manages webhooks, and whose subscriptions it sees (None: every client's)."""

    identity: Identity
    owner_client_id: str | None


async def admin_webhook_caller(identity: AdminClient) -> WebhookCaller:
    return WebhookCaller(identity, None)


async def own_webhook_caller(identity: WebhookManager) -> WebhookCaller:
    return WebhookCaller(identity, identity.client_id)


def webhook_worker(request: Request) -> WebhookWorker:
    worker: WebhookWorker = request.app.state.webhooks
    return worker


WorkerDep = Annotated[WebhookWorker, Depends(webhook_worker)]


def feed_client(request: Request) -> FeedClient:
    feed: FeedClient = request.app.state.feed
    return feed


FeedDep = Annotated[FeedClient, Depends(feed_client)]
