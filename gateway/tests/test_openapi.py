"""The merged OpenAPI document: valid, every service path once, usable for typed clients."""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.openapi import merge_specs
from gateway.routing import match_prefix
from gateway.tests.conftest import GatewayFactory, client_of
from gateway.tests.support import SERVICES, Backends

EVENTS = "/api/v1/events"
GATEWAY_OWN = ("/api/v1/admin", "/api/v1/webhooks")


async def _service_specs(backends: Backends) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient() as direct:
        return {
            name: (await direct.get(backends.url(name) + "/openapi.json")).json()
            for name in SERVICES
        }


@pytest.fixture
async def merged(make_gateway: GatewayFactory, backends: Backends) -> dict[str, Any]:
    async with (
        make_gateway(brand_registry_url=backends.url("brand_registry")) as gateway,
        client_of(gateway, api_key=None) as client,
    ):
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "/openapi.json" in docs.text
        document: dict[str, Any] = response.json()
        return document


async def test_the_merged_document_validates(merged: dict[str, Any]) -> None:
    validate(merged)
    assert "x-unavailable-services" not in merged["info"]


async def test_every_service_path_appears_once_and_is_routed(
    merged: dict[str, Any], backends: Backends
) -> None:
    specs = await _service_specs(backends)
    expected: list[str] = []
    for name, spec in specs.items():
        # Each service's part of the change feed is merged into the gateway's own feed.
        api_paths = [p for p in spec["paths"] if p.startswith("/api/v1/") and p != EVENTS]
        assert api_paths, f"{name} documents no /api/v1 path"
        for path in api_paths:
            prefix = match_prefix(path)
            assert prefix is not None, f"{path} of {name} has no route at the gateway"
            assert prefix.backend == name, f"{path} is served by {name}, routed to {prefix.backend}"
        expected += api_paths
    assert len(expected) == len(set(expected)), "two services claim the same path"
    merged_api = [
        p
        for p in merged["paths"]
        if p.startswith("/api/v1/") and not p.startswith(GATEWAY_OWN) and p != EVENTS
    ]
    assert sorted(merged_api) == sorted(expected)
    for path in ("/oauth/token", "/health", "/api/v1/admin/clients", EVENTS, "/api/v1/webhooks"):
        assert path in merged["paths"]
    assert merged["paths"][EVENTS]["get"]["x-required-scope"] == "events:read"


async def test_operations_carry_the_gateway_security_and_scopes(merged: dict[str, Any]) -> None:
    schemes = merged["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["OAuth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert merged["paths"]["/api/v1/brands"]["post"]["x-required-scope"] == "brands:write"
    assert merged["paths"]["/api/v1/certificates/verify"]["get"]["security"] == []
    operation_ids = [
        op["operationId"]
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(operation_ids) == len(set(operation_ids))


async def test_the_document_describes_the_county_reporting_workflow(
    merged: dict[str, Any],
) -> None:
    description = merged["info"]["description"]
    assert "## County reporting" in description
    for step in ("/reported-values", "/evidence", "/status", "/worklist", "If-Match"):
        assert step in description
    for path in (
        "/api/v1/reported-values/{value_id}/status",
        "/api/v1/assessments/{year}/worklist",
    ):
        assert path in merged["paths"]


def test_clashing_schemas_are_renamed_and_identical_ones_kept_once() -> None:
    def spec(title: str, item_props: dict[str, Any]) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": "1"},
            "paths": {
                f"/api/v1/{title}": {
                    "get": {
                        "operationId": "list",
                        "responses": {
                            "200": {
                                "description": "ok",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Page_Item_"}
                                    }
                                },
                            }
                        },
                    }
                }
            },
            "components": {
                "schemas": {
                    "Item": {"type": "object", "properties": item_props},
                    "Page_Item_": {
                        "type": "object",
                        "properties": {
                            "items": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Item"},
                            }
                        },
                    },
                    "Problem": {"type": "object"},
                }
            },
        }

    gateway = {"openapi": "3.1.0", "info": {"title": "gw", "version": "1"}, "paths": {}}
    merged = merge_specs(
        gateway,
        {
            "brand_registry": spec("brands", {"tier": {"type": "string"}}),
            "certification": spec("certificates", {"standard": {"type": "string"}}),
        },
    )
    schemas = merged["components"]["schemas"]
    assert {"BrandRegistry_Item", "Certification_Item", "Problem"} <= set(schemas)
    # The page schemas were identical text but point at different items, so they split too.
    assert {"BrandRegistry_Page_Item_", "Certification_Page_Item_"} <= set(schemas)
    assert "Item" not in schemas
    # Generators name models after titles, so the renamed schemas carry their new names.
    assert schemas["BrandRegistry_Item"]["title"] == "BrandRegistry_Item"
    assert schemas["Certification_Page_Item_"]["title"] == "Certification_Page_Item_"
    ref = merged["paths"]["/api/v1/brands"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert ref == "#/components/schemas/BrandRegistry_Page_Item_"
    assert len({op["get"]["operationId"] for op in merged["paths"].values()}) == 2
    validate(merged)


async def test_a_typed_client_generates_and_type_checks(
    merged: dict[str, Any], tmp_path: Path
) -> None:
    if shutil.which("npx") is None:
        pytest.skip("Node.js is not installed")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(merged))
    generate = await asyncio.to_thread(
        subprocess.run,
        ["npx", "--yes", "openapi-typescript@7", str(spec), "-o", str(tmp_path / "api.d.ts")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    if generate.returncode != 0 and (
        "ENOTFOUND" in generate.stderr or "EAI_AGAIN" in generate.stderr
    ):
        pytest.skip("the npm registry is out of reach")
    assert generate.returncode == 0, generate.stderr
    (tmp_path / "use.ts").write_text(
        'import type { paths, components } from "./api";\n'
        'type Brands = paths["/api/v1/brands"]["get"]["responses"][200]["content"]["application/json"];\n'
        'type Token = components["schemas"]["TokenRead"];\n'
        "export const token: Token = { access_token: 'x', token_type: 'Bearer', expires_in: 1, scope: '' };\n"
        "export type { Brands };\n"
    )
    check = await asyncio.to_thread(
        subprocess.run,
        ["npx", "--yes", "-p", "typescript@5", "tsc", "--noEmit", "--strict", "use.ts", "api.d.ts"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
