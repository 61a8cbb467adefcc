from kit.testing import HealthChecks


class TestHealth(HealthChecks):
    """The assessment service's health, metrics and migrations."""
