"""Which backend answers a path, and which scope a method on that path needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kit.auth import CITY_WIDE_READ_SCOPE

API_PREFIX = "/api/v1"
ADMIN_SCOPE = "admin"
RESOURCE_SCOPES = (
    "brands:read",
    "brands:write",
    "brands:flag",
    "certificates:read",
    "certificates:write",
    "spot-checks:read",
    "spot-checks:write",
    "incidents:read",
    "incidents:write",
    "assessments:read",
    "assessments:write",
    "assessments:publish",
    "assessments:review",
    "enterprises:read",
)
EVENTS_SCOPE = "events:read"
WEBHOOKS_SCOPE = "webhooks:manage"
ALL_SCOPES = (*RESOURCE_SCOPES, EVENTS_SCOPE, WEBHOOKS_SCOPE, CITY_WIDE_READ_SCOPE, ADMIN_SCOPE)
BROAD_SCOPES = frozenset({CITY_WIDE_READ_SCOPE, EVENTS_SCOPE})
"""Scopes every backend is told of, whatever its resources: each serves its part of the
change feed to callers holding `events:read`."""
UNBOUND_SCOPES = frozenset({ADMIN_SCOPE, "assessments:review"})
"""Scopes a client bound to counties can never hold."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Prefix:
    """A path prefix served by one backend, and the resource its scopes are named after."""

    path: str
    backend: str
    resource: str


PREFIXES = (
    Prefix("/api/v1/brands", "brand_registry", "brands"),
    Prefix("/api/v1/awards", "brand_registry", "brands"),
    Prefix("/api/v1/certificates", "certification", "certificates"),
    Prefix("/api/v1/food-dispositions", "certification", "certificates"),
    Prefix("/api/v1/spot-checks", "inspection", "spot-checks"),
    Prefix("/api/v1/incidents", "inspection", "incidents"),
    Prefix("/api/v1/regions", "assessment", "assessments"),
    Prefix("/api/v1/target-sets", "assessment", "assessments"),
    Prefix("/api/v1/reported-values", "assessment", "assessments"),
    Prefix("/api/v1/reference-values", "assessment", "assessments"),
    Prefix("/api/v1/assessments", "assessment", "assessments"),
    Prefix("/api/v1/audit-entries", "assessment", "assessments"),
    Prefix("/api/v1/enterprises", "assessment", "enterprises"),
)
# The enterprise view shows each data service's section only to a caller holding its read
# scope, so the assessment service is told of those scopes too.
_READ_ALSO = {"assessment": frozenset({"brands", "certificates", "spot-checks"})}
BACKEND_RESOURCES = {
    backend: frozenset(prefix.resource for prefix in PREFIXES if prefix.backend == backend)
    | _READ_ALSO.get(backend, frozenset())
    for backend in {prefix.backend for prefix in PREFIXES}
}
"""The resources whose scopes each backend checks."""
EVENT_SOURCES = {
    "brand": ("brand_registry", "brands:read"),
    "certificate": ("certification", "certificates:read"),
    "spot_check": ("inspection", "spot-checks:read"),
    "incident": ("inspection", "incidents:read"),
    "award": ("brand_registry", "brands:read"),
    "disposition": ("certification", "certificates:read"),
    "reported_value": ("assessment", "assessments:read"),
    "assessment_run": ("assessment", "assessments:read"),
}
"""The first segment of an event type (`kit.events.EVENT_TYPES` lists them all): the service
emitting it and the scope reading it."""
PUBLIC_PATHS = frozenset({"/api/v1/certificates/verify"})
_PUBLISH = re.compile(r"^/api/v1/assessments/[^/]+/runs/[^/]+/publish/?$")
_REVIEW = re.compile(r"^/api/v1/reported-values/[^/]+/status/?$")
_ID_SEGMENT = re.compile(r"\d")
_COUNTERFEIT_NOTICES = "/api/v1/brands/counterfeit-notices"
"""Notices of counterfeiting cases, sent by inspection like its review flags."""


def match_prefix(path: str) -> Prefix | None:
    """The prefix serving `path` (the prefix itself or anything below it), if any."""
    for prefix in PREFIXES:
        if path.startswith(prefix.path):
            rest = path[len(prefix.path) :]
            if not rest or rest[0] == "/":
                return prefix
    return None


def is_public(method: str, path: str) -> bool:
    """Routes anyone may call without credentials (certificate verification)."""
    return method in {"GET", "HEAD", "POST"} and path.rstrip("/") in PUBLIC_PATHS


def required_scope(method: str, path: str, prefix: Prefix) -> str:
    """The scope a call needs, per API.md: read for safe methods, write otherwise."""
    if method == "POST" and _PUBLISH.match(path):
        return "assessments:publish"
    if method == "POST" and _REVIEW.match(path):
        return "assessments:review"
    if prefix.resource == "brands" and (
        path == "/api/v1/brands/review-flags"
        or path.startswith("/api/v1/brands/review-flags/")
        or path.rstrip("/") == _COUNTERFEIT_NOTICES
    ):
        return "brands:flag"
    return f"{prefix.resource}:{'read' if method in READ_METHODS else 'write'}"


def route_label(path: str) -> str:
    """A low-cardinality label for metrics: below the resource, segments carrying digits
    become `{id}`."""
    parts = path.split("/")
    head, tail = parts[:4], parts[4:]
    return "/".join(head + ["{id}" if _ID_SEGMENT.search(part) else part for part in tail])
