"""The inspection app, built by the kit's factory."""

from pathlib import Path

from fastapi import FastAPI

from inspection.models import idempotency_record
from inspection.routes import router
from inspection.settings import Settings
from kit.app import ServiceSpec, create_app

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "inspection_alembic_version"

SPEC = ServiceSpec(
    name="inspection",
    title="Inspection",
    description="Supervision spot-check results (監督抽查) at national, provincial and city level.",
    version="1.0.0",
    routers=[router],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory inspection.app:build_app`)."""
    return create_app(SPEC, settings or Settings())
