"""Per-client rate limits on the `limits` library: in memory, or in Redis so that several
gateway replicas share one budget."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from redis.asyncio import ConnectionPool

logger = structlog.get_logger("gateway.ratelimit")
_MAX_WINDOWS = 100_000


@dataclass(frozen=True)
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


@lru_cache(maxsize=256)
def _parsed(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))


def storage_uri(redis_url: str | None) -> str:
    """The `limits` storage for a Redis URL, or process memory without one."""
    if not redis_url:
        return "async+memory://"
    scheme, _, rest = redis_url.partition("://")
    return f"async+{scheme}://{rest}"


class RateLimiter:
    """Counts hits per key against limits such as `600/minute`."""

    def __init__(self, *, redis_url: str | None, prefix: str) -> None:
        options: dict[str, object] = {}
        self._pool: ConnectionPool | None = None
        if redis_url:
            # Our own pool, so that shutdown closes its connections.
            self._pool = ConnectionPool.from_url(redis_url)
            options = {
                "key_prefix": prefix,
                "connection_pool": self._pool,
                "implementation": "redispy",
            }
        self.storage = storage_from_string(storage_uri(redis_url), **options)
        self._window_ends: dict[str, float] = {}

    async def hit(self, identity: str, limit: str) -> Decision | None:
        """Record one request for `identity`; None when no limit applies or the store is down."""
        items = _parsed(limit) if limit else ()
        if not items:
            return None
        try:
            decisions = []
            for item in items:
                # A fixed window as `limits`' FixedWindowRateLimiter keeps it, in one store call
                # (one round trip on Redis) where `hit` and `get_window_stats` make three.
                key = item.key_for(identity)
                count = await self.storage.incr(key, item.get_expiry())
                reset_at = await self._window_end(key, count, item)
                decisions.append(
                    Decision(
                        allowed=count <= item.amount,
                        limit=item.amount,
                        remaining=max(item.amount - count, 0),
                        reset_seconds=max(math.ceil(reset_at - time.time()), 0),
                    )
                )
        except Exception as exc:
            # A rate-limit store outage must not take the whole API down with it.
            logger.warning("rate_limit_store_unavailable", error=type(exc).__name__)
            return None
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.reset_seconds)
        return min(decisions, key=lambda d: d.remaining)

    async def _window_end(self, key: str, count: int, item: RateLimitItem) -> float:
        """When the current window of `key` ends: known here if this replica opened it or
        asked before, else from the store (once per window and replica)."""
        now = time.time()
        if count == 1:
            end = now + item.get_expiry()
        else:
            end = self._window_ends.get(key, 0.0)
            if end > now:
                return end
            end = await self.storage.get_expiry(key)
        if len(self._window_ends) >= _MAX_WINDOWS:
            self._window_ends.clear()
        self._window_ends[key] = end
        return end

    async def reset(self) -> None:
        await self.storage.reset()
        self._window_ends.clear()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
