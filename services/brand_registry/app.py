"""The brand_registry app, built by the kit's factory."""

from pathlib import Path

from fastapi import FastAPI

from brand_registry.alerts import alerts_lifespan
from brand_registry.catalogue import load_catalogue
from brand_registry.models import idempotency_record
from brand_registry.routes import HOT_ROUTES, router
from brand_registry.settings import Settings
from kit.app import ServiceSpec, create_app
from kit.events import events_lifespan, events_router

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "brand_registry_alembic_version"

SPEC = ServiceSpec(
    name="brand_registry",
    title="Brand registry",
    description="Famous-brand listings (名牌產品) by tier, with their status history and statistics.",
    version="1.0.0",
    routers=[router, events_router("brand_registry")],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
    lifespan_hooks=[events_lifespan(), alerts_lifespan()],
    load_catalogue=load_catalogue,
    hot_routes=HOT_ROUTES,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory brand_registry.app:build_app`)."""
    return create_app(SPEC, settings or Settings())
