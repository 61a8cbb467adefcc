"""Every app's /docs works offline: the page and every asset it names come from the app."""

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
    assert "url: '/openapi.json'" in html
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
