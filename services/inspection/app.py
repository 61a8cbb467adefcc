"""The inspection app, built by the kit's factory."""

from dataclasses import replace
from pathlib import Path

import httpx
from fastapi import FastAPI

from inspection.alerts import alerts_lifespan
from inspection.catalogue import load_catalogue
from inspection.incident_routes import router as incident_router
from inspection.models import idempotency_record
from inspection.outbox import METRICS_PREFIX, outbox_lifespan
from inspection.routes import HOT_ROUTES, router
from inspection.settings import Settings
from kit.app import ServiceSpec, create_app
from kit.events import events_lifespan, events_router
from kit.outbox import OutboxMetrics

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "inspection_alembic_version"
OUTBOX_HOOK = outbox_lifespan()

SPEC = ServiceSpec(
    name="inspection",
    title="Inspection",
    description="Supervision spot-check results (監督抽查) at national, provincial and city level.",
    version="1.0.0",
    routers=[router, incident_router, events_router("inspection")],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
    lifespan_hooks=[events_lifespan(), OUTBOX_HOOK, alerts_lifespan()],
    load_catalogue=load_catalogue,
    hot_routes=HOT_ROUTES,
    openapi_tags=[
        {"name": "spot-checks", "description": "Supervision spot-checks (監督抽查)"},
        {
            "name": "incidents",
            "description": "Quality and food-safety incidents, unlicensed production and"
            " counterfeiting cases (質量安全事件、無證生產、制售假冒偽劣案件)",
        },
    ],
)


def build_app(
    settings: Settings | None = None,
    *,
    brand_registry_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The ASGI app (`uvicorn --factory inspection.app:build_app`)."""
    settings = settings or Settings()
    spec = SPEC
    if brand_registry_transport is not None:
        hooks = [h for h in SPEC.lifespan_hooks if h is not OUTBOX_HOOK]
        spec = replace(SPEC, lifespan_hooks=[*hooks, outbox_lifespan(brand_registry_transport)])
    app = create_app(spec, settings)
    app.state.outbox_metrics = OutboxMetrics(app.state.metrics.registry, prefix=METRICS_PREFIX)
    return app
