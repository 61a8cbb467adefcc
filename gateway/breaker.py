"""A circuit breaker per backend: closed → open after consecutive failures → half-open probe."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class CircuitBreaker:
    """Tracks one backend. `allow()` before a call, then `success()` or `failure()`."""

    name: str
    failure_threshold: int
    reset_seconds: float
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probe_in_flight: bool = field(default=False, repr=False)

    def allow(self) -> bool:
        """Whether a call may go to the backend now (one probe at a time when half-open)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and time.monotonic() - self.opened_at >= self.reset_seconds:
            self.state = HALF_OPEN
            self._probe_in_flight = False
        if self.state == HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def retry_after(self) -> int:
        remaining = self.reset_seconds - (time.monotonic() - self.opened_at)
        return max(int(remaining + 0.999), 1)

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self._probe_in_flight = False

    def failure(self) -> None:
        self.failures += 1
        self._probe_in_flight = False
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = OPEN
            self.opened_at = time.monotonic()
