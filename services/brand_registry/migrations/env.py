"""Alembic environment of the brand_registry service."""

from brand_registry.app import VERSION_TABLE
from brand_registry.models import metadata
from brand_registry.settings import Settings
from kit.migrations import run_env

run_env(metadata=metadata, version_table=VERSION_TABLE, default_url=Settings().database_url)
