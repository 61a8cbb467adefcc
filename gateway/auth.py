"""Who is calling the gateway: API keys, OAuth2 client-credential tokens, and the short-lived
service tokens the gateway mints for the backends in their place."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Generic, TypeVar

import jwt
from cachetools import TTLCache
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import service
from gateway.ratelimit import Decision, RateLimiter
from gateway.routing import BROAD_SCOPES
from gateway.service import Identity, OAuthRefusal
from kit.auth import ALGORITHM, TokenMinter, parse_bearer, write_keypair
from kit.db import outage_log
from kit.errors import ProblemError, Unauthorized

ANONYMOUS = Identity(client_id="anonymous", name="Anonymous", scopes=frozenset(), rate_limit="")
_MAX_CACHED = 10_000
K = TypeVar("K")
V = TypeVar("V")


class Answers(Generic[K, V]):
    """Answers kept for `seconds`, at most `size` of them, the least recently used dropped
    first when full, and loaded once at a time per key.

    Requests that miss a key while its answer is being loaded wait for that load instead of
    each asking the database: without that, every expiry under load sent one lookup per
    request in flight, and past the session pool's size each opened a database connection of
    its own (measured with `bench/gateway_bench.py` on the brand list at c=16: 16 lookups and
    2.5 new connections a second, more PostgreSQL CPU than the brand list itself). A load runs
    as a task of its own, so a caller that goes away does not take the answer from the others
    waiting on it.
    """

    def __init__(self, seconds: float, *, size: int = _MAX_CACHED) -> None:
        self._kept: TTLCache[K, V, float] = TTLCache(maxsize=size, ttl=seconds)
        self._loading: dict[K, asyncio.Future[V]] = {}

    def fresh(self, key: K) -> V | None:
        """The answer kept for `key` if it is still fresh, else None (also for a kept None)."""
        try:
            return self._kept[key]
        except KeyError:
            return None

    def keep(self, key: K, value: V) -> None:
        self._kept[key] = value

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The fresh answer kept for `key`, else the one `load` gives, kept in turn; a load
        already under way for `key` is waited for rather than started again."""
        try:
            return self._kept[key]
        except KeyError:
            pass
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loading[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(task)

    def _loaded(self, key: K, task: asyncio.Future[V]) -> None:
        failed = task.cancelled() or task.exception() is not None
        # A load forgotten while it ran (`clear`) may have read what has changed since.
        if self._loading.get(key) is task:
            del self._loading[key]
            if not failed:
                self._kept[key] = task.result()

    def clear(self) -> None:
        """Forget every answer, and the loads under way: their answers are not kept."""
        self._kept.clear()
        self._loading.clear()


def load_signing_key(path: Path) -> bytes:
    """The private key at `path`, created with its public half when absent."""
    if not path.exists():
        write_keypair(path.parent, path.stem)
    return path.read_bytes()


class AuthMetrics:
    """Failed authentications by kind, and the attempts refused for too many of them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "gateway_auth_failures",
            "Failed authentications: an unknown or revoked API key (api_key), an invalid or "
            "expired access token (bearer), wrong client credentials at /oauth/token "
            "(client_secret)",
            ["kind"],
            registry=registry,
        )
        self.throttled = Counter(
            "gateway_auth_throttled",
            "Authentications refused with 429, before any lookup, after too many failures from "
            "the address (address) or for the client id (client_id)",
            ["by"],
            registry=registry,
        )


class AuthThrottled(ProblemError):
    status, slug = 429, "authentication-throttled"

    def __init__(self, decision: Decision, by: str) -> None:
        retry = max(decision.reset_seconds, 1)
        whose = "from this address" if by == "address" else "for this client id"
        super().__init__(
            f"Too many failed authentications {whose} ({decision.limit} per window); "
            f"retry in {retry} s.",
            title="Too Many Requests",
            headers={"Retry-After": str(retry)},
            throttled_by=by,
        )


class FailureThrottle:
    """Failed authentications counted per client address (the peer as the trusted proxies
    give it) and, for token requests, per client id, in the rate limiter's windows (shared
    through Redis when configured, per replica while it does not answer). Past a budget,
    an attempt is refused with 429 before its credentials are looked up. A success resets
    nothing: an address or a client id is free again only when its window ends."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_address: str,
        per_client: str,
        metrics: AuthMetrics | None = None,
    ) -> None:
        self._limiter = limiter
        self._per_address = per_address
        self._per_client = per_client
        self._metrics = metrics

    @staticmethod
    def _keys(address: str, client_id: str | None) -> list[tuple[str, str]]:
        keys = [("address", f"auth-failures:ip:{address}")]
        if client_id is not None:
            # Whatever its length, a client id sent by a caller names one short key.
            digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]
            keys.append(("client_id", f"auth-failures:client:{digest}"))
        return keys

    def _limit(self, by: str) -> str:
        return self._per_address if by == "address" else self._per_client

    async def check(self, address: str, client_id: str | None = None) -> None:
        """429 when the address (or the client id) has used up its failures."""
        for by, key in self._keys(address, client_id):
            decision = await self._limiter.peek(key, self._limit(by))
            if decision is not None and not decision.allowed:
                if self._metrics is not None:
                    self._metrics.throttled.labels(by).inc()
                raise AuthThrottled(decision, by)

    async def failed(self, kind: str, address: str, client_id: str | None = None) -> None:
        """Count one failed authentication of `kind`."""
        if self._metrics is not None:
            self._metrics.failures.labels(kind).inc()
        for by, key in self._keys(address, client_id):
            await self._limiter.hit(key, self._limit(by))


class Authenticator:
    """Resolves credentials to an active client, with a short cache in front of the database,
    and a throttle of failures in front of both."""

    def __init__(
        self,
        *,
        throttle: FailureThrottle | None = None,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache_seconds: float,
        oauth_private_pem: bytes,
        oauth_issuer: str,
        oauth_audience: str,
        oauth_ttl_seconds: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.throttle = throttle
        # A key's or a client's answer, None for one refused, so a retry is refused without I/O.
        self._keys: Answers[str, Identity | None] = Answers(cache_seconds)
        self._clients: Answers[str, Identity | None] = Answers(cache_seconds)
        # Access tokens already verified: the caller and when the token expires.
        self._bearers: Answers[str, tuple[float, Identity]] = Answers(cache_seconds)
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
            return self._keys.fresh(service.hash_key(api_key))
        token = parse_bearer(authorization)
        return self._verified_bearer(token) if token else None

    def _verified_bearer(self, token: str) -> Identity | None:
        entry = self._bearers.fresh(token)
        if entry is not None and entry[0] > time.time():
            return entry[1]
        return None

    async def _look_up(
        self, find: Callable[[AsyncSession], Awaitable[Identity | None]]
    ) -> Identity | None:
        """`find` on a session of its own; an answer means the database is back if it was
        unreachable (the error itself goes up to the caller, which answers 503)."""
        async with self._sessionmaker() as session:
            found = await find(session)
        outage_log.recovered()
        return found

    async def by_api_key(self, api_key: str) -> Identity:
        async def load() -> Identity | None:
            return await self._look_up(
                lambda session: service.identify_key(session=session, api_key=api_key)
            )

        identity = await self._keys.get(service.hash_key(api_key), load)
        if identity is None:
            raise Unauthorized("The API key is unknown or has been revoked.", headers=_challenge())
        return identity

    async def by_client_credentials(
        self, client_id: str | None, client_secret: str | None, *, address: str
    ) -> Identity:
        """The client of a token request: its id and one of its API keys must both be sent
        and belong together (`invalid_client` otherwise); 429 after too many failures from
        `address` or for the client id."""
        if not client_id or not client_secret:
            raise OAuthRefusal(
                401,
                "invalid_client",
                "Send client_id and client_secret (an API key of the client).",
            )
        if self.throttle is not None:
            await self.throttle.check(address, client_id)
        try:
            identity = await self.by_api_key(client_secret)
        except Unauthorized:
            identity = None
        if identity is None or identity.client_id != client_id:
            if self.throttle is not None:
                await self.throttle.failed("client_secret", address, client_id)
            raise OAuthRefusal(401, "invalid_client", "The client credentials are not valid.")
        return identity

    async def by_client_id(self, client_id: str) -> Identity | None:
        async def load() -> Identity | None:
            return await self._look_up(
                lambda session: service.identify_client(session=session, client_id=client_id)
            )

        return await self._clients.get(client_id, load)

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
            county_codes=identity.county_codes,
        )
        self._bearers.keep(token, (float(claims["exp"]), caller))
        return caller

    async def from_headers(
        self, api_key: str | None, authorization: str | None, *, address: str
    ) -> Identity:
        """The caller named by `X-API-Key` or `Authorization: Bearer`; 401 otherwise, and 429
        after too many failures from `address`."""
        token = None if api_key else parse_bearer(authorization)
        if api_key or token:
            if self.throttle is not None:
                await self.throttle.check(address)
            try:
                if api_key:
                    return await self.by_api_key(api_key)
                assert token is not None
                return await self.by_bearer(token)
            except Unauthorized:
                if self.throttle is not None:
                    await self.throttle.failed("api_key" if api_key else "bearer", address)
                raise
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
    """Service tokens for the backends, reused for half their lifetime per client, binding
    and backend.

    A token carries only the client's scopes on the backend's own resources (`brands:…` for the
    brand registry, and so on), plus `city:read`, which every backend applies to its own lists:
    a backend learns nothing of the rest, and a token taken from one backend is worth nothing
    at another (the audience already sees to that). A client bound to counties has them in the
    token's `counties` claim. The cache is keyed on the scopes and the counties as the client's
    record gives them, so a change to either (which drops the cached credentials) reaches the
    next token.
    """

    def __init__(self, minter: TokenMinter, resources: dict[str, frozenset[str]]) -> None:
        self._minter = minter
        self._resources = resources
        self._tokens: Answers[tuple[str, str, frozenset[str], frozenset[str]], str] = Answers(
            minter.ttl_seconds / 2
        )

    def for_backend(self, backend: str, identity: Identity) -> str:
        key = (backend, identity.client_id, identity.scopes, identity.county_codes)
        cached = self._tokens.fresh(key)
        if cached is not None:
            return cached
        resources = self._resources.get(backend, frozenset())
        token = self._minter.mint(
            audience=backend,
            client_id=identity.client_id,
            client_name=identity.name,
            scopes={
                scope
                for scope in identity.scopes
                if scope in BROAD_SCOPES or scope.split(":")[0] in resources
            },
            county_codes=identity.county_codes,
        )
        self._tokens.keep(key, token)
        return token
