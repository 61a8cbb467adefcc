"""Webhook subscriptions and their deliveries: the API (own and admin), the URL and scope
rules, delivery to a real local receiver that verifies each signature with the
`standardwebhooks` library, retries after 500s and timeouts, dead letters after the retry
period on a fake clock, replay, secret rotation with its overlap, and the worker running in
the background."""

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from gateway import repository
from gateway.delivery import WebhookWorker
from gateway.tests.conftest import client_of
from gateway.tests.event_stubs import FakeClock, FeedStub, Receiver
from gateway.tests.test_events import new_client
from kit.testing import Harness

OWN = "/api/v1/webhooks"
ADMIN = "/api/v1/admin/webhooks"


def worker_of(harness: Harness) -> WebhookWorker:
    worker: WebhookWorker = harness.app.state.webhooks
    return worker


def clock_of(harness: Harness) -> FakeClock:
    clock = worker_of(harness).clock
    assert isinstance(clock, FakeClock)
    return clock


async def subscribe(caller: httpx.AsyncClient, receiver: Receiver, **body: Any) -> dict[str, Any]:
    body.setdefault("url", f"{receiver.url}/hooks/a")
    body.setdefault("event_types", ["brand.*"])
    response = await caller.post(OWN, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets.append(created["secret"])
    return created


async def manager(harness: Harness, *extra: str, counties: list[str] | None = None) -> str:
    return await new_client(harness.app, ["webhooks:manage", "brands:read", *extra], counties)


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["errors"]]


async def test_a_subscription_is_created_shown_changed_and_deleted(
    events_gateway: Harness, webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway)
    async with client_of(events_gateway.app, api_key=key) as caller:
        created = await subscribe(caller, webhook_receiver, description="brands")
        assert created["secret"].startswith("whsec_")
        Webhook(created["secret"])  # the library takes it as it is
        location = f"{OWN}/{created['id']}"
        shown = await caller.get(location)
        assert shown.status_code == 200
        assert "secret" not in shown.json()
        assert shown.json()["event_types"] == ["brand.*"]
        assert shown.json()["active"] is True
        assert (await caller.patch(location, json={"active": False})).status_code == 428
        stale = await caller.patch(location, json={"active": False}, headers={"If-Match": '"x"'})
        assert stale.status_code == 412
        changed = await caller.patch(
            location, json={"active": False}, headers={"If-Match": shown.headers["ETag"]}
        )
        assert changed.status_code == 200
        assert changed.json()["active"] is False
        assert changed.headers["ETag"] != shown.headers["ETag"]
        await subscribe(caller, webhook_receiver, url=f"{webhook_receiver.url}/hooks/b")
        first = (await caller.get(OWN, params={"limit": 1})).json()
        assert len(first["items"]) == 1
        assert first["next_cursor"]
        second = (await caller.get(OWN, params={"limit": 1, "cursor": first["next_cursor"]})).json()
        assert {first["items"][0]["id"], second["items"][0]["id"]} >= {created["id"]}
        assert (await caller.delete(location)).status_code == 204
        assert (await caller.get(location)).status_code == 404


async def test_clients_see_only_their_own_and_the_admin_sees_all(
    events_gateway: Harness, webhook_receiver: Receiver
) -> None:
    one, other = await manager(events_gateway), await manager(events_gateway)
    async with (
        client_of(events_gateway.app, api_key=one) as first,
        client_of(events_gateway.app, api_key=other) as second,
        client_of(events_gateway.app) as admin,
    ):
        mine = await subscribe(first, webhook_receiver)
        assert (await second.get(f"{OWN}/{mine['id']}")).status_code == 404
        assert (await second.get(OWN)).json()["items"] == []
        assert [s["id"] for s in (await admin.get(ADMIN)).json()["items"]] == [mine["id"]]
        owned = (await admin.get(ADMIN, params={"owner_client_id": "nobody"})).json()
        assert owned["items"] == []
        assert (await admin.get(f"{ADMIN}/{mine['id']}")).status_code == 200
        # The administrator subscribes on another client's behalf, within its scopes.
        owner = mine["owner_client_id"]
        body = {"url": f"{webhook_receiver.url}/hooks/c", "event_types": ["certificate.*"]}
        refused = await admin.post(ADMIN, json={**body, "owner_client_id": owner})
        assert _fields(refused) == ["event_types"]
        made = await admin.post(
            ADMIN, json={**body, "event_types": ["brand.created"], "owner_client_id": owner}
        )
        assert made.status_code == 201
        assert made.json()["owner_client_id"] == owner
        assert _fields(await admin.post(ADMIN, json={**body, "owner_client_id": "nobody"})) == [
            "owner_client_id"
        ]
    reader = await new_client(events_gateway.app, ["brands:read"])
    async with client_of(events_gateway.app, api_key=reader) as caller:
        response = await caller.get(OWN)
        assert response.status_code == 403
        assert response.json()["required_scope"] == "webhooks:manage"


async def test_urls_must_be_https_but_for_loopback_and_allowed_hosts(
    events_gateway: Harness,
) -> None:
    key = await manager(events_gateway)
    async with client_of(events_gateway.app, api_key=key) as caller:
        for url in ("http://receiver.example/hooks", "ftp://127.0.0.1/x", "https://", "not a url"):
            response = await caller.post(OWN, json={"url": url, "event_types": ["brand.*"]})
            assert _fields(response) == ["url"], url
        for url in ("https://receiver.example/hooks", "http://127.0.0.1:9/x", "http://[::1]/x"):
            response = await caller.post(OWN, json={"url": url, "event_types": ["brand.*"]})
            assert response.status_code == 201, (url, response.text)
        events_gateway.app.state.settings.webhook_allowed_hosts = ["receiver.internal"]
        try:
            allowed = await caller.post(
                OWN, json={"url": "http://receiver.internal/x", "event_types": ["brand.*"]}
            )
            assert allowed.status_code == 201
        finally:
            events_gateway.app.state.settings.webhook_allowed_hosts = []


async def test_event_types_must_be_known_and_readable_by_the_owner(
    events_gateway: Harness, webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway)
    url = f"{webhook_receiver.url}/hooks/a"
    async with client_of(events_gateway.app, api_key=key) as caller:
        assert _fields(
            await caller.post(OWN, json={"url": url, "event_types": ["brand.gone"]})
        ) == ["event_types[0]"]
        assert _fields(
            await caller.post(OWN, json={"url": url, "event_types": ["brand.*", "spot_check.*"]})
        ) == ["event_types"]
        assert _fields(await caller.post(OWN, json={"url": url, "event_types": []})) == [
            "event_types"
        ]


async def test_a_delivery_is_signed_as_standard_webhooks_specifies(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway, "certificates:read")
    async with client_of(events_gateway.app, api_key=key) as caller:
        await subscribe(caller, webhook_receiver, event_types=["brand.status_changed"])
    brands = feed_stubs["brand_registry"]
    wanted = brands.add("brand.status_changed", data={"id": "42", "to": "suspended"})
    brands.add("brand.created")
    feed_stubs["certification"].add("certificate.created")
    await worker_of(events_gateway).run_once()
    [delivery] = webhook_receiver.received
    assert delivery.verified_by == webhook_receiver.secrets
    assert delivery.event_id == wanted["id"]
    assert delivery.headers["content-type"] == "application/json"
    assert json.loads(delivery.body) == wanted
    assert int(delivery.headers["webhook-timestamp"]) > 0
    # A second cycle sends nothing again.
    await worker_of(events_gateway).run_once()
    assert len(webhook_receiver.received) == 1


async def test_a_county_bound_owner_receives_only_its_counties(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway, counties=["320323"])
    async with client_of(events_gateway.app, api_key=key) as caller:
        outside = await caller.post(
            OWN,
            json={
                "url": f"{webhook_receiver.url}/hooks/a",
                "event_types": ["brand.*"],
                "county_codes": ["320321"],
            },
        )
        assert _fields(outside) == ["county_codes[0]"]
        await subscribe(caller, webhook_receiver)
    brands = feed_stubs["brand_registry"]
    own = brands.add("brand.created", county_code="320323")
    brands.add("brand.created", county_code="320321")
    none = brands.add("brand.review_flagged")
    await worker_of(events_gateway).run_once()
    # Deliveries go out side by side, in no set order.
    assert sorted(webhook_receiver.delivered_ids()) == sorted([own["id"], none["id"]])


async def test_failures_are_retried_with_backoff_then_delivered(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    worker, clock = worker_of(events_gateway), clock_of(events_gateway)
    key = await manager(events_gateway)
    async with client_of(events_gateway.app, api_key=key) as caller:
        created = await subscribe(caller, webhook_receiver)
        webhook_receiver.script[:] = [500, ("sleep", 2.0), 503]
        event = feed_stubs["brand_registry"].add("brand.created")
        await worker.run_once()
        assert len(webhook_receiver.received) == 1
        for _ in range(3):
            await worker.run_once()  # not due yet: nothing is sent
            assert len(webhook_receiver.received) in {1, 2, 3}
            clock.advance(seconds=20 * 60)
            await worker.run_once()
        assert webhook_receiver.delivered_ids() == [event["id"]]
        assert len(webhook_receiver.received) == 4
        log = (await caller.get(f"{OWN}/{created['id']}/deliveries")).json()["items"]
    assert [(a["attempt"], a["status_code"]) for a in log] == [
        (4, 204),
        (3, 503),
        (2, None),
        (1, 500),
    ]
    assert log[2]["error"].startswith("timeout")
    assert log[2]["latency_ms"] >= 900
    assert all(a["event_id"] == event["id"] and a["event_type"] == "brand.created" for a in log)


async def test_after_the_retry_period_a_delivery_is_dead_until_replayed(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    worker, clock = worker_of(events_gateway), clock_of(events_gateway)
    key = await manager(events_gateway)
    webhook_receiver.default = 500
    async with client_of(events_gateway.app, api_key=key) as caller:
        created = await subscribe(caller, webhook_receiver)
        dead_letters = f"{OWN}/{created['id']}/dead-letters"
        events = [feed_stubs["brand_registry"].add("brand.created") for _ in range(2)]
        await worker.run_once()
        clock.advance(days=2, hours=23)
        await worker.run_once()
        assert (await caller.get(dead_letters)).json()["items"] == []
        clock.advance(hours=1, seconds=1)
        await worker.run_once()
        dead = (await caller.get(dead_letters)).json()["items"]
        assert sorted(d["event_id"] for d in dead) == sorted(e["id"] for e in events)
        assert {d["last_status_code"] for d in dead} == {500}
        attempts = len(webhook_receiver.received)
        clock.advance(days=10)
        await worker.run_once()
        assert len(webhook_receiver.received) == attempts  # dead letters are not retried
        metrics = (await caller.get("/metrics")).text
        assert "gateway_webhook_deliveries_dead 2.0" in metrics
        assert "gateway_webhook_failed_attempts_total" in metrics

        webhook_receiver.default = 200
        one = await caller.post(f"{dead_letters}/{dead[0]['id']}/replay")
        assert one.status_code == 200
        assert one.json() == {"replayed": 1}
        assert (await caller.post(f"{dead_letters}/{dead[0]['id']}/replay")).status_code == 404
        await worker.run_once()
        assert webhook_receiver.delivered_ids() == [dead[0]["event_id"]]
        assert (await caller.post(f"{dead_letters}/replay")).json() == {"replayed": 1}
        await worker.run_once()
        assert sorted(webhook_receiver.delivered_ids()) == sorted(e["id"] for e in events)
        assert (await caller.get(dead_letters)).json()["items"] == []


async def test_a_rotated_secret_keeps_signing_beside_the_new_one_for_the_overlap(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    worker, clock = worker_of(events_gateway), clock_of(events_gateway)
    key = await manager(events_gateway)
    brands = feed_stubs["brand_registry"]
    async with client_of(events_gateway.app, api_key=key) as caller:
        created = await subscribe(caller, webhook_receiver)
        old = created["secret"]
        rotated = await caller.post(f"{OWN}/{created['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        assert new.startswith("whsec_")
        webhook_receiver.secrets[:] = [old, new]
        brands.add("brand.created")
        await worker.run_once()
        assert webhook_receiver.received[-1].verified_by == [old, new]
        assert len(webhook_receiver.received[-1].headers["webhook-signature"].split(" ")) == 2

        clock.advance(hours=24, seconds=1)
        brands.add("brand.created")
        await worker.run_once()
        assert webhook_receiver.received[-1].verified_by == [new]
        assert len(webhook_receiver.received[-1].headers["webhook-signature"].split(" ")) == 1


async def test_a_disabled_subscription_gets_nothing(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway)
    async with client_of(events_gateway.app, api_key=key) as caller:
        created = await subscribe(caller, webhook_receiver)
        location = f"{OWN}/{created['id']}"
        etag = (await caller.get(location)).headers["ETag"]
        await caller.patch(location, json={"active": False}, headers={"If-Match": etag})
        feed_stubs["brand_registry"].add("brand.created")
        await worker_of(events_gateway).run_once()
    assert webhook_receiver.received == []


async def test_the_worker_delivers_in_the_background(
    make_events_gateway: Any, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    async with make_events_gateway(webhooks_enabled=True, webhook_poll_seconds=0.05) as app:
        key = await new_client(app, ["webhooks:manage", "brands:read"])
        async with client_of(app, api_key=key) as caller:
            await subscribe(caller, webhook_receiver)
            event = feed_stubs["brand_registry"].add("brand.created")
            for _ in range(100):
                if webhook_receiver.delivered_ids():
                    break
                await asyncio.sleep(0.05)
            assert webhook_receiver.delivered_ids() == [event["id"]]
            ready = (await caller.get("/health/ready")).json()
            assert ready["checks"]["webhooks"]["feeds"]["brand_registry"] == "ok"


async def test_the_worker_reads_again_at_once_only_after_a_full_batch(
    make_events_gateway: Any, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    brands = feed_stubs["brand_registry"]
    async with make_events_gateway(webhooks_enabled=False) as app:
        key = await new_client(app, ["webhooks:manage", "brands:read"])
        async with client_of(app, api_key=key) as caller:
            await subscribe(caller, webhook_receiver)
    made = [brands.add("brand.created")["id"] for _ in range(5)]
    settings = {"webhooks_enabled": True, "webhook_poll_seconds": 60, "webhook_batch_size": 2}
    async with make_events_gateway(**settings):
        for _ in range(100):
            if len(webhook_receiver.delivered_ids()) == len(made):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    assert sorted(webhook_receiver.delivered_ids()) == sorted(made)
    # Two full batches, then the last event: the worker has caught up and waits for the
    # next poll instead of asking the feed again at once.
    assert [request["after"] for request in brands.requests] == [0, 2, 4]


async def test_a_claim_whose_sender_died_is_taken_over_once_its_lease_ends(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub], webhook_receiver: Receiver
) -> None:
    worker, clock = worker_of(events_gateway), clock_of(events_gateway)
    key = await manager(events_gateway)
    async with client_of(events_gateway.app, api_key=key) as caller:
        await subscribe(caller, webhook_receiver)
    event = feed_stubs["brand_registry"].add("brand.created")
    await worker.dispatch_once()
    # A sender claims the delivery and dies before it sends it.
    async with events_gateway.app.state.sessionmaker() as session:
        now = clock()
        claimed = await repository.claim_due_deliveries(
            session=session,
            now=now,
            lease_until=now + timedelta(seconds=30),
            limit=10,
            claim="dead-sender",
        )
        await session.commit()
    assert [d.event_id for d in claimed] == [event["id"]]
    await worker.send_due()
    assert webhook_receiver.received == []
    clock.advance(seconds=31)
    await worker.send_due()
    assert webhook_receiver.delivered_ids() == [event["id"]]


async def test_a_retried_create_with_its_idempotency_key_makes_one_subscription(
    events_gateway: Harness, webhook_receiver: Receiver
) -> None:
    key = await manager(events_gateway)
    body = {"url": f"{webhook_receiver.url}/hooks/a", "event_types": ["brand.*"]}
    async with client_of(events_gateway.app, api_key=key) as caller:
        first = await caller.post(OWN, json=body, headers={"Idempotency-Key": "k-1"})
        again = await caller.post(OWN, json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        other = await caller.post(
            OWN, json={**body, "event_types": ["brand.created"]}, headers={"Idempotency-Key": "k-1"}
        )
        assert _fields(other) == ["Idempotency-Key"]
        fresh = await caller.post(OWN, json=body, headers={"Idempotency-Key": "k-2"})
        assert fresh.json()["id"] != first.json()["id"]
        assert len((await caller.get(OWN)).json()["items"]) == 2
