"""The assessment service on a real, migrated database for every test of this folder; the
data services it reads are stand-ins behind `httpx.MockTransport`."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from assessment.app import SPEC, build_app
from assessment.models import metadata
from assessment.settings import Settings
from kit.auth import write_keypair
from kit.testing import Harness, ServiceTokens, running_service

from .fakes import FakeDataServices

DEADLINE_SECONDS = 1.0


@pytest.fixture(scope="session")
def service_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("assessment-keys")
    write_keypair(directory, "assessment")
    return directory


@pytest.fixture(scope="session")
def data_services(service_keys: Path) -> FakeDataServices:
    return FakeDataServices(public_key=(service_keys / "assessment.pub").read_bytes())


@pytest.fixture(scope="session")
async def assessment_service(
    service_tokens: ServiceTokens,
    tmp_path_factory: pytest.TempPathFactory,
    service_keys: Path,
    data_services: FakeDataServices,
) -> AsyncIterator[Harness]:
    def build(settings: Settings) -> FastAPI:
        app = build_app(settings)
        app.state.stats_transport = data_services.transport()
        return app

    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("assessment"),
        default_scopes=("assessments:read", "assessments:write", "assessments:publish"),
        service_private_key_file=service_keys / "assessment.pem",
        brand_registry_url="http://brand-registry.test",
        certification_url="http://certification.test",
        inspection_url="http://inspection.test",
        stats_deadline_seconds=DEADLINE_SECONDS,
        stats_retry_backoff_seconds=0.01,
        load_demo=False,
    ) as harness:
        yield harness


@pytest.fixture
async def service(
    assessment_service: Harness, data_services: FakeDataServices
) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield assessment_service
    await assessment_service.reset()
    data_services.reset()
