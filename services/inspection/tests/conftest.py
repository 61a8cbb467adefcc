"""The inspection service on a real, migrated database for every test of this folder.

The brand registry it notifies is played by `FakeBrandRegistry`, an HTTP peer behind an
httpx transport; the system tests in `tests/system/` use the real brand registry.
"""

from collections.abc import AsyncIterator
from functools import partial

import pytest

from inspection.app import SPEC, build_app
from inspection.models import metadata
from inspection.settings import Settings
from inspection.tests.support import FakeBrandRegistry
from kit.auth import write_keypair
from kit.testing import Harness, ServiceTokens, running_service


@pytest.fixture(scope="session")
def brand_registry(tmp_path_factory: pytest.TempPathFactory) -> FakeBrandRegistry:
    return FakeBrandRegistry()


@pytest.fixture(scope="session")
async def inspection_service(
    service_tokens: ServiceTokens,
    tmp_path_factory: pytest.TempPathFactory,
    brand_registry: FakeBrandRegistry,
) -> AsyncIterator[Harness]:
    tmp_dir = tmp_path_factory.mktemp("inspection")
    pair = write_keypair(tmp_dir / "keys", "inspection")
    brand_registry.trust(pair.public_pem)
    async with running_service(
        spec=SPEC,
        metadata=metadata,
        build_app=partial(build_app, brand_registry_transport=brand_registry.transport()),
        settings_factory=Settings,
        tokens=service_tokens,
        tmp_dir=tmp_dir,
        default_scopes=("spot-checks:read", "spot-checks:write"),
        brand_registry_url="http://brand-registry.test",
        outbox_poll_seconds=0.05,
        outbox_backoff_base_seconds=0.05,
        outbox_backoff_max_seconds=0.2,
        import_batch_size=7,
    ) as harness:
        yield harness


@pytest.fixture
async def service(
    inspection_service: Harness, brand_registry: FakeBrandRegistry
) -> AsyncIterator[Harness]:
    """The running service, emptied after each test."""
    yield inspection_service
    await inspection_service.reset()
    brand_registry.reset()
