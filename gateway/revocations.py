"""Revocations reach every gateway replica at once: a Redis channel on which a replica that
revokes or rotates a key (or the command-line tool) announces it, and every replica that
hears it drops its cached credentials. Without Redis there is one replica, which drops its
own cache directly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

logger = structlog.get_logger("gateway.revocations")
RECONNECT_SECONDS = 1.0


def channel_name(prefix: str) -> str:
    return f"{prefix}:revocations"


class RevocationBus:
    """Publishes revocations and, while started, calls `on_revocation` for each one heard."""

    def __init__(
        self, *, redis_url: str | None, prefix: str, on_revocation: Callable[[], None]
    ) -> None:
        self.channel = channel_name(prefix)
        self._on_revocation = on_revocation
        self._redis = AsyncRedis.from_url(redis_url) if redis_url else None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        if self._redis is not None:
            self._task = asyncio.create_task(self._listen(self._redis))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def publish(self) -> None:
        """Tell every replica (this one included) to drop its cached credentials."""
        self._on_revocation()
        if self._redis is None:
            return
        try:
            await self._redis.publish(self.channel, b"revoked")
        except RedisError as exc:
            logger.warning("revocation_not_broadcast", error=str(exc))

    async def _listen(self, redis: AsyncRedis) -> None:
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    # Anything missed while disconnected is covered by dropping the cache now.
                    self._on_revocation()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_revocation()
            except RedisError as exc:
                logger.warning("revocation_channel_lost", error=str(exc))
                await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()


def announce(redis_url: str | None, prefix: str) -> bool:
    """From outside the gateway (the command-line tool): broadcast a revocation."""
    if not redis_url:
        return False
    client = Redis.from_url(redis_url)
    try:
        client.publish(channel_name(prefix), b"revoked")
        return True
    except RedisError:
        return False
    finally:
        client.close()
