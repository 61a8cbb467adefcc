"""Checks that an app's /docs names no outside host, for the kit's and the gateway's tests."""

import re
from urllib.parse import urljoin, urlsplit

import httpx

_URL = re.compile(r"""https?://[^\s"'<>)]+""")
_ASSET = re.compile(r"""(?:href|src)="([^"]+)\"""")


def outside_urls(html: str, origin: str) -> list[str]:
    """Every absolute http(s) address in `html` whose origin is not `origin`."""
    own = urlsplit(origin)
    return [
        url
        for url in _URL.findall(html)
        if (urlsplit(url).scheme, urlsplit(url).netloc) != (own.scheme, own.netloc)
    ]


async def fetch_docs_and_assets(client: httpx.AsyncClient) -> tuple[str, dict[str, bytes]]:
    """The /docs page and every stylesheet, script and icon it names, each a 200."""
    page = await client.get("/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    names = _ASSET.findall(page.text)
    assert len(names) == 3, names
    assets: dict[str, bytes] = {}
    for name in names:
        url = urljoin(str(client.base_url) + "/docs", name)
        assert urlsplit(url).netloc == client.base_url.netloc.decode(), url
        answer = await client.get(url)
        assert answer.status_code == 200, (url, answer.text[:200])
        assert answer.content, url
        assets[urlsplit(url).path] = answer.content
    return page.text, assets
