from gateway.app import SPEC
from gateway.models import metadata
from kit.migrations import schema_drift
from kit.testing import Harness


async def test_live_and_ready(service: Harness) -> None:
    client = service.client(authenticated=False)
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "ok"


async def test_metrics_are_prometheus_text(service: Harness) -> None:
    response = await service.client(authenticated=False).get("/metrics")
    assert response.status_code == 200
    assert "http_requests_total" in response.text


async def test_migrations_match_the_models(service: Harness) -> None:
    """Autogenerate against the migrated database finds nothing to add: no drift."""
    assert await schema_drift(service.engine, metadata, SPEC.version_table) == []
