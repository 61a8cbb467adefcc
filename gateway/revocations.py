"""Revocations reach every gateway replica at once: a Redis channel on which a replica that
revokes or rotates a key (or the command-line tool) announces it, and every replica that
hears it drops its cached credentials. Without Redis there is one replica, which drops its
own cache directly.

A broadcast can be missed while Redis is out of reach: stopped (the subscription breaks) or
frozen (the subscription stays open and nothing comes through it, nor do the listener's
pings). A replica that has been out of touch for more than `OUT_OF_TOUCH_SECONDS` drops its
cached credentials as soon as it hears from Redis again, and one that reconnects does so
on subscribing, so no revocation announced meanwhile is missed for longer than the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = structlog.get_logger("gateway.revocations")
RECONNECT_SECONDS = 1.0
PING_SECONDS = 0.5
OUT_OF_TOUCH_SECONDS = 1.0
"""Nothing heard from Redis for this long (two pings unanswered): a broadcast may be lost."""
RESUBSCRIBE_SECONDS = 3.0
"""Nothing heard for this long: the subscription is given up and made afresh."""
SUBSCRIBE_TIMEOUT_SECONDS = 1.0


def channel_name(prefix: str) -> str:
    return f"{prefix}:revocations"


class ChannelSilent(Exception):
    """Redis has not answered the listener's pings for `RESUBSCRIBE_SECONDS`."""


def _client(redis_url: str, timeout: float) -> AsyncRedis:
    return AsyncRedis.from_url(
        redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class RevocationBus:
    """Publishes revocations and, while started, calls `on_revocation` for each one heard
    (and whenever one may have been missed)."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        prefix: str,
        on_revocation: Callable[[], None],
        timeout: float = 0.05,
    ) -> None:
        self.channel = channel_name(prefix)
        self._on_revocation = on_revocation
        # Publishing happens on a request's path, so it waits no longer than a rate-limit
        # call; the listener waits longer for its subscription to be confirmed.
        self._redis = _client(redis_url, timeout) if redis_url else None
        self._listener = _client(redis_url, SUBSCRIBE_TIMEOUT_SECONDS) if redis_url else None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        if self._listener is not None:
            self._task = asyncio.create_task(self._listen(self._listener))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def publish(self) -> None:
        """Tell every replica (this one included) to drop its cached credentials."""
        self._on_revocation()
        if self._redis is None:
            return
        try:
            await self._redis.publish(self.channel, b"revoked")
        except (RedisError, OSError) as exc:
            # The other replicas drop their caches when they hear from Redis again.
            logger.warning("revocation_not_broadcast", error=type(exc).__name__)

    async def _listen(self, redis: AsyncRedis) -> None:
        lost = False
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    # Anything missed while disconnected is covered by dropping the cache now.
                    self._on_revocation()
                    if lost:
                        lost = False
                        logger.warning("revocation_channel_restored")
                    await self._follow(pubsub)
            except (RedisError, OSError, ChannelSilent) as exc:
                if not lost:
                    lost = True
                    logger.warning("revocation_channel_lost", error=type(exc).__name__)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _follow(self, pubsub: PubSub) -> None:
        """Hand on every revocation heard, pinging Redis while the channel is quiet; raise
        `ChannelSilent` when Redis stops answering."""
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        out_of_touch = False
        while True:
            message = await pubsub.get_message(timeout=PING_SECONDS)
            now = loop.time()
            if message is not None:
                heard = now
                if out_of_touch or message.get("type") == "message":
                    out_of_touch = False
                    self._on_revocation()
            elif now - heard > RESUBSCRIBE_SECONDS:
                raise ChannelSilent(f"no answer from Redis for {now - heard:.1f} s")
            elif now - heard > OUT_OF_TOUCH_SECONDS:
                out_of_touch = True
            if now - pinged >= PING_SECONDS:
                await pubsub.ping()
                pinged = now

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._redis, self._listener):
            if client is not None:
                await client.aclose()


def announce(redis_url: str | None, prefix: str) -> bool:
    """From outside the gateway (the command-line tool): broadcast a revocation."""
    if not redis_url:
        return False
    client = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.publish(channel_name(prefix), b"revoked")
        return True
    except RedisError:
        return False
    finally:
        client.close()
