"""The inspection service on a real, migrated database for every test of this folder."""

from collections.abc import AsyncIterator

import pytest

from inspection.app import SPEC, build_app
from inspection.models import metadata
from inspection.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
async def inspection_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("inspection"),
        default_scopes=("spot-checks:read", "spot-checks:write"),
    ) as harness:
        yield harness


@pytest.fixture
async def service(inspection_service: Harness) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield inspection_service
    await inspection_service.reset()
