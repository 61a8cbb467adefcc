"""The sample service, migrated on a real database, for the kit's HTTP-level tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kit.testing import Harness, ServiceTokens, running_service
from kit.tests.sample_app import SPEC, SampleSettings, build_app, metadata


@pytest.fixture(scope="session")
async def sample_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=SampleSettings,
        tokens=service_tokens,
        tmp_dir=Path(tmp_path_factory.mktemp("sample")),
        default_scopes=("widgets:read", "widgets:write"),
    ) as harness:
        yield harness


@pytest.fixture
async def sample(sample_service: Harness) -> AsyncIterator[Harness]:
    yield sample_service
    await sample_service.reset()
