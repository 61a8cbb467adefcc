"""Every query of the gateway: API clients and their hashed keys, webhook subscriptions,
their deliveries and delivery log, and the dispatcher's positions in the change feeds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import (
    ApiClient,
    ApiKey,
    EventCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from kit.errors import Conflict
from kit.pagination import Page, PageParams, paginate

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


async def add_client(*, session: AsyncSession, client: ApiClient) -> ApiClient:
    session.add(client)
    await session.flush()
    return client


async def add_key(*, session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def flush(*, session: AsyncSession) -> None:
    await session.flush()


async def get_client(*, session: AsyncSession, client_id: str) -> ApiClient | None:
    return await session.get(ApiClient, client_id)


async def list_clients(*, session: AsyncSession, page: PageParams) -> Page[ApiClient]:
    """One page of clients in the order of their ids."""
    return await paginate(session, select(ApiClient), params=page, keys=[col(ApiClient.id)])


async def keys_of(*, session: AsyncSession, client_ids: Sequence[str]) -> Sequence[ApiKey]:
    if not client_ids:
        return []
    query = (
        select(ApiKey)
        .where(col(ApiKey.client_id).in_(client_ids))
        .order_by(col(ApiKey.client_id), col(ApiKey.created_at), col(ApiKey.id))
    )
    return (await session.execute(query)).scalars().all()


async def find_by_key_hash(
    *, session: AsyncSession, key_hash: str
) -> tuple[ApiClient, ApiKey] | None:
    """The client holding the key with this digest, whatever the states of both."""
    query = (
        select(ApiClient, ApiKey)
        .join(ApiKey, col(ApiKey.client_id) == col(ApiClient.id))
        .where(col(ApiKey.key_hash) == key_hash)
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def revoke_keys(
    *, session: AsyncSession, client_id: str, at: datetime, except_key_id: str | None = None
) -> list[str]:
    """Revoke every live key of a client (but one), returning the ids revoked."""
    query = select(col(ApiKey.id)).where(
        col(ApiKey.client_id) == client_id, col(ApiKey.revoked_at).is_(None)
    )
    if except_key_id is not None:
        query = query.where(col(ApiKey.id) != except_key_id)
    ids = list((await session.execute(query)).scalars().all())
    if ids:
        await session.execute(update(ApiKey).where(col(ApiKey.id).in_(ids)).values(revoked_at=at))
    await session.flush()
    return ids


def _postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert_ignoring_duplicates(session: AsyncSession, table: Any) -> Any:
    """An INSERT that skips rows colliding with a unique key (PostgreSQL or SQLite)."""
    dialect = postgresql if _postgresql(session) else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


async def add_subscription(
    *, session: AsyncSession, subscription: WebhookSubscription
) -> WebhookSubscription:
    """A new subscription; a concurrent create with the same owner and `Idempotency-Key`
    is a 409."""
    session.add(subscription)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            field="Idempotency-Key",
        ) from None
    return subscription


async def subscription_by_idempotency_key(
    *, session: AsyncSession, owner_client_id: str, key: str
) -> WebhookSubscription | None:
    query = select(WebhookSubscription).where(
        col(WebhookSubscription.owner_client_id) == owner_client_id,
        col(WebhookSubscription.idempotency_key) == key,
    )
    return (await session.execute(query)).scalars().first()


async def get_subscription(
    *, session: AsyncSession, subscription_id: str
) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, subscription_id)


async def list_subscriptions(
    *, session: AsyncSession, page: PageParams, owner_client_id: str | None
) -> Page[WebhookSubscription]:
    """One page of subscriptions (of one owner, when given) in the order of their ids."""
    query = select(WebhookSubscription)
    if owner_client_id is not None:
        query = query.where(col(WebhookSubscription.owner_client_id) == owner_client_id)
    return await paginate(session, query, params=page, keys=[col(WebhookSubscription.id)])


async def delete_subscription(*, session: AsyncSession, subscription_id: str) -> None:
    """A subscription with its deliveries and their log."""
    for table, column in (
        (WebhookAttempt, WebhookAttempt.subscription_id),
        (WebhookDelivery, WebhookDelivery.subscription_id),
        (WebhookSubscription, WebhookSubscription.id),
    ):
        await session.execute(delete(table).where(col(column) == subscription_id))
    await session.flush()


async def active_subscriptions(
    *, session: AsyncSession
) -> list[tuple[WebhookSubscription, ApiClient]]:
    """Every active subscription whose owner is an active client, with the owner."""
    query = (
        select(WebhookSubscription, ApiClient)
        .join(ApiClient, col(ApiClient.id) == col(WebhookSubscription.owner_client_id))
        .where(col(WebhookSubscription.status) == "active", col(ApiClient.status) == "active")
        .order_by(col(WebhookSubscription.id))
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def locked_cursor(*, session: AsyncSession, backend: str, now: datetime) -> int:
    """The dispatcher's position in a backend's feed, its row locked until the transaction
    ends (PostgreSQL), so that another replica reading the same feed waits for it."""
    await session.execute(
        _insert_ignoring_duplicates(session, EventCursor).values(
            backend=backend, position=0, updated_at=now
        )
    )
    query = select(col(EventCursor.position)).where(col(EventCursor.backend) == backend)
    if _postgresql(session):
        query = query.with_for_update()
    return int((await session.execute(query)).scalar_one())


async def move_cursor(*, session: AsyncSession, backend: str, position: int, now: datetime) -> None:
    await session.execute(
        update(EventCursor)
        .where(col(EventCursor.backend) == backend)
        .values(position=position, updated_at=now)
    )


async def cursors(*, session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(col(EventCursor.backend), col(EventCursor.position)))
    return {backend: int(position) for backend, position in rows.all()}


async def add_deliveries(*, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Deliveries owed, skipping any already owed for the same event and subscription."""
    if rows:
        await session.execute(_insert_ignoring_duplicates(session, WebhookDelivery), rows)


async def claim_due_deliveries(
    *, session: AsyncSession, now: datetime, lease_until: datetime, limit: int, claim: str
) -> list[WebhookDelivery]:
    """Pending deliveries of active subscriptions whose time has come and which no live
    lease holds, leased to the caller under `claim`; rows another sender has locked are
    skipped (PostgreSQL), and a row another sender leased first is not taken (any database)."""
    free = (col(WebhookDelivery.lease_until).is_(None)) | (col(WebhookDelivery.lease_until) < now)
    conditions = (
        col(WebhookDelivery.state) == PENDING,
        col(WebhookDelivery.next_attempt_at) <= now,
        free,
    )
    query = (
        select(col(WebhookDelivery.id))
        .where(
            *conditions,
            col(WebhookDelivery.subscription_id).in_(
                select(col(WebhookSubscription.id)).where(
                    col(WebhookSubscription.status) == "active"
                )
            ),
        )
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
        .limit(limit)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True)
    ids = list((await session.execute(query)).scalars())
    if not ids:
        return []
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(ids), *conditions)
        .values(lease_until=lease_until, claim=claim)
    )
    claimed = select(WebhookDelivery).where(col(WebhookDelivery.claim) == claim)
    return list((await session.execute(claimed)).scalars())


async def record_attempt(
    *, session: AsyncSession, attempt: WebhookAttempt, changes: dict[str, Any]
) -> None:
    """One attempt in the log, and its delivery's new state; the lease let go."""
    session.add(attempt)
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == attempt.delivery_id)
        .values(lease_until=None, claim=None, **changes)
    )
    await session.flush()


async def list_attempts(
    *, session: AsyncSession, subscription_id: str, page: PageParams
) -> Page[WebhookAttempt]:
    """A subscription's delivery log, newest first."""
    query = select(WebhookAttempt).where(col(WebhookAttempt.subscription_id) == subscription_id)
    return await paginate(
        session,
        query,
        params=page,
        keys=[col(WebhookAttempt.at), col(WebhookAttempt.id)],
        descending=True,
    )


async def list_dead(
    *, session: AsyncSession, subscription_id: str, page: PageParams
) -> Page[WebhookDelivery]:
    query = select(WebhookDelivery).where(
        col(WebhookDelivery.subscription_id) == subscription_id,
        col(WebhookDelivery.state) == DEAD,
    )
    return await paginate(session, query, params=page, keys=[col(WebhookDelivery.id)])


async def get_delivery(*, session: AsyncSession, delivery_id: str) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


async def replay_dead(
    *, session: AsyncSession, subscription_id: str, now: datetime, delivery_id: str | None = None
) -> int:
    """Put dead deliveries (one, or all of a subscription) back in line with a new retry
    period; the number replayed."""
    query = update(WebhookDelivery).where(
        col(WebhookDelivery.subscription_id) == subscription_id,
        col(WebhookDelivery.state) == DEAD,
    )
    if delivery_id is not None:
        query = query.where(col(WebhookDelivery.id) == delivery_id)
    result = await session.execute(
        query.values(
            state=PENDING,
            next_attempt_at=now,
            retry_since=now,
            lease_until=None,
            claim=None,
            finished_at=None,
        )
    )
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


async def delivery_counts(*, session: AsyncSession) -> dict[str, int]:
    """Deliveries by state."""
    query = select(col(WebhookDelivery.state), func.count()).group_by(col(WebhookDelivery.state))
    return {state: int(count) for state, count in (await session.execute(query)).all()}
