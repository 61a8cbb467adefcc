"""The assessment service on a real, migrated database for every test of this folder; the
data services it reads are stand-ins behind `httpx.MockTransport`."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from assessment.app import SPEC, build_app
from assessment.models import metadata
from assessment.settings import Settings
from kit.auth import write_keypair
from kit.storage_testing import s3_server, s3_store_url  # noqa: F401
from kit.testing import service_fixtures

from .fakes import FakeDataServices

DEADLINE_SECONDS = 1.0
DATA_SERVICES = FakeDataServices()


def _settings(**values: Any) -> Settings:
    """The suite's settings, with the service's own key pair made in the suite's folder."""
    keys = Path(values["var_dir"]) / "assessment-keys"
    pair = write_keypair(keys, "assessment")
    DATA_SERVICES.public_key = pair.public_pem
    return Settings(service_private_key_file=keys / "assessment.pem", **values)


def _build(settings: Settings) -> FastAPI:
    app = build_app(settings)
    app.state.stats_transport = DATA_SERVICES.transport()
    return app


SCOPES = ("assessments:read", "assessments:write", "assessments:publish", "assessments:review")
OVERRIDES: dict[str, Any] = {
    "brand_registry_url": "http://brand-registry.test",
    "certification_url": "http://certification.test",
    "inspection_url": "http://inspection.test",
    "stats_deadline_seconds": DEADLINE_SECONDS,
    "stats_retry_backoff_seconds": 0.01,
    "load_demo": False,
}
assessment_service, service = service_fixtures(
    spec=SPEC,
    metadata=metadata,
    build_app=_build,
    settings_factory=_settings,
    default_scopes=SCOPES,
    **OVERRIDES,
)


@pytest.fixture(autouse=True)
def data_services() -> Iterator[FakeDataServices]:
    """The stand-in data services, back to empty answers after each test."""
    yield DATA_SERVICES
    DATA_SERVICES.reset()
