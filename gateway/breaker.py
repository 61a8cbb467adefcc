"""A circuit breaker per backend: closed → open after consecutive failures → half-open probe."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class CircuitBreaker:
    """Tracks one backend. Each call goes through `call()`, which gives a `BreakerCall` (or
    None while the circuit is open) whose verdict is `succeeded()` or `failed()`."""

    name: str
    failure_threshold: int
    reset_seconds: float
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probe_in_flight: bool = field(default=False, repr=False)

    def call(self) -> BreakerCall | None:
        """A call the backend may take now, or None while the circuit is open (when
        half-open, one probe at a time)."""
        if self.state == CLOSED:
            return BreakerCall(self, probe=False)
        if self.state == OPEN and time.monotonic() - self.opened_at >= self.reset_seconds:
            self.state = HALF_OPEN
            self._probe_in_flight = False
        if self.state == HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return BreakerCall(self, probe=True)
        return None

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


class BreakerCall:
    """One call through the breaker, as a context that always ends with a verdict.

    The backend's answer gives the verdict (`succeeded()` or `failed()`). A call left
    without one (the client went away, the task was cancelled, anything raised before the
    backend answered) has taught nothing about the backend: left closed, the breaker counts
    nothing, but a half-open probe counts as failed, so the circuit opens again and the next
    probe goes after the reset period instead of the breaker waiting for good on a probe
    that will never report.
    """

    __slots__ = ("_breaker", "_done", "probe")

    def __init__(self, breaker: CircuitBreaker, *, probe: bool) -> None:
        self._breaker = breaker
        self.probe = probe
        self._done = False

    def succeeded(self) -> None:
        if not self._done:
            self._done = True
            self._breaker.success()

    def failed(self) -> None:
        if not self._done:
            self._done = True
            self._breaker.failure()

    def __enter__(self) -> BreakerCall:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._done and self.probe:
            self.failed()
