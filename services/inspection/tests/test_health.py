from kit.testing import HealthChecks


class TestHealth(HealthChecks):
    """The inspection service's health, metrics and migrations."""
