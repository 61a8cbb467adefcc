"""One OpenAPI document for the whole API: the four services' specs merged with the gateway's.

Component schemas that two specs define differently are renamed `<Service>_<Name>`, their
`title` too (and every reference to them rewritten); identical ones are kept once. Operations carry the gateway's
security schemes and the scope each needs.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from gateway.routing import (
    ALL_SCOPES,
    API_PREFIX,
    EVENTS_SCOPE,
    WEBHOOKS_SCOPE,
    is_public,
    match_prefix,
    required_scope,
)

logger = structlog.get_logger("gateway.openapi")

SCHEMA_REF = "#/components/schemas/"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCOPE_DESCRIPTIONS = {
    "brands:read": "Read brand listings",
    "brands:write": "Create and change brand listings",
    "brands:flag": "Raise review flags on brand listings",
    "certificates:read": "Read certificates",
    "certificates:write": "Create and change certificates",
    "spot-checks:read": "Read spot-check results",
    "spot-checks:write": "Record spot-check results",
    "incidents:read": "Read quality and food-safety incidents, unlicensed production and "
    "counterfeiting cases",
    "incidents:write": "Record incidents and change their status",
    "assessments:read": "Read regions, targets, reported values and standings",
    "assessments:write": "Change targets, reported values and runs",
    "assessments:publish": "Publish an assessment run",
    "assessments:review": "Accept or return reported values (never held by a county-bound client)",
    "enterprises:read": "Read the view of one enterprise across the data services (each "
    "section shown with its own read scope)",
    "events:read": "Read the change feed (events of the resources whose read scope is held)",
    "webhooks:manage": "Manage the client's own webhook subscriptions",
    "city:read": "Read every county's records, for a client bound to counties",
    "admin": "Manage API clients and keys",
}
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "OAuth2": {
        "type": "oauth2",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {scope: SCOPE_DESCRIPTIONS[scope] for scope in ALL_SCOPES},
            }
        },
    },
}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _rewrite_refs(node: Any, source: str, renames: Mapping[tuple[str, str], str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                name = value[len(SCHEMA_REF) :]
                result[key] = SCHEMA_REF + renames.get((source, name), name)
            else:
                result[key] = _rewrite_refs(value, source, renames)
        return result
    if isinstance(node, list):
        return [_rewrite_refs(item, source, renames) for item in node]
    return node


def _schema_renames(sources: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """Which (source, schema) pairs need a new name so that no two definitions share one."""
    owners: dict[str, list[str]] = defaultdict(list)
    for source, schemas in sources.items():
        for name in schemas:
            owners[name].append(source)
    renames: dict[tuple[str, str], str] = {}
    changed = True
    # A schema identical in two specs may still differ once its references are renamed.
    while changed:
        changed = False
        for name, holders in owners.items():
            if len(holders) < 2 or all((s, name) in renames for s in holders):
                continue
            rendered = {
                json.dumps(_rewrite_refs(sources[s][name], s, renames), sort_keys=True)
                for s in holders
            }
            if len(rendered) > 1:
                for source in holders:
                    renames[(source, name)] = f"{_camel(source)}_{name}"
                changed = True
    return renames


def _security_for(method: str, path: str) -> list[dict[str, list[str]]]:
    if path.startswith(API_PREFIX + "/admin"):
        return [{"ApiKey": []}, {"OAuth2": ["admin"]}]
    if path == API_PREFIX + "/events":
        return [{"ApiKey": []}, {"OAuth2": [EVENTS_SCOPE]}]
    if path.startswith(API_PREFIX + "/webhooks"):
        return [{"ApiKey": []}, {"OAuth2": [WEBHOOKS_SCOPE]}]
    prefix = match_prefix(path)
    if prefix is None or is_public(method.upper(), path):
        return []
    return [{"ApiKey": []}, {"OAuth2": [required_scope(method.upper(), path, prefix)]}]


def merge_specs(
    gateway: Mapping[str, Any], services: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, Any]:
    """The merged document: the gateway's paths, then each service's `/api/v1` paths."""
    documents: dict[str, Mapping[str, Any]] = {"gateway": gateway}
    documents.update({name: doc for name, doc in services.items() if doc is not None})
    sources = {
        name: doc.get("components", {}).get("schemas", {}) for name, doc in documents.items()
    }
    renames = _schema_renames(sources)
    schemas: dict[str, Any] = {}
    for source, defined in sources.items():
        for name, schema in defined.items():
            merged_name = renames.get((source, name), name)
            rewritten = _rewrite_refs(schema, source, renames)
            if merged_name != name and isinstance(rewritten, dict):
                # Generators name a model after its title: the renamed ones get theirs.
                rewritten["title"] = merged_name
            schemas[merged_name] = rewritten

    paths: dict[str, Any] = {}
    operation_ids: set[str] = set()
    tags: list[dict[str, str]] = [{"name": "gateway", "description": "API clients, tokens, health"}]
    for source, doc in documents.items():
        if source != "gateway":
            tags.append({"name": source, "description": doc.get("info", {}).get("title", "")})
        for path, item in doc.get("paths", {}).items():
            if source != "gateway" and match_prefix(path) is None:
                # Not forwarded: the gateway answers it itself (each service's part of the
                # change feed is merged into the gateway's own `/api/v1/events`).
                continue
            item = _rewrite_refs(copy.deepcopy(item), source, renames)
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                operation["tags"] = operation.get("tags") or [source]
                operation["security"] = _security_for(method, path)
                operation_id = operation.get("operationId")
                if operation_id in operation_ids:
                    operation["operationId"] = f"{source}_{operation_id}"
                if operation.get("operationId"):
                    operation_ids.add(operation["operationId"])
                if operation["security"]:
                    scopes = operation["security"][1]["OAuth2"]
                    operation["x-required-scope"] = scopes[0]
            paths[path] = item

    missing = sorted(name for name, doc in services.items() if doc is None)
    info: dict[str, Any] = {
        "title": "Quality Revitalization Platform API",
        "version": gateway.get("info", {}).get("version", "1.0.0"),
        "description": DESCRIPTION,
    }
    if missing:
        info["x-unavailable-services"] = missing
    return {
        "openapi": gateway.get("openapi", "3.1.0"),
        "info": info,
        "tags": tags,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


DESCRIPTION = """The public API of the Quality Revitalization Platform, served by the gateway.
Authenticate with `X-API-Key` or an OAuth2 client-credentials token.

## County reporting

A county's office calls with a client bound to its county (`county_codes` on the client,
`POST /api/v1/admin/clients`): it writes only its county's records (any other is a 403 problem
naming `county_code`) and lists only them unless it also holds `city:read`. A figure it reports
is `submitted`; the city's assessment office (`assessments:review`, never a bound client) reads
its evidence files and `accepted` or `returned` it with a comment. Only accepted figures count
in the standings; a submitted one shows as `pending_review` and blocks publication.

```sh
# the county submits a figure; the answer's ETag is its version
curl -si -X POST $URL/api/v1/reported-values -H "X-API-Key: $COUNTY_KEY" \\
  -H "Content-Type: application/json" -d '{"county_code": "320323", "year": 2007,
  "indicator": "industrial_standard_coverage", "value": 0.96, "reported_by": "銅山縣質監局",
  "evidence": {"document": "銅質監〔2008〕3號", "text": "全縣工業產品標準覆蓋率統計"}}'
# and attaches its evidence (PDF, JPEG, PNG, XLSX, DOCX or OFD, 20 MB at most)
curl -X POST $URL/api/v1/reported-values/$ID/evidence -H "X-API-Key: $COUNTY_KEY" \\
  -F "file=@report.pdf"
# the city's reviewer reads the files and decides, naming the version it read
curl $URL/api/v1/reported-values/$ID/evidence -H "X-API-Key: $REVIEWER_KEY"
curl -X POST $URL/api/v1/reported-values/$ID/status -H "X-API-Key: $REVIEWER_KEY" \\
  -H "If-Match: $ETAG" -H "Content-Type: application/json" \\
  -d '{"state": "returned", "comment": "請附企業產品標準備案清單"}'
# the county's worklist: each figure asked of it, its state, comment and due date
curl $URL/api/v1/assessments/2007/worklist -H "X-API-Key: $COUNTY_KEY"
```

A returned figure is corrected by a new submission, which supersedes it;
`GET /api/v1/reported-values/{id}/history` gives the whole chain.
"""


class MergedSpec:
    """The merged document, rebuilt at most once per `ttl_seconds` (sooner when incomplete)."""

    def __init__(
        self,
        *,
        gateway_spec: Callable[[], dict[str, Any]],
        backends: Mapping[str, str],
        client: httpx.AsyncClient,
        ttl_seconds: float,
    ) -> None:
        self._gateway_spec = gateway_spec
        self._backends = dict(backends)
        self._client = client
        self._ttl = ttl_seconds
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, name: str, base_url: str) -> dict[str, Any] | None:
        try:
            response = await self._client.get(base_url + "/openapi.json")
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("openapi_unavailable", backend=name, error=type(exc).__name__)
            return None

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and self._cached[0] > now:
                return self._cached[1]
            fetched = await asyncio.gather(
                *(self._fetch(name, url) for name, url in self._backends.items())
            )
            services = dict(zip(self._backends, fetched, strict=True))
            document = merge_specs(self._gateway_spec(), services)
            ttl = self._ttl if all(fetched) else min(self._ttl, 5.0)
            self._cached = (now + ttl, document)
            return document
