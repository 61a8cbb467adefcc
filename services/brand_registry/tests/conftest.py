"""The brand_registry service on a real, migrated database for every test of this folder."""

from collections.abc import AsyncIterator

import pytest

from brand_registry.app import SPEC, build_app
from brand_registry.models import metadata
from brand_registry.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
async def brand_registry_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("brand_registry"),
        default_scopes=("brands:read", "brands:write"),
    ) as harness:
        yield harness


@pytest.fixture
async def service(brand_registry_service: Harness) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield brand_registry_service
    await brand_registry_service.reset()
