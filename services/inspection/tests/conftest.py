"""The inspection service on a real, migrated database for every test of this folder.

The brand registry it notifies is played by `FakeBrandRegistry`, an HTTP peer behind an
httpx transport; the system tests in `tests/system/` use the real brand registry.
"""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from inspection.app import SPEC, build_app
from inspection.models import metadata
from inspection.settings import Settings
from inspection.tests.support import FakeBrandRegistry
from kit.auth import write_keypair
from kit.testing import Harness, service_fixtures

BRAND_REGISTRY = FakeBrandRegistry()


def build_test_app(settings: Settings) -> FastAPI:
    """The app, notifying the stand-in registry, which trusts the key its notices carry."""
    key_file = settings.service_private_key_file
    assert key_file is not None, "Settings fills in the key file under var/"
    BRAND_REGISTRY.trust(write_keypair(key_file.parent, key_file.stem).public_pem)
    return build_app(settings, brand_registry_transport=BRAND_REGISTRY.transport())


inspection_service, service = service_fixtures(
    spec=SPEC,
    metadata=metadata,
    build_app=build_test_app,
    settings_factory=Settings,
    default_scopes=("spot-checks:read", "spot-checks:write"),
    brand_registry_url="http://brand-registry.test",
    outbox_poll_seconds=0.05,
    outbox_backoff_base_seconds=0.05,
    outbox_backoff_max_seconds=0.2,
    import_batch_size=7,
    alert_sweep_enabled=False,
)


@pytest.fixture
def brand_registry(service: Harness) -> Iterator[FakeBrandRegistry]:
    """The stand-in brand registry (down until a test brings it up), reset after each test."""
    yield BRAND_REGISTRY
    BRAND_REGISTRY.reset()
