"""Per-client rate limits in fixed windows: in process memory, or in Redis through the
`limits` library so that several gateway replicas share one budget. Limits are written as
`limits` parses them (`600/minute`, `10/second;1000/hour`).

When Redis fails or does not answer within its timeout (tens of milliseconds), each replica
counts in its own memory instead, from the counts it last saw in Redis: every client then
gets at most its limit per replica, with the same `RateLimit-*` headers. Requests stop
asking Redis at once; a background check asks it again every `retry_seconds`, and the
replica goes back to the shared windows when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import storage_from_string
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

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

    def __init__(self, counted: dict[str, tuple[int, float]] | None = None) -> None:
        # Each key's hits in its current window and when that window ends.
        self._windows: dict[str, tuple[int, float]] = dict(counted or {})
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

    def peek(self, key: str) -> tuple[int, float]:
        """The hits on `key` in its current window and when it ends, without counting one."""
        hits, end = self._windows.get(key, (0, 0.0))
        return (hits, end) if end > time.time() else (0, 0.0)

    async def reset(self) -> None:
        self._windows.clear()

    async def close(self) -> None:
        return None


class RedisWindows:
    """Fixed windows in Redis, as `limits`' FixedWindowRateLimiter keeps them, so that every
    replica counts against one budget: one round trip per hit, where `hit` and
    `get_window_stats` make three (the window's end is remembered per replica). Every call
    gives up after `timeout` seconds, without retrying."""

    def __init__(self, redis_url: str, prefix: str, *, timeout: float) -> None:
        scheme, _, rest = redis_url.partition("://")
        # Our own pool, so that shutdown closes its connections.
        self._pool = ConnectionPool.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
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
        self.seen: dict[str, tuple[int, float]] = {}
        """Each key's hits and window end as Redis last gave them to this replica."""

    async def count(self, key: str, seconds: int) -> tuple[int, float]:
        hits = await self.storage.incr(key, seconds)
        now = time.time()
        last = self.seen.get(key)
        if hits == 1:
            end = now + seconds
        elif last is not None and last[1] > now:
            end = last[1]
        else:
            end = await self.storage.get_expiry(key)
        if last is None and len(self.seen) >= _MAX_WINDOWS:
            self.seen.clear()
        self.seen[key] = (hits, end)
        return hits, end

    async def peek(self, key: str) -> tuple[int, float]:
        """The hits on `key` in its current window and when it ends, without counting one."""
        hits = await self.storage.get(key)
        if not hits:
            return 0, 0.0
        now = time.time()
        last = self.seen.get(key)
        end = last[1] if last is not None and last[1] > now else await self.storage.get_expiry(key)
        return hits, end

    async def answers(self) -> bool:
        """Whether Redis answers a PING within the timeout."""
        return await self.storage.check()

    async def reset(self) -> None:
        await self.storage.reset()
        self.seen.clear()

    async def close(self) -> None:
        await self._pool.aclose()


class StoreMetrics:
    """Whether the windows are shared, and the decisions made without Redis."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.shared = Gauge(
            "gateway_rate_limit_shared",
            "1 while rate-limit windows are counted in Redis, 0 while this replica counts "
            "its own (no Redis configured, or Redis did not answer)",
            registry=registry,
        )
        self.local = Counter(
            "gateway_rate_limit_local",
            "Rate-limit decisions counted in this replica's memory because Redis did not answer",
            registry=registry,
        )


class RateLimiter:
    """Counts hits per client against limits such as `600/minute`: in Redis when it is
    configured and answers, else in this process."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        prefix: str,
        timeout: float = 0.05,
        retry_seconds: float = 1.0,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self.local = LocalWindows()
        self.shared = RedisWindows(redis_url, prefix, timeout=timeout) if redis_url else None
        self.retry_seconds = retry_seconds
        self.metrics = metrics
        self._plans: dict[tuple[str, str], tuple[Window, ...]] = {}
        self._recovery: asyncio.Task[None] | None = None
        """While set, Redis has failed and this replica counts on its own."""
        if metrics is not None:
            metrics.shared.set(1 if self.shared is not None else 0)

    @property
    def per_replica(self) -> bool:
        """Whether this replica counts in its own memory (no Redis, or Redis unreachable)."""
        return self.shared is None or self._recovery is not None

    async def status(self) -> dict[str, str]:
        """Where the windows are counted, for `/health/ready`; never a failure, since the
        gateway goes on limiting without Redis."""
        if self.shared is None:
            return {"windows": "memory"}
        return {"windows": "per replica, Redis unreachable" if self.per_replica else "redis"}

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
        """Record one request for `identity`; None when no limit applies."""
        plan = self._plans.get((identity, limit))
        if plan is None:
            plan = self._plan(identity, limit)
        if not plan:
            return None
        shared = self.shared
        if shared is None or self._recovery is not None:
            counts = [self.local.count(window.key, window.seconds) for window in plan]
            if shared is not None and self.metrics is not None:
                self.metrics.local.inc()
        else:
            try:
                counts = [await shared.count(window.key, window.seconds) for window in plan]
            except Exception as error:
                # A rate-limit store outage must neither take the API down nor lift the limits.
                self._count_locally(shared, error)
                counts = [self.local.count(window.key, window.seconds) for window in plan]
                if self.metrics is not None:
                    self.metrics.local.inc()
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

    async def peek(self, identity: str, limit: str) -> Decision | None:
        """Whether `identity` may be counted once more under `limit`, without counting it:
        `allowed` is False once a window is used up (where `hit` would refuse the next);
        None when no limit applies."""
        plan = self._plans.get((identity, limit))
        if plan is None:
            plan = self._plan(identity, limit)
        if not plan:
            return None
        shared = self.shared
        if shared is None or self._recovery is not None:
            counts = [self.local.peek(window.key) for window in plan]
        else:
            try:
                counts = [await shared.peek(window.key) for window in plan]
            except Exception as error:
                self._count_locally(shared, error)
                counts = [self.local.peek(window.key) for window in plan]
        now = time.time()
        decisions = [
            Decision(
                allowed=hits < window.amount,
                limit=window.amount,
                remaining=max(window.amount - hits, 0),
                reset_seconds=max(math.ceil(end - now), 0),
            )
            for window, (hits, end) in zip(plan, counts, strict=True)
        ]
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.reset_seconds)
        return min(decisions, key=lambda d: d.remaining)

    def _count_locally(self, shared: RedisWindows, error: Exception) -> None:
        """Count in this replica from the counts last seen in Redis, until Redis answers."""
        if self._recovery is not None:
            return
        now = time.time()
        self.local = LocalWindows({k: w for k, w in shared.seen.items() if w[1] > now})
        self._recovery = asyncio.get_running_loop().create_task(self._await_store(shared))
        if self.metrics is not None:
            self.metrics.shared.set(0)
        logger.warning(
            "rate_limit_store_unavailable",
            error=type(error).__name__,
            limits="per replica until Redis answers",
        )

    async def _await_store(self, shared: RedisWindows) -> None:
        while True:
            if await shared.answers():
                break
            await asyncio.sleep(self.retry_seconds)
        self._recovery = None
        self.local = LocalWindows()
        if self.metrics is not None:
            self.metrics.shared.set(1)
        logger.warning("rate_limit_store_available_again")

    async def reset(self) -> None:
        await self.local.reset()
        if self.shared is not None:
            await self.shared.reset()

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        if self.shared is not None:
            await self.shared.close()
