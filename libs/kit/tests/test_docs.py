"""Every app's /docs works offline: the page and every asset it names come from the app."""

from typing import Any

from openapi_spec_validator import validate

from kit.docs import viewer_document
from kit.testing import Harness
from kit.tests.offline_docs import fetch_docs_and_assets, outside_urls


async def test_docs_page_and_its_assets_name_no_outside_host(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    html, assets = await fetch_docs_and_assets(client)
    assert outside_urls(html, str(client.base_url)) == []
    assert set(assets) == {
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
        "/docs/static/favicon-32x32.png",
    }
    assert b"SwaggerUIBundle" in assets["/docs/static/swagger-ui-bundle.js"]
    assert '"validatorUrl": null' in html


async def test_docs_assets_are_typed_and_cacheable(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "max-age=" in script.headers["cache-control"]
    css = await client.get("/docs/static/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")


async def test_only_the_pages_assets_are_served(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "nothing"):
        answer = await client.get(f"/docs/static/{name}")
        assert answer.status_code == 404, name
        assert answer.headers["content-type"] == "application/problem+json"


async def test_the_oauth2_redirect_page_names_no_outside_host(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    page = await client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert outside_urls(page.text, str(client.base_url)) == []


async def test_no_redoc_page_referencing_a_cdn(sample: Harness) -> None:
    answer = await sample.client(authenticated=False).get("/redoc")
    assert answer.status_code == 404


async def test_the_page_reads_the_document_restated_in_openapi_3_0(sample: Harness) -> None:
    client = sample.client(authenticated=False)
    page = (await client.get("/docs")).text
    assert "url: '/docs/openapi.json'" in page
    canonical = (await client.get("/openapi.json")).json()
    shown = (await client.get("/docs/openapi.json")).json()
    assert canonical["openapi"].startswith("3.1")
    assert shown["openapi"] == "3.0.3"
    validate(shown)
    assert shown["paths"].keys() == canonical["paths"].keys()


def test_a_3_1_schema_is_restated_in_3_0_terms() -> None:
    ref = {"$ref": "#/components/schemas/Widget"}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {},
        "components": {
            "schemas": {
                "Widget": {"type": "object"},
                "A": {
                    "type": "object",
                    "properties": {
                        "name": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "N"},
                        "widget": {"anyOf": [ref, {"type": "null"}]},
                        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "score": {"type": "number", "exclusiveMinimum": 0, "examples": [1.5]},
                        "kind": {"const": "a"},
                        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
            }
        },
    }
    shown = viewer_document(document)
    props = shown["components"]["schemas"]["A"]["properties"]
    assert props["name"] == {"type": "string", "title": "N", "nullable": True}
    assert props["widget"] == {"allOf": [ref], "nullable": True}
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["score"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "example": 1.5,
    }
    assert props["kind"] == {"enum": ["a"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "nullable": True}
    assert document["components"]["schemas"]["A"]["properties"]["kind"] == {"const": "a"}
    validate(shown)
