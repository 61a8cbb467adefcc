"""The assessment service on a real, migrated database for every test of this folder."""

from collections.abc import AsyncIterator

import pytest

from assessment.app import SPEC, build_app
from assessment.models import metadata
from assessment.settings import Settings
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
async def assessment_service(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=build_app,
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_path_factory.mktemp("assessment"),
        default_scopes=("assessments:read", "assessments:write", "assessments:publish"),
    ) as harness:
        yield harness


@pytest.fixture
async def service(assessment_service: Harness) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield assessment_service
    await assessment_service.reset()
