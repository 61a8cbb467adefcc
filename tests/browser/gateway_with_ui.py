"""The gateway app with the standings page in front, for a suite whose gateway lacks it."""

from fastapi import FastAPI

from gateway.app import build_app as build_gateway
from gateway.ui import router as ui_router


def build_app() -> FastAPI:
    """The gateway with `gateway.ui.router` matched first (`uvicorn --factory …:build_app`)."""
    app = build_gateway()
    app.include_router(ui_router)
    # Matched before the gateway's own routes, so `/` is the page rather than a redirect.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
