"""Alembic environment of the inspection service."""

from inspection.app import VERSION_TABLE
from inspection.models import metadata
from inspection.settings import Settings
from kit.migrations import run_env

run_env(metadata=metadata, version_table=VERSION_TABLE, default_url=Settings().database_url)
