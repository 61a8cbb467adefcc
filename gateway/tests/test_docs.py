"""The gateway's /docs works offline: the page, and every asset it names, come from the
gateway, reached without a key like the page itself."""

from openapi_spec_validator import validate

from gateway.tests.conftest import GatewayFactory, client_of
from gateway.tests.support import Backends
from kit.testing import Harness
from kit.tests.offline_docs import fetch_docs_and_assets, outside_urls


async def test_docs_and_its_assets_name_no_outside_host_and_need_no_key(
    service: Harness,
) -> None:
    async with client_of(service.app, api_key=None) as client:
        html, assets = await fetch_docs_and_assets(client)
        assert outside_urls(html, str(client.base_url)) == []
        assert "url: '/docs/openapi.json'" in html
        assert "<title>Quality Revitalization Platform API</title>" in html
        assert set(assets) == {
            "/docs/static/swagger-ui-bundle.js",
            "/docs/static/swagger-ui.css",
            "/docs/static/favicon-32x32.png",
        }


async def test_only_the_pages_assets_are_served_and_no_redoc(service: Harness) -> None:
    async with client_of(service.app, api_key=None) as client:
        for path in ("/docs/static/index.html", "/docs/static/swagger-initializer.js", "/redoc"):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"] == "application/problem+json"


async def test_the_page_shows_the_merged_document_restated_in_openapi_3_0(
    make_gateway: GatewayFactory, backends: Backends
) -> None:
    async with (
        make_gateway(brand_registry_url=backends.url("brand_registry")) as gateway,
        client_of(gateway, api_key=None) as client,
    ):
        merged = (await client.get("/openapi.json")).json()
        shown = await client.get("/docs/openapi.json")
    assert shown.status_code == 200
    document = shown.json()
    assert document["openapi"] == "3.0.3"
    validate(document)
    assert document["paths"].keys() == merged["paths"].keys()
    assert "get" in document["paths"]["/api/v1/assessments/{year}/standings"]
