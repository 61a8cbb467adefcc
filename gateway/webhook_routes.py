"""HTTP routes of webhook subscriptions: the same set for an administrator (every client's
subscriptions, at `/api/v1/admin/webhooks`) and for a client managing its own (scope
`webhooks:manage`, at `/api/v1/webhooks`).

The handlers are built per router from one factory, so this module keeps its annotations
evaluated (no `from __future__ import annotations`): FastAPI reads the local aliases.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response

from gateway import webhooks
from gateway.dependencies import (
    ContextDep,
    WebhookCaller,
    WorkerDep,
    admin_webhook_caller,
    own_webhook_caller,
)
from gateway.models import WebhookSubscription
from gateway.schemas import (
    AdminWebhookCreate,
    DeadLetterRead,
    DeliveryAttemptRead,
    NewWebhookRead,
    ReplayRead,
    SecretRotationRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from kit.concurrency import IfMatch, make_etag
from kit.db import SessionDep
from kit.pagination import Page, PageParamsDep

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried create with the same key answers the first subscription (its "
        "secret too) instead of making another; the same key with another body is a 422.",
    ),
]


def _subscription_dependency(
    caller_dependency: Callable[..., Coroutine[Any, Any, WebhookCaller]],
) -> Callable[..., Coroutine[Any, Any, WebhookSubscription]]:
    async def dependency(
        subscription_id: str,
        session: SessionDep,
        caller: Annotated[WebhookCaller, Depends(caller_dependency)],
    ) -> WebhookSubscription:
        return await webhooks.subscription_of(
            session=session,
            subscription_id=subscription_id,
            owner_client_id=caller.owner_client_id,
        )

    return dependency


def webhook_router(prefix: str, *, admin: bool) -> APIRouter:
    """The subscription routes, for an administrator (every client's subscriptions, made for
    any client) or for a client managing its own."""
    caller_dependency = admin_webhook_caller if admin else own_webhook_caller
    Caller = Annotated[WebhookCaller, Depends(caller_dependency)]  # noqa: N806
    find_subscription = _subscription_dependency(caller_dependency)
    Subscription = Annotated[WebhookSubscription, Depends(find_subscription)]  # noqa: N806
    whose = "any client's" if admin else "the calling client's own"
    routes = APIRouter(prefix=prefix, tags=["gateway"])

    def located(response: Response, subscription: WebhookRead) -> None:
        response.headers["Location"] = f"{prefix}/{subscription.id}"

    if admin:

        @routes.post("", status_code=201, summary="Create a webhook subscription for any client")
        async def create_webhook_for(
            body: AdminWebhookCreate,
            session: SessionDep,
            caller: Caller,
            context: ContextDep,
            response: Response,
            idempotency_key: IdempotencyKey = None,
        ) -> NewWebhookRead:
            created = await webhooks.create_for_admin(
                session=session,
                data=body,
                caller=caller.identity,
                allowed_hosts=context.settings.webhook_allowed_hosts,
                region_codes=context.region_codes,
                idempotency_key=idempotency_key,
            )
            located(response, created)
            response.headers["ETag"] = make_etag(created.id, 1)
            return created

    else:

        @routes.post("", status_code=201, summary="Create a webhook subscription of the caller")
        async def create_webhook(
            body: WebhookCreate,
            session: SessionDep,
            caller: Caller,
            context: ContextDep,
            response: Response,
            idempotency_key: IdempotencyKey = None,
        ) -> NewWebhookRead:
            created = await webhooks.create_subscription(
                session=session,
                data=body,
                owner=caller.identity,
                allowed_hosts=context.settings.webhook_allowed_hosts,
                region_codes=context.region_codes,
                idempotency_key=idempotency_key,
            )
            located(response, created)
            response.headers["ETag"] = make_etag(created.id, 1)
            return created

    @routes.get("", summary=f"List {whose} webhook subscriptions")
    async def list_webhooks(
        page: PageParamsDep,
        session: SessionDep,
        caller: Caller,
        owner_client_id: Annotated[
            str | None,
            Query(
                max_length=64,
                description="Only this client's subscriptions (an administrator's filter; a "
                "client sees only its own anyway).",
            ),
        ] = None,
    ) -> Page[WebhookRead]:
        owner = caller.owner_client_id or owner_client_id
        if caller.owner_client_id is not None and owner_client_id not in {None, owner}:
            return Page[WebhookRead](items=[])
        return await webhooks.list_subscriptions(session=session, page=page, owner_client_id=owner)

    @routes.get("/{subscription_id}", summary="One webhook subscription (never its secret)")
    async def get_webhook(subscription: Subscription, response: Response) -> WebhookRead:
        response.headers["ETag"] = webhooks.etag(subscription)
        return webhooks.to_read(subscription)

    @routes.patch(
        "/{subscription_id}",
        summary="Change a subscription's URL, event types, counties, description or `active`",
    )
    async def update_webhook(
        body: WebhookUpdate,
        subscription: Subscription,
        session: SessionDep,
        context: ContextDep,
        response: Response,
        if_match: IfMatch = None,
    ) -> WebhookRead:
        changed = await webhooks.update_subscription(
            session=session,
            subscription=subscription,
            data=body,
            if_match=if_match,
            allowed_hosts=context.settings.webhook_allowed_hosts,
            region_codes=context.region_codes,
        )
        response.headers["ETag"] = webhooks.etag(changed)
        return webhooks.to_read(changed)

    @routes.delete(
        "/{subscription_id}",
        status_code=204,
        summary="Delete a subscription with its pending deliveries and its log",
    )
    async def delete_webhook(subscription: Subscription, session: SessionDep) -> Response:
        await webhooks.delete_subscription(session=session, subscription=subscription)
        return Response(status_code=204)

    @routes.post(
        "/{subscription_id}/rotate-secret",
        summary="A new signing secret, shown once; the previous one keeps signing beside it "
        "for the overlap period",
    )
    async def rotate_webhook_secret(
        subscription: Subscription,
        session: SessionDep,
        context: ContextDep,
        response: Response,
        overlap_seconds: Annotated[
            float | None,
            Query(
                ge=0,
                le=30 * 86400,
                description="How long the previous secret keeps signing (default: the "
                "gateway's GATEWAY_WEBHOOK_SECRET_OVERLAP_SECONDS, 24 h); 0: not at all.",
            ),
        ] = None,
    ) -> SecretRotationRead:
        overlap = (
            context.settings.webhook_secret_overlap_seconds
            if overlap_seconds is None
            else overlap_seconds
        )
        rotated = await webhooks.rotate_secret(
            session=session, subscription=subscription, overlap_seconds=overlap
        )
        response.headers["ETag"] = webhooks.etag(subscription)
        return rotated

    @routes.get(
        "/{subscription_id}/deliveries",
        summary="The delivery log: every attempt, newest first",
    )
    async def list_webhook_deliveries(
        subscription: Subscription, session: SessionDep, page: PageParamsDep
    ) -> Page[DeliveryAttemptRead]:
        return await webhooks.list_attempts(session=session, subscription=subscription, page=page)

    @routes.get(
        "/{subscription_id}/dead-letters",
        summary="Deliveries given up after the retry period",
    )
    async def list_webhook_dead_letters(
        subscription: Subscription, session: SessionDep, page: PageParamsDep
    ) -> Page[DeadLetterRead]:
        return await webhooks.list_dead_letters(
            session=session, subscription=subscription, page=page
        )

    @routes.post(
        "/{subscription_id}/dead-letters/replay",
        summary="Put every dead letter back in line, with a new retry period",
    )
    async def replay_webhook_dead_letters(
        subscription: Subscription, session: SessionDep, worker: WorkerDep
    ) -> ReplayRead:
        return await webhooks.replay(session=session, subscription=subscription, now=worker.clock())

    @routes.post(
        "/{subscription_id}/dead-letters/{delivery_id}/replay",
        summary="Put one dead letter back in line, with a new retry period",
    )
    async def replay_webhook_dead_letter(
        delivery_id: str, subscription: Subscription, session: SessionDep, worker: WorkerDep
    ) -> ReplayRead:
        return await webhooks.replay(
            session=session, subscription=subscription, now=worker.clock(), delivery_id=delivery_id
        )

    return routes


admin_webhooks = webhook_router("/api/v1/admin/webhooks", admin=True)
own_webhooks = webhook_router("/api/v1/webhooks", admin=False)
