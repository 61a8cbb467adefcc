"""The certification app, built by the kit's factory."""

from pathlib import Path

from fastapi import FastAPI

from certification.alerts import alerts_lifespan
from certification.catalogue import load_catalogue
from certification.disposition_routes import router as disposition_router
from certification.models import idempotency_record
from certification.routes import HOT_ROUTES, router
from certification.settings import Settings
from kit.app import ServiceSpec, create_app
from kit.events import events_lifespan, events_router

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "certification_alembic_version"

SPEC = ServiceSpec(
    name="certification",
    title="Certification",
    description="Management-system certificates (ISO 9001, ISO 14001 …) and market-access licences of enterprises, with public verification, and the food-processing dispositions.",
    version="1.0.0",
    routers=[router, disposition_router, events_router("certification")],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
    lifespan_hooks=[events_lifespan(), alerts_lifespan()],
    load_catalogue=load_catalogue,
    hot_routes=HOT_ROUTES,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory certification.app:build_app`)."""
    return create_app(SPEC, settings or Settings())
