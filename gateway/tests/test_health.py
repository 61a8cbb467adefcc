from kit.testing import HealthChecks


class TestHealth(HealthChecks):
    """The gateway's own health, metrics and migrations."""
