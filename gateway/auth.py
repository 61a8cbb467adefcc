"""Who is calling the gateway: API keys, OAuth2 client-credential tokens, and the short-lived
service tokens the gateway mints for the backends in their place."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import service
from gateway.service import Identity
from kit.auth import ALGORITHM, TokenMinter, parse_bearer, write_keypair
from kit.errors import Unauthorized

ANONYMOUS = Identity(client_id="anonymous", name="Anonymous", scopes=frozenset(), rate_limit="")
_MAX_CACHED = 10_000


class TtlCache:
    """A small time-bounded cache: lookups within `seconds` of a miss reuse its answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = await load()
        self.put(key, value, now=now)
        return value

    def peek(self, key: str) -> Any:
        """The value cached for `key` if it is still fresh, else None (also for a cached None)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, key: str, value: Any, *, now: float | None = None) -> None:
        if self.seconds > 0:
            if len(self._entries) >= _MAX_CACHED:
                self._entries.clear()
            self._entries[key] = ((time.monotonic() if now is None else now) + self.seconds, value)

    def clear(self) -> None:
        self._entries.clear()


def load_signing_key(path: Path) -> bytes:
    """The private key at `path`, created with its public half when absent."""
    if not path.exists():
        write_keypair(path.parent, path.stem)
    return path.read_bytes()


class Authenticator:
    """Resolves credentials to an active client, with a short cache in front of the database."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache_seconds: float,
        oauth_private_pem: bytes,
        oauth_issuer: str,
        oauth_audience: str,
        oauth_ttl_seconds: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._keys = TtlCache(cache_seconds)
        self._clients = TtlCache(cache_seconds)
        # Access tokens already verified: the caller and when the token expires.
        self._bearers = TtlCache(cache_seconds)
        self._private_key = serialization.load_pem_private_key(oauth_private_pem, password=None)
        self._public_key = self._private_key.public_key()
        self.issuer = oauth_issuer
        self.audience = oauth_audience
        self.ttl_seconds = oauth_ttl_seconds

    def forget(self) -> None:
        """Drop cached answers at once (after a revocation or a rotation)."""
        self._keys.clear()
        self._clients.clear()
        self._bearers.clear()

    def known(self, api_key: str | None, authorization: str | None) -> Identity | None:
        """The caller of credentials accepted within the cache period, found without any
        I/O; None when they have to be checked (`from_headers` does that, and raises 401
        for credentials refused before)."""
        if api_key:
            identity: Identity | None = self._keys.peek(service.hash_key(api_key))
            return identity
        token = parse_bearer(authorization)
        return self._verified_bearer(token) if token else None

    def _verified_bearer(self, token: str) -> Identity | None:
        entry: tuple[float, Identity] | None = self._bearers.peek(token)
        if entry is not None and entry[0] > time.time():
            return entry[1]
        return None

    async def by_api_key(self, api_key: str) -> Identity:
        async def load() -> Identity | None:
            async with self._sessionmaker() as session:
                return await service.identify_key(session=session, api_key=api_key)

        identity: Identity | None = await self._keys.get(service.hash_key(api_key), load)
        if identity is None:
            raise Unauthorized("The API key is unknown or has been revoked.", headers=_challenge())
        return identity

    async def by_client_id(self, client_id: str) -> Identity | None:
        async def load() -> Identity | None:
            async with self._sessionmaker() as session:
                return await service.identify_client(session=session, client_id=client_id)

        identity: Identity | None = await self._clients.get(client_id, load)
        return identity

    async def by_bearer(self, token: str) -> Identity:
        """The client of an access token from `/oauth/token`, if it is still active."""
        verified = self._verified_bearer(token)
        if verified is not None:
            return verified
        try:
            claims = jwt.decode(
                token,
                self._public_key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.", headers=_challenge()) from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                "The access token is meant for another audience.", headers=_challenge()
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(
                "The access token comes from an unknown issuer.", headers=_challenge()
            ) from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.", headers=_challenge()) from None
        identity = await self.by_client_id(str(claims["sub"]))
        if identity is None:
            raise Unauthorized("The client of this token has been revoked.", headers=_challenge())
        granted = frozenset(str(claims.get("scope", "")).split())
        caller = Identity(
            client_id=identity.client_id,
            name=identity.name,
            scopes=granted & identity.scopes,
            rate_limit=identity.rate_limit,
        )
        self._bearers.put(token, (float(claims["exp"]), caller))
        return caller

    async def from_headers(self, api_key: str | None, authorization: str | None) -> Identity:
        """The caller named by `X-API-Key` or `Authorization: Bearer`; 401 otherwise."""
        if api_key:
            return await self.by_api_key(api_key)
        token = parse_bearer(authorization)
        if token:
            return await self.by_bearer(token)
        raise Unauthorized(
            "Send an API key in X-API-Key or an access token in Authorization: Bearer.",
            headers=_challenge(),
        )

    def issue(self, identity: Identity, scopes: frozenset[str]) -> str:
        """An access token for `identity` carrying `scopes`."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": identity.client_id,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM)  # type: ignore[arg-type]


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="qrp", ApiKey header="X-API-Key"'}


class ServiceTokens:
    """Service tokens for the backends, reused for half their lifetime per client and backend.

    A token carries only the client's scopes on the backend's own resources (`brands:…` for the
    brand registry, and so on): a backend learns nothing of the rest, and a token taken from
    one backend is worth nothing at another (the audience already sees to that).
    """

    def __init__(self, minter: TokenMinter, resources: dict[str, frozenset[str]]) -> None:
        self._minter = minter
        self._resources = resources
        self._reuse_seconds = minter.ttl_seconds / 2
        self._cache: dict[tuple[str, str, frozenset[str]], tuple[float, str]] = {}

    def for_backend(self, backend: str, identity: Identity) -> str:
        key = (backend, identity.client_id, identity.scopes)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        resources = self._resources.get(backend, frozenset())
        token = self._minter.mint(
            audience=backend,
            client_id=identity.client_id,
            client_name=identity.name,
            scopes={scope for scope in identity.scopes if scope.split(":")[0] in resources},
        )
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now + self._reuse_seconds, token)
        return token
