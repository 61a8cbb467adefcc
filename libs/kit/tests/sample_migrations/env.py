from kit.migrations import run_env
from kit.tests.sample_app import metadata

run_env(metadata=metadata, version_table="sample_alembic_version", default_url="")
