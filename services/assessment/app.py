"""The assessment app, built by the kit's factory."""

from pathlib import Path

from fastapi import FastAPI

from assessment.catalogue import load_catalogue
from assessment.demo import demo_lifespan
from assessment.evidence import evidence_lifespan
from assessment.models import idempotency_record
from assessment.routes import router
from assessment.settings import Settings
from assessment.sources import stats_lifespan
from kit.app import ServiceSpec, create_app
from kit.events import events_lifespan, events_router

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "assessment_alembic_version"

SPEC = ServiceSpec(
    name="assessment",
    title="Assessment",
    description="County standings against the year's quality revitalization targets (考核).",
    version="1.0.0",
    routers=[router, events_router("assessment")],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
    lifespan_hooks=[events_lifespan(), stats_lifespan, evidence_lifespan, demo_lifespan],
    load_catalogue=load_catalogue,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory assessment.app:build_app`)."""
    return create_app(SPEC, settings or Settings())
