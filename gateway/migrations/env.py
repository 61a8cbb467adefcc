"""Alembic environment of the gateway service."""

from gateway.app import VERSION_TABLE
from gateway.models import metadata
from gateway.settings import Settings
from kit.migrations import run_env

run_env(metadata=metadata, version_table=VERSION_TABLE, default_url=Settings().database_url)
