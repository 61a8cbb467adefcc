"""Per-client rate limits in fixed windows: in process memory, or in Redis through the
`limits` library so that several gateway replicas share one budget. Limits are written as
`limits` parses them (`600/minute`, `10/second;1000/hour`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import storage_from_string
from redis.asyncio import ConnectionPool

logger = structlog.get_logger("gateway.ratelimit")
_MAX_WINDOWS = 100_000


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """`RateLimit-*` headers, plus `Retry-After` when refused."""
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(max(self.reset_seconds, 1)).encode()))
        return headers


@dataclass(frozen=True, slots=True)
class Window:
    """One limit of one caller: its store key, its allowance and its length in seconds."""

    key: str
    amount: int
    seconds: int


@lru_cache(maxsize=256)
def _parsed(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))


class LocalWindows:
    """Fixed-window counters in this process, for a gateway without Redis.

    Kept instead of `limits`' asynchronous memory storage, which started an expiry task and
    scanned every key on each hit: counting here without awaiting is part of what brought the
    gateway's added p50 at c=1 from +1.01 ms to about +0.5 ms (`bench/gateway_bench.py`, runs
    of 2026-11-28, gateway/README.md, Performance); timed inside the gateway that day, the
    client's log context and its rate-limit window took 24 µs of a request (median of about
    8,000 at c=1). One entry per key; expired ones are dropped at most once a second.
    """

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_sweep = 0.0

    def count(self, key: str, seconds: int) -> tuple[int, float]:
        """Count one hit on `key`: the hits in its current window, and when the window ends."""
        now = time.time()
        hits, end = self._windows.get(key, (0, 0.0))
        if end <= now:
            hits, end = 0, now + seconds
        hits += 1
        self._windows[key] = (hits, end)
        if now >= self._next_sweep:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            self._next_sweep = now + 1
        return hits, end

    async def reset(self) -> None:
        self._windows.clear()

    async def close(self) -> None:
        return None


class RedisWindows:
    """Fixed windows in Redis, as `limits`' FixedWindowRateLimiter keeps them, so that every
    replica counts against one budget: one round trip per hit, where `hit` and
    `get_window_stats` make three (the window's end is remembered per replica)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        scheme, _, rest = redis_url.partition("://")
        # Our own pool, so that shutdown closes its connections.
        self._pool = ConnectionPool.from_url(redis_url)
        storage = storage_from_string(
            f"async+{scheme}://{rest}",
            key_prefix=prefix,
            # limits documents `connection_pool` but types its options as float | str | bool.
            connection_pool=self._pool,  # type: ignore[arg-type]
            implementation="redispy",
        )
        if not isinstance(storage, AsyncStorage):
            raise ValueError(f"no asynchronous rate-limit storage for {scheme}://")
        self.storage = storage
        self._ends: dict[str, float] = {}

    async def count(self, key: str, seconds: int) -> tuple[int, float]:
        hits = await self.storage.incr(key, seconds)
        now = time.time()
        if hits == 1:
            end = now + seconds
        else:
            end = self._ends.get(key, 0.0)
            if end > now:
                return hits, end
            end = await self.storage.get_expiry(key)
        if len(self._ends) >= _MAX_WINDOWS:
            self._ends.clear()
        self._ends[key] = end
        return hits, end

    async def reset(self) -> None:
        await self.storage.reset()
        self._ends.clear()

    async def close(self) -> None:
        await self._pool.aclose()


class RateLimiter:
    """Counts hits per client against limits such as `600/minute`."""

    def __init__(self, *, redis_url: str | None, prefix: str) -> None:
        self.windows: LocalWindows | RedisWindows = (
            RedisWindows(redis_url, prefix) if redis_url else LocalWindows()
        )
        self._plans: dict[tuple[str, str], tuple[Window, ...]] = {}

    def _plan(self, identity: str, limit: str) -> tuple[Window, ...]:
        """The windows `identity` is counted in under `limit`, worked out once."""
        items = _parsed(limit) if limit else ()
        plan = tuple(
            Window(item.key_for(identity), item.amount, item.get_expiry()) for item in items
        )
        if len(self._plans) >= _MAX_WINDOWS:
            self._plans.clear()
        self._plans[(identity, limit)] = plan
        return plan

    async def hit(self, identity: str, limit: str) -> Decision | None:
        """Record one request for `identity`; None when no limit applies or the store is down."""
        plan = self._plans.get((identity, limit))
        if plan is None:
            plan = self._plan(identity, limit)
        if not plan:
            return None
        windows = self.windows
        try:
            if isinstance(windows, LocalWindows):
                counts = [windows.count(window.key, window.seconds) for window in plan]
            else:
                counts = [await windows.count(window.key, window.seconds) for window in plan]
        except Exception as exc:
            # A rate-limit store outage must not take the whole API down with it.
            logger.warning("rate_limit_store_unavailable", error=type(exc).__name__)
            return None
        now = time.time()
        decisions = [
            Decision(
                allowed=hits <= window.amount,
                limit=window.amount,
                remaining=max(window.amount - hits, 0),
                reset_seconds=max(math.ceil(end - now), 0),
            )
            for window, (hits, end) in zip(plan, counts, strict=True)
        ]
        if len(decisions) == 1:
            return decisions[0]
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.reset_seconds)
        return min(decisions, key=lambda d: d.remaining)

    async def reset(self) -> None:
        await self.windows.reset()

    async def close(self) -> None:
        await self.windows.close()
