from kit.testing import HealthChecks


class TestHealth(HealthChecks):
    """The brand_registry service's health, metrics and migrations."""
