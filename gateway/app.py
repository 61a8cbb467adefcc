"""The gateway app, built by the kit's factory."""

from pathlib import Path

from fastapi import FastAPI

from gateway.models import idempotency_record
from gateway.routes import router
from gateway.settings import Settings
from kit.app import ServiceSpec, create_app

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "gateway_alembic_version"

SPEC = ServiceSpec(
    name="gateway",
    title="Quality Revitalization Platform gateway",
    description="The public entry point: API clients, keys and scopes in front of the four services.",
    version="1.0.0",
    routers=[router],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    idempotency_table=idempotency_record,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory gateway.app:build_app`)."""
    return create_app(SPEC, settings or Settings())
