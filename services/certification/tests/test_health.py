from kit.testing import HealthChecks


class TestHealth(HealthChecks):
    """The certification service's health, metrics and migrations."""
