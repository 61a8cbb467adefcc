"""The gateway service on a real, migrated database for every test of this folder."""

from collections.abc import AsyncIterator

import pytest

from gateway.app import SPEC, build_app
from gateway.models import metadata
from gateway.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
async def gateway_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("gateway"),
        default_scopes=("admin",),
    ) as harness:
        yield harness


@pytest.fixture
async def service(gateway_service: Harness) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield gateway_service
    await gateway_service.reset()
