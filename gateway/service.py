"""Rules of API clients and keys: creation, revocation, rotation and key lookup."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import repository
from gateway.models import ApiClient, ApiKey
from gateway.routing import ALL_SCOPES
from gateway.schemas import ClientCreate, ClientCreated, ClientRead, KeyRead, KeyRotated
from kit.errors import Conflict, NotFound
from kit.identifiers import new_id
from kit.pagination import Page, PageParams

KEY_PREFIX = "qrp_"
BOOTSTRAP_CLIENT_ID = "bootstrap-admin"


@dataclass(frozen=True)
class Identity:
    """An authenticated client as the gateway needs it on every request."""

    client_id: str
    name: str
    scopes: frozenset[str]
    rate_limit: str


def hash_key(api_key: str) -> str:
    """The stored form of a key: keys are 256 random bits, so a plain digest suffices."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_key(client_id: str, api_key: str) -> ApiKey:
    return ApiKey(
        id=new_id(),
        client_id=client_id,
        key_hash=hash_key(api_key),
        key_prefix=api_key[:12],
        created_at=_now(),
    )


def _read(client: ApiClient, keys: Sequence[ApiKey]) -> ClientRead:
    return ClientRead(
        id=client.id,
        name=client.name,
        scopes=client.scopes.split(),
        rate_limit=client.rate_limit,
        status=client.status,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
        keys=[KeyRead.model_validate(key, from_attributes=True) for key in keys],
    )


async def create_client(
    *, session: AsyncSession, data: ClientCreate, default_rate_limit: str
) -> ClientCreated:
    """A new active client with one key, returned in plain text this once."""
    client = ApiClient(
        id=new_id(),
        name=data.name,
        scopes=" ".join(data.scopes),
        rate_limit=data.rate_limit or default_rate_limit,
        created_at=_now(),
    )
    await repository.add_client(session=session, client=client)
    api_key = generate_key()
    key = await repository.add_key(session=session, key=_new_key(client.id, api_key))
    return ClientCreated(**_read(client, [key]).model_dump(), api_key=api_key)


async def get_client(*, session: AsyncSession, client_id: str) -> ClientRead:
    client = await _client_or_404(session=session, client_id=client_id)
    keys = await repository.keys_of(session=session, client_ids=[client.id])
    return _read(client, keys)


async def list_clients(*, session: AsyncSession, page: PageParams) -> Page[ClientRead]:
    """One page of clients, each with its keys (never the keys themselves)."""
    clients = await repository.list_clients(session=session, page=page)
    ids = [client.id for client in clients.items]
    keys = await repository.keys_of(session=session, client_ids=ids)
    by_client: dict[str, list[ApiKey]] = {}
    for key in keys:
        by_client.setdefault(key.client_id, []).append(key)
    return clients.map(lambda client: _read(client, by_client.get(client.id, [])))


async def revoke_client(*, session: AsyncSession, client_id: str) -> ClientRead:
    """Stop a client and every key it holds."""
    client = await _client_or_404(session=session, client_id=client_id)
    now = _now()
    if client.status != "revoked":
        client.status = "revoked"
        client.revoked_at = now
    await repository.revoke_keys(session=session, client_id=client.id, at=now)
    keys = await repository.keys_of(session=session, client_ids=[client.id])
    return _read(client, keys)


async def rotate_key(*, session: AsyncSession, client_id: str, keep_previous: bool) -> KeyRotated:
    """Issue a new key; the previous keys stop working unless `keep_previous`."""
    client = await _client_or_404(session=session, client_id=client_id)
    if client.status != "active":
        raise Conflict(
            f"Client {client_id!r} is {client.status}; a revoked client gets no new key.",
            current_status=client.status,
        )
    api_key = generate_key()
    key = await repository.add_key(session=session, key=_new_key(client.id, api_key))
    revoked: list[str] = []
    if not keep_previous:
        revoked = await repository.revoke_keys(
            session=session, client_id=client.id, at=_now(), except_key_id=key.id
        )
    return KeyRotated(client_id=client.id, key_id=key.id, api_key=api_key, revoked_key_ids=revoked)


async def identify_key(*, session: AsyncSession, api_key: str) -> Identity | None:
    """The client an API key belongs to, if the key and the client are both live."""
    found = await repository.find_by_key_hash(session=session, key_hash=hash_key(api_key))
    if found is None:
        return None
    client, key = found
    if key.revoked_at is not None or client.status != "active":
        return None
    return identity_of(client)


async def identify_client(*, session: AsyncSession, client_id: str) -> Identity | None:
    """The client with this id if it is still active."""
    client = await repository.get_client(session=session, client_id=client_id)
    if client is None or client.status != "active":
        return None
    return identity_of(client)


def identity_of(client: ApiClient) -> Identity:
    return Identity(
        client_id=client.id,
        name=client.name,
        scopes=frozenset(client.scopes.split()),
        rate_limit=client.rate_limit,
    )


async def ensure_bootstrap_admin(
    *, sessionmaker: async_sessionmaker[AsyncSession], api_key: str, rate_limit: str
) -> None:
    """Create the all-scopes admin client for `api_key` unless it exists (safe on replicas)."""
    async with sessionmaker() as session:
        if await repository.find_by_key_hash(session=session, key_hash=hash_key(api_key)):
            return
        client = await repository.get_client(session=session, client_id=BOOTSTRAP_CLIENT_ID)
        try:
            if client is None:
                client = ApiClient(
                    id=BOOTSTRAP_CLIENT_ID,
                    name="Bootstrap administrator",
                    scopes=" ".join(ALL_SCOPES),
                    rate_limit=rate_limit,
                    created_at=_now(),
                )
                await repository.add_client(session=session, client=client)
            else:
                client.scopes = " ".join(ALL_SCOPES)
                client.status = "active"
                client.revoked_at = None
            await repository.add_key(session=session, key=_new_key(client.id, api_key))
            await session.commit()
        except IntegrityError:
            # Another replica bootstrapped the same key at the same moment.
            await session.rollback()


async def _client_or_404(*, session: AsyncSession, client_id: str) -> ApiClient:
    client = await repository.get_client(session=session, client_id=client_id)
    if client is None:
        raise NotFound(f"No API client with id {client_id!r}.")
    return client
