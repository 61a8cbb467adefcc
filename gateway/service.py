"""Rules of API clients and keys (creation, revocation, rotation, key lookup), of token
requests, and of the suite's readiness."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import repository
from gateway.feed import FeedClient, decode_cursor, encode_cursor, merged_page, parse_types
from gateway.models import ApiClient, ApiKey
from gateway.routing import ALL_SCOPES, UNBOUND_SCOPES
from gateway.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    CloudEvent,
    EventFeedMeta,
    EventFeedRead,
    KeyRead,
    KeyRotationRead,
    NewClientRead,
)
from kit.errors import Conflict, FieldError, NotFound, ProblemError, ValidationFailed
from kit.health import ReadyCheck
from kit.identifiers import county_code_error, new_id
from kit.pagination import CursorCodec, Page, PageParams

if TYPE_CHECKING:
    from gateway.proxy import Backend

KEY_PREFIX = "qrp_"
BOOTSTRAP_CLIENT_ID = "bootstrap-admin"


@dataclass(frozen=True)
class Identity:
    """An authenticated client as the gateway needs it on every request."""

    client_id: str
    name: str
    scopes: frozenset[str]
    rate_limit: str
    county_codes: frozenset[str] = frozenset()
    """The counties the client is bound to; empty for a city-wide client."""


class OAuthRefusal(ProblemError):
    """A refused token request, its RFC 6749 error code (`invalid_client`, …) in `error`."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        self.status = status
        self.slug = f"oauth-{error.replace('_', '-')}"
        challenge = {"WWW-Authenticate": 'Basic realm="qrp"'} if status == 401 else None
        super().__init__(detail, headers=challenge, error=error)


def check_grant_type(grant_type: str) -> None:
    """Only client credentials are granted (RFC 6749 §4.4)."""
    if grant_type != "client_credentials":
        raise OAuthRefusal(
            400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
        )


def granted_scopes(identity: Identity, scope: str | None) -> frozenset[str]:
    """The scopes a token for `identity` carries: those asked for (all it holds by default),
    refused as `invalid_scope` when it asks for one it does not hold."""
    requested = frozenset(scope.split()) if scope else identity.scopes
    if not requested <= identity.scopes:
        extra = " ".join(sorted(requested - identity.scopes))
        raise OAuthRefusal(400, "invalid_scope", f"The client does not hold: {extra}.")
    return requested


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
        county_codes=client.county_codes.split(),
        rate_limit=client.rate_limit,
        status=client.status,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
        keys=[KeyRead.model_validate(key, from_attributes=True) for key in keys],
    )


def check_binding(
    *, scopes: Collection[str], county_codes: Collection[str], region_codes: Collection[str]
) -> None:
    """A binding names configured counties only (422 naming `county_codes`), and a bound
    client holds no scope reserved to city-wide clients (422 naming `scopes`)."""
    errors = [
        FieldError(f"county_codes[{index}]", error)
        for index, code in enumerate(county_codes)
        if (error := county_code_error(code, region_codes))
    ]
    reserved = sorted(UNBOUND_SCOPES & set(scopes))
    if county_codes and reserved:
        errors.append(
            FieldError(
                "scopes",
                f"a client bound to counties may not hold {', '.join(reserved)}",
            )
        )
    if errors:
        raise ValidationFailed(errors)


async def create_client(
    *,
    session: AsyncSession,
    data: ClientCreate,
    default_rate_limit: str,
    region_codes: Collection[str],
) -> NewClientRead:
    """A new active client with one key, returned in plain text this once."""
    check_binding(scopes=data.scopes, county_codes=data.county_codes, region_codes=region_codes)
    client = ApiClient(
        id=new_id(),
        name=data.name,
        scopes=" ".join(data.scopes),
        county_codes=" ".join(data.county_codes),
        rate_limit=data.rate_limit or default_rate_limit,
        created_at=_now(),
    )
    await repository.add_client(session=session, client=client)
    api_key = generate_key()
    key = await repository.add_key(session=session, key=_new_key(client.id, api_key))
    return NewClientRead(**_read(client, [key]).model_dump(), api_key=api_key)


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


async def update_client(
    *,
    session: AsyncSession,
    client_id: str,
    data: ClientUpdate,
    region_codes: Collection[str],
) -> ClientRead:
    """Change a client's name, scopes, rate limit or counties; the fields left out stay."""
    client = await _client_or_404(session=session, client_id=client_id)
    scopes = client.scopes.split() if data.scopes is None else data.scopes
    counties = client.county_codes.split() if data.county_codes is None else data.county_codes
    check_binding(scopes=scopes, county_codes=counties, region_codes=region_codes)
    if data.name is not None:
        client.name = data.name
    if data.rate_limit is not None:
        client.rate_limit = data.rate_limit
    client.scopes = " ".join(scopes)
    client.county_codes = " ".join(counties)
    await repository.flush(session=session)
    keys = await repository.keys_of(session=session, client_ids=[client.id])
    return _read(client, keys)


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


async def rotate_key(
    *, session: AsyncSession, client_id: str, keep_previous: bool
) -> KeyRotationRead:
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
    return KeyRotationRead(
        client_id=client.id, key_id=key.id, api_key=api_key, revoked_key_ids=revoked
    )


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
        county_codes=frozenset(client.county_codes.split()),
    )


async def ensure_bootstrap_admin(*, session: AsyncSession, api_key: str, rate_limit: str) -> None:
    """Give the all-scopes admin client the key `api_key` unless some client holds it; two
    replicas doing so at once collide on the key's digest (an `IntegrityError`)."""
    if await repository.find_by_key_hash(session=session, key_hash=hash_key(api_key)):
        return
    client = await repository.get_client(session=session, client_id=BOOTSTRAP_CLIENT_ID)
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
        client.county_codes = ""
        client.status = "active"
        client.revoked_at = None
    await repository.add_key(session=session, key=_new_key(client.id, api_key))


async def _client_or_404(*, session: AsyncSession, client_id: str) -> ApiClient:
    client = await repository.get_client(session=session, client_id=client_id)
    if client is None:
        raise NotFound(f"No API client with id {client_id!r}.")
    return client


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


async def suite_health(
    *,
    client: httpx.AsyncClient,
    backends: Mapping[str, Backend],
    ready_checks: Mapping[str, ReadyCheck],
) -> dict[str, Any]:
    """The gateway's own checks and every backend's `/health/ready` with its breaker state;
    `ok` only when all of them are."""
    names = list(backends)
    results = await asyncio.gather(
        *(_backend_health(client, backends[name].base_url) for name in names)
    )
    answers = {
        name: {**result, "circuit": backends[name].breaker.state}
        for name, result in zip(names, results, strict=True)
    }
    gateway: dict[str, Any] = {"status": "ok"}
    for check_name, check in ready_checks.items():
        try:
            gateway[check_name] = {"status": "ok", **await check()}
        except Exception as exc:
            gateway["status"] = "fail"
            gateway[check_name] = {"status": "fail", "reason": type(exc).__name__}
    healthy = gateway["status"] == "ok" and all(b["status"] == "ok" for b in answers.values())
    return {"status": "ok" if healthy else "degraded", "gateway": gateway, "backends": answers}


async def event_page(
    *,
    feed: FeedClient,
    identity: Identity,
    codec: CursorCodec,
    after: str | None,
    types: str | None,
    limit: int,
    token_for: Callable[[str], str],
) -> EventFeedRead:
    """One page of the merged change feed after the cursor `after`, for `identity`."""
    positions = decode_cursor(codec, after)
    wanted = parse_types(types)
    items, moved, complete = await merged_page(
        feed,
        positions=positions,
        types=wanted,
        scopes=identity.scopes,
        limit=limit,
        token_for=token_for,
        from_start=after is None or not after.strip(),
    )
    return EventFeedRead(
        items=[CloudEvent.model_validate(item) for item in items],
        next=encode_cursor(codec, moved),
        meta=EventFeedMeta(completeness=complete),
    )
