"""The brand_registry service on a real, migrated database for every test of this folder."""

from brand_registry.app import SPEC, build_app
from brand_registry.models import metadata
from brand_registry.settings import Settings
from kit.testing import service_fixtures

brand_registry_service, service = service_fixtures(
    spec=SPEC,
    metadata=metadata,
    build_app=build_app,
    settings_factory=Settings,
    default_scopes=("brands:read", "brands:write"),
    alert_sweep_enabled=False,
)
