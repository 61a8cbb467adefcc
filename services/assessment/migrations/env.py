"""Alembic environment of the assessment service."""

from assessment.app import VERSION_TABLE
from assessment.models import metadata
from assessment.settings import Settings
from kit.migrations import run_env

run_env(metadata=metadata, version_table=VERSION_TABLE, default_url=Settings().database_url)
