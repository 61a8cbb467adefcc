"""Alembic environment of the certification service."""

from certification.app import VERSION_TABLE
from certification.models import metadata
from certification.settings import Settings
from kit.migrations import run_env

run_env(metadata=metadata, version_table=VERSION_TABLE, default_url=Settings().database_url)
