"""Short-lived service tokens: minted by the gateway (and by services calling services),
verified by every service with public keys only.

Tokens are EdDSA (Ed25519) JWTs. `iss` names the minting party and selects its public key,
`aud` names the receiving service, `sub` the calling client and `scope` its scopes.
`counties`, when present, binds the client to those GB/T 2260 county codes (absent: city-wide).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request

from kit.errors import FieldError, Forbidden, Unauthorized

ALGORITHM = "EdDSA"
CITY_WIDE_READ_SCOPE = "city:read"
"""Lets a county-bound client read every county's records (it still writes only its own)."""
logger = structlog.get_logger("kit.auth")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client named in the verified token and what it may do."""

    client_id: str
    client_name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    issuer: str = ""
    county_codes: frozenset[str] = field(default_factory=frozenset)
    """The counties the client is bound to; empty for a city-wide client."""

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def bound(self) -> bool:
        return bool(self.county_codes)

    def covers(self, county_code: str | None) -> bool:
        """Whether the client may write records of `county_code`."""
        return not self.county_codes or county_code in self.county_codes

    def require_county(self, county_code: str | None, *, field: str = "county_code") -> None:
        """403 naming `field` when `county_code` lies outside the client's binding."""
        if not self.covers(county_code):
            allowed = ", ".join(sorted(self.county_codes))
            raise Forbidden(
                f"This client is bound to {allowed} and may not write records of county"
                f" {county_code}.",
                field=field,
                errors=[
                    FieldError(field, f"must be one of the client's counties: {allowed}").as_dict()
                ],
                allowed_county_codes=sorted(self.county_codes),
            )

    def require_rows_in_binding(
        self, lines: Sequence[int], *, field: str = "county_code", listed: int = 1000
    ) -> None:
        """403 naming `field` and the `lines` of an upload whose county lies outside the
        client's binding (the first `listed` of them): the whole file is refused."""
        if not lines:
            return
        allowed = ", ".join(sorted(self.county_codes))
        shown = ", ".join(str(line) for line in lines[:20]) + (", …" if len(lines) > 20 else "")
        raise Forbidden(
            f"This client is bound to {allowed}; {len(lines)} row(s) name another county"
            f" (lines {shown}). Nothing was stored.",
            field=field,
            errors=[
                FieldError(field, f"must be one of the client's counties: {allowed}").as_dict()
            ],
            lines=list(lines[:listed]),
            line_count=len(lines),
            allowed_county_codes=sorted(self.county_codes),
        )

    def readable_counties(self) -> frozenset[str] | None:
        """The counties whose records lists and exports show this client; None for all."""
        if not self.county_codes or self.has(CITY_WIDE_READ_SCOPE):
            return None
        return self.county_codes

    def reads(self, county_code: str | None) -> bool:
        """Whether records of `county_code` are shown to this client (lists, items)."""
        readable = self.readable_counties()
        return readable is None or county_code in readable


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes


def generate_keypair() -> KeyPair:
    """A fresh Ed25519 key pair in PEM form."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem=private_pem, public_pem=public_pem)


def write_keypair(directory: Path, name: str) -> KeyPair:
    """Create `<name>.pem` (owner-only) and `<name>.pub` in `directory` unless both exist."""
    private_path, public_path = directory / f"{name}.pem", directory / f"{name}.pub"
    if private_path.exists() and public_path.exists():
        return KeyPair(private_path.read_bytes(), public_path.read_bytes())
    directory.mkdir(parents=True, exist_ok=True)
    pair = generate_keypair()
    private_path.write_bytes(pair.private_pem)
    private_path.chmod(0o600)
    public_path.write_bytes(pair.public_pem)
    return pair


class TokenMinter:
    """Mints short-lived tokens as issuer `issuer`."""

    def __init__(self, private_pem: bytes, *, issuer: str, ttl_seconds: int = 60) -> None:
        self._key = serialization.load_pem_private_key(private_pem, password=None)
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds

    def mint(
        self,
        *,
        audience: str,
        client_id: str,
        client_name: str,
        scopes: frozenset[str] | set[str],
        county_codes: frozenset[str] | set[str] = frozenset(),
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": client_id,
            "name": client_name,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if county_codes:
            claims["counties"] = sorted(county_codes)
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)  # type: ignore[arg-type]


class TokenVerifier:
    """Verifies tokens for one audience against the public keys of trusted issuers.

    A caller sends the same token for many requests (the gateway reuses one per client for
    half its lifetime), so a token that passed is remembered, byte for byte, until it
    expires: the next request with it skips the signature check and only has its expiry
    compared with the clock. At most `remembered` tokens are kept, the oldest dropped first.
    """

    def __init__(
        self,
        *,
        audience: str,
        issuers: Mapping[str, bytes],
        leeway: int = 5,
        remembered: int = 4096,
        grants: Mapping[str, frozenset[str] | None] | None = None,
    ) -> None:
        self.audience = audience
        self.leeway = leeway
        self._grants = dict(grants or {})
        self._keys = {name: serialization.load_pem_public_key(pem) for name, pem in issuers.items()}
        self._remembered = remembered
        self._verified: dict[str, tuple[float, Principal]] = {}

    @classmethod
    def from_files(
        cls,
        *,
        audience: str,
        issuers: Mapping[str, Path],
        leeway: int = 5,
        grants: Mapping[str, frozenset[str] | None] | None = None,
    ) -> TokenVerifier:
        """Load the issuers' public keys; an issuer whose key file is missing is not trusted.
        `grants` names the scopes each issuer may grant (None or absent: any)."""
        loaded = {}
        for name, path in issuers.items():
            if path.exists():
                loaded[name] = path.read_bytes()
            else:
                logger.warning("token_issuer_key_missing", issuer=name, path=str(path))
        return cls(audience=audience, issuers=loaded, leeway=leeway, grants=grants)

    def verify(self, token: str) -> Principal:
        """The caller a valid token names; `Unauthorized` saying why when it is not valid."""
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[0]:
                return known[1]
            del self._verified[token]
        principal, expires_at = self._check(token)
        if self._remembered > 0:
            if len(self._verified) >= self._remembered:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (expires_at, principal)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise Unauthorized("The service token is malformed.") from None
        key = self._keys.get(issuer) if isinstance(issuer, str) else None
        if key is None:
            raise Unauthorized(
                "The service token comes from an issuer this service does not trust."
            )
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The service token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The service token is meant for another service.") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The service token is invalid: {exc}.") from None
        principal = Principal(
            client_id=str(claims["sub"]),
            client_name=str(claims.get("name") or claims["sub"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            issuer=str(issuer),
            county_codes=_counties(claims.get("counties")),
        )
        grantable = self._grants.get(str(issuer))
        if grantable is not None and not principal.scopes <= grantable:
            beyond = ", ".join(sorted(principal.scopes - grantable))
            raise Forbidden(
                f"The issuer {issuer!r} may not grant {beyond} to this service.",
                issuer=issuer,
            )
        # PyJWT refuses a token once `exp` is at least `leeway` seconds past.
        return principal, float(claims["exp"]) + self.leeway


def _counties(claim: object) -> frozenset[str]:
    if claim is None:
        return frozenset()
    if not isinstance(claim, list) or not all(isinstance(code, str) for code in claim) or not claim:
        raise Unauthorized("The service token's counties claim is malformed.")
    return frozenset(claim)


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if that is what it holds."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_token(request: Request) -> str | None:
    """The Bearer token of a request, if it carries one."""
    return parse_bearer(request.headers.get("authorization"))


async def get_principal(request: Request) -> Principal:
    """The verified caller of this request; 401 without a valid token."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("This service answers only requests that carry a gateway token.")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(token)
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(client_id=principal.client_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits callers holding `scope` (403 otherwise)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"This operation needs the scope {scope!r}.", required_scope=scope)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
