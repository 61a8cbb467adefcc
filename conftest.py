"""Fixtures shared by every test suite of the repository."""

pytest_plugins = ["kit.testing"]
