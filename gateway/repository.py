"""Every query of the gateway: API clients and their hashed keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import ApiClient, ApiKey
from kit.pagination import Page, PageParams, paginate


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
