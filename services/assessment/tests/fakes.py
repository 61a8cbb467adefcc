"""Stand-ins for the three data services' `/stats` endpoints, behind `httpx.MockTransport`.

A source is the host, or for the newer resources its path (`/api/v1/incidents`, `/awards`,
`/food-dispositions`); a body stored under `<source>?<param>=<value>` answers the stats
called with that `programme` or `kind`, else the source's body does."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

HOSTS = {
    "brand-registry.test": "brands",
    "certification.test": "certificates",
    "inspection.test": "spot_checks",
}
PATHS = {
    "/api/v1/incidents": "incidents",
    "/api/v1/awards": "awards",
    "/api/v1/food-dispositions": "food_dispositions",
}
AUDIENCES = {
    "brands": "brand_registry",
    "certificates": "certification",
    "spot_checks": "inspection",
    "incidents": "inspection",
    "awards": "brand_registry",
    "food_dispositions": "certification",
}
SCOPES = {
    "brands": "brands:read",
    "certificates": "certificates:read",
    "spot_checks": "spot-checks:read",
    "incidents": "incidents:read",
    "awards": "brands:read",
    "food_dispositions": "certificates:read",
}
VARIANTS = ("programme", "kind")


def source_of(url: httpx.URL) -> str:
    for prefix, source in PATHS.items():
        if url.path.startswith(prefix):
            return source
    return HOSTS[url.host]


def empty_bodies() -> dict[str, dict[str, Any]]:
    return {
        "brands": {"groups": [], "by_county": [], "by_tier": [], "totals": {}},
        "certificates": {"by_county": [], "totals": {"new_certified_enterprises": 0}},
        "spot_checks": {"by_county": [], "by_category": [], "totals": {"checked": 0, "passed": 0}},
        "incidents": {"by_county": [], "totals": {"confirmed_major": 0}},
        "awards": {"by_county": [], "totals": {"awards": 0}},
        "food_dispositions": {"by_county": [], "totals": {"rectifying": 0}},
    }


@dataclass
class FakeDataServices:
    """Answers each source with a configured body, or fails the way a test asks; `public_key`
    verifies the service's tokens (set when the suite makes its key pair)."""

    public_key: bytes = b""
    bodies: dict[str, dict[str, Any]] = field(default_factory=empty_bodies)
    modes: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    lists: Callable[[str, httpx.Request, dict[str, Any]], Awaitable[httpx.Response]] | None = None
    """Answers the list endpoints (given the source, request and token claims) when set."""
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The records `GET /api/v1/incidents/{id}` answers."""

    def reset(self) -> None:
        self.lists = None
        self.incidents.clear()
        self.bodies = empty_bodies()
        self.modes.clear()
        self.delays.clear()
        self.requests.clear()
        self.claims.clear()
        self.failures_left.clear()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        source = source_of(request.url)
        token = request.headers["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(
            token, self.public_key, algorithms=["EdDSA"], audience=AUDIENCES[source]
        )
        self.claims.append(claims)
        if SCOPES[source] not in claims["scope"].split():
            return httpx.Response(403, json={"detail": "scope"})
        if self.delays.get(source):
            await asyncio.sleep(self.delays[source])
        if self.failures_left.get(source, 0) > 0:
            self.failures_left[source] -= 1
            return httpx.Response(503, json={"detail": "warming up"})
        mode = self.modes.get(source, "ok")
        if mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if source == "incidents" and not request.url.path.endswith("/stats"):
            record = self.incidents.get(request.url.path.rsplit("/", 1)[-1])
            if record is None:
                return httpx.Response(404, json={"detail": "no such incident"})
            return httpx.Response(200, json=record)
        if self.lists is not None and not request.url.path.endswith("/stats"):
            return await self.lists(source, request, claims)
        if mode == "error":
            return httpx.Response(500, json={"detail": "database is on fire"})
        if mode == "garbage":
            return httpx.Response(200, json={"unexpected": True})
        variant = next(
            (
                f"{source}?{name}={request.url.params[name]}"
                for name in VARIANTS
                if name in request.url.params
            ),
            source,
        )
        chosen = self.bodies.get(variant, self.bodies.get(source))
        body = copy.deepcopy(chosen if chosen is not None else empty_bodies()[source])
        body.setdefault("year", int(request.url.params["year"]))
        body.setdefault("as_of", request.url.params["as_of"])
        return httpx.Response(200, json=body)
