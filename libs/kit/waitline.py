"""Requests waiting for a shared resource (a connection, a slot), served in the order they came."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WaitLine(Generic[T]):
    """A line of waiting requests: `hand` gives a value straight to the one that has waited
    longest.

    Putting the value where anyone may take it and merely waking a waiter is not fair: a
    request arriving before the woken one runs takes the value, and the waiter has to queue
    again at the back. Under sustained load some requests then wait many times longer than
    the rest. Measured at c=64 through the gateway (`bench/gateway_bench.py`, case (b),
    2026-11-28): with the database pool handing out connections this way the brand registry's
    slowest request went from 15.6 s to 0.42 s at the same requests/s (see `FirstComePool`).
    """

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[T]] = deque()

    @property
    def has_waiters(self) -> bool:
        """Whether requests are in line (one arriving now should join it)."""
        return bool(self._waiters)

    def hand(self, value: T) -> bool:
        """Give `value` to the request that has waited longest; False if none is waiting."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(value)
                return True
        return False

    async def wait(
        self,
        seconds: float | None,
        timed_out: Callable[[], BaseException],
        give_back: Callable[[T], None],
    ) -> T:
        """The value handed to this request; `timed_out()` is raised after `seconds` (None:
        no limit). A request that stops waiting (cancelled) just after a value was handed to
        it passes the value to `give_back`, so that it is not lost."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if seconds is None else loop.call_later(seconds, _expire, waiter, timed_out)
        try:
            return await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                give_back(waiter.result())
            raise
        finally:
            if timer is not None:
                timer.cancel()


def _expire(waiter: asyncio.Future[Any], timed_out: Callable[[], BaseException]) -> None:
    if not waiter.done():
        waiter.set_exception(timed_out())
