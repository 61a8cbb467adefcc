"""The gateway's /docs works offline: the page, and every asset it names, come from the
gateway, reached without a key like the page itself."""

from gateway.tests.conftest import client_of
from kit.testing import Harness
from kit.tests.offline_docs import fetch_docs_and_assets, outside_urls


async def test_docs_and_its_assets_name_no_outside_host_and_need_no_key(
    service: Harness,
) -> None:
    async with client_of(service.app, api_key=None) as client:
        html, assets = await fetch_docs_and_assets(client)
        assert outside_urls(html, str(client.base_url)) == []
        assert "url: '/openapi.json'" in html
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
