"""Two gateway replicas on one database, both running their webhook workers: every event is
enqueued once per subscription and delivered once, whichever replica reads or sends it (the
cursor rows locked on PostgreSQL, deliveries claimed with SKIP LOCKED and a lease)."""

import asyncio
from collections import Counter
from typing import Any

from gateway.tests.conftest import client_of
from gateway.tests.event_stubs import FeedStub, Receiver
from gateway.tests.test_events import new_client
from kit.testing import Harness


async def test_two_replicas_deliver_each_event_once(
    events_gateway: Harness,
    make_events_gateway: Any,
    feed_stubs: dict[str, FeedStub],
    webhook_receiver: Receiver,
) -> None:
    key = await new_client(
        events_gateway.app, ["webhooks:manage", "brands:read", "certificates:read"]
    )
    async with client_of(events_gateway.app, api_key=key) as caller:
        for name in ("a", "b", "c"):
            response = await caller.post(
                "/api/v1/webhooks",
                json={
                    "url": f"{webhook_receiver.url}/hooks/{name}",
                    "event_types": ["brand.*", "certificate.*"],
                },
            )
            assert response.status_code == 201, response.text
            webhook_receiver.secrets.append(response.json()["secret"])
    settings = {"webhooks_enabled": True, "webhook_poll_seconds": 0.01, "webhook_batch_size": 7}
    made: list[str] = []
    async with make_events_gateway(**settings), make_events_gateway(**settings):
        for round in range(10):
            for stub, kind in (
                (feed_stubs["brand_registry"], "brand.created"),
                (feed_stubs["certification"], "certificate.created"),
            ):
                made += [stub.add(kind)["id"] for _ in range(round % 3 + 1)]
            await asyncio.sleep(0.03)
        for _ in range(200):
            if len(webhook_receiver.received) >= 3 * len(made):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    deliveries = Counter((r.path, r.event_id) for r in webhook_receiver.received)
    assert all(r.verified_by for r in webhook_receiver.received)
    assert sorted(deliveries) == sorted((f"/hooks/{n}", i) for n in "abc" for i in made)
    assert set(deliveries.values()) == {1}
