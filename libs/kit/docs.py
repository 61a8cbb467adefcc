"""Interactive API docs served by the app itself, so `/docs` works on a network cut off from
the internet.

FastAPI's own page loads Swagger UI's script and stylesheet from a public CDN and its favicon
from another public site. Here the page names only the app's own paths: the assets come from
the `swagger-ui-bundle` package, at `/docs/static/<name>`, and the page asks no validator badge
from swagger.io. That package carries no ReDoc, so apps serve no `/redoc`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from kit.errors import NotFound

DOCS_URL = "/docs"
VIEWER_DOCUMENT_URL = "/docs/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_PREFIX = "/docs/static"
ASSETS_ROUTE = f"{ASSETS_PREFIX}/{{name}}"
ASSETS_DIR = Path(str(swagger_ui_path))
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The only files of the bundle served: the page needs nothing else."""
ASSET_MAX_AGE = 86_400

SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
"""No validator badge: Swagger UI would otherwise fetch it from validator.swagger.io."""


def asset_url(name: str, *, root_path: str = "") -> str:
    """The app's own path to one of Swagger UI's files."""
    return f"{root_path}{ASSETS_PREFIX}/{name}"


def swagger_ui_page(
    *, openapi_url: str, title: str, oauth2_redirect_url: str | None = None, root_path: str = ""
) -> HTMLResponse:
    """Swagger UI for the document at `openapi_url`, every asset from the app itself."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=asset_url("swagger-ui-bundle.js", root_path=root_path),
        swagger_css_url=asset_url("swagger-ui.css", root_path=root_path),
        swagger_favicon_url=asset_url("favicon-32x32.png", root_path=root_path),
        oauth2_redirect_url=oauth2_redirect_url,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


async def swagger_ui_asset(name: str) -> FileResponse:
    """One of Swagger UI's files; a name outside the three the page uses is a 404."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"No docs asset {name!r}.")
    return FileResponse(
        ASSETS_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": f"public, max-age={ASSET_MAX_AGE}"},
    )


VIEWER_OPENAPI_VERSION = "3.0.3"
_NULL = {"type": "null"}


def viewer_document(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (OpenAPI 3.1, as FastAPI writes it) restated in OpenAPI 3.0 for Swagger UI 4:
    an `anyOf`/`oneOf` with `null` becomes `nullable`, a schema's `examples` list its
    `example`, a numeric `exclusiveMinimum`/`exclusiveMaximum` a bound with the flag, `const`
    a one-value `enum`; 3.1-only members are left out. The input is not changed."""
    converted: dict[str, Any] = _restated(document)
    converted["openapi"] = VIEWER_OPENAPI_VERSION
    for member in ("webhooks", "jsonSchemaDialect"):
        converted.pop(member, None)
    return converted


def _restated(value: Any) -> Any:
    if isinstance(value, list):
        return [_restated(item) for item in value]
    if not isinstance(value, dict):
        return value
    node = {key: _restated(item) for key, item in value.items()}
    for union in ("anyOf", "oneOf"):
        options = node.get(union)
        if isinstance(options, list) and _NULL in options:
            rest = [option for option in options if option != _NULL]
            del node[union]
            if len(rest) == 1 and "$ref" not in rest[0]:
                node = {**rest[0], **node}
            elif rest:
                node["allOf" if len(rest) == 1 else union] = rest
            node["nullable"] = True
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        node["type"] = kinds[0] if len(kinds) == 1 else kinds
        if len(kinds) < len(kind):
            node["nullable"] = True
        if len(kinds) != 1:
            node.pop("type")
    examples = node.get("examples")
    if isinstance(examples, list):
        del node["examples"]
        if examples:
            node.setdefault("example", examples[0])
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        limit = node.get(exclusive)
        if isinstance(limit, int | float) and not isinstance(limit, bool):
            node[bound] = limit
            node[exclusive] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def install_docs(app: FastAPI) -> None:
    """`/docs`, the document it shows, its OAuth2 redirect page and its assets, on an app
    built with `docs_url=None` and `redoc_url=None`. The routes sit at the top of the app's routes, where FastAPI puts its
    own, so an app serving a page of its own at `/docs` can drop them by path."""

    async def docs(request: Request) -> HTMLResponse:
        root_path = request.scope.get("root_path", "").rstrip("/")
        return swagger_ui_page(
            openapi_url=root_path + VIEWER_DOCUMENT_URL,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root_path + OAUTH2_REDIRECT_URL,
            root_path=root_path,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def document() -> JSONResponse:
        return JSONResponse(viewer_document(app.openapi()))

    app.add_api_route(DOCS_URL, docs, include_in_schema=False)
    app.add_api_route(VIEWER_DOCUMENT_URL, document, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_api_route(ASSETS_ROUTE, swagger_ui_asset, include_in_schema=False)
