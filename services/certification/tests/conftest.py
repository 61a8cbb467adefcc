"""The certification service on a real, migrated database for every test of this folder."""

from collections.abc import AsyncIterator

import pytest

from certification.app import SPEC, build_app
from certification.models import metadata
from certification.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
async def certification_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("certification"),
        default_scopes=("certificates:read", "certificates:write"),
    ) as harness:
        yield harness


@pytest.fixture
async def service(certification_service: Harness) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield certification_service
    await certification_service.reset()
