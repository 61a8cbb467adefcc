"""Rules of webhook subscriptions: who may subscribe to what and where, the secret and its
rotation, which events a subscription receives, the signature, and the retry schedule.

A subscription belongs to a client (its owner). It receives an event only while the owner
may read it: the owner holds the read scope of the event's type and, when bound to counties
without `city:read`, the event is of one of them (or of none). Its own `county_codes` narrow
that further. Deliveries are signed as Standard Webhooks specifies: `webhook-signature` holds
`v1,<base64 HMAC-SHA256 of id.timestamp.body>` by the current secret and, for the overlap
period after a rotation, a second one by the previous secret, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import secrets
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from gateway import repository
from gateway.models import ApiClient, WebhookAttempt, WebhookDelivery, WebhookSubscription
from gateway.routing import EVENT_SOURCES
from gateway.schemas import (
    AdminWebhookCreate,
    DeadLetterRead,
    DeliveryAttemptRead,
    NewWebhookRead,
    ReplayRead,
    SecretRotationRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from gateway.service import Identity, identity_of
from kit.auth import CITY_WIDE_READ_SCOPE
from kit.concurrency import check_if_match, make_etag
from kit.db import as_utc
from kit.errors import FieldError, NotFound, ValidationFailed
from kit.events import EVENT_TYPES
from kit.identifiers import county_code_error, new_id
from kit.pagination import Page, PageParams

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def generate_secret() -> str:
    """A signing secret: `whsec_` and 32 random bytes in base64 (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_error(url: str, allowed_hosts: Collection[str]) -> str | None:
    """Why `url` cannot receive webhooks: it must be https, unless its host is a loopback
    address or one of `allowed_hosts`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"https", "http"} or not host:
        return "must be an https URL with a host"
    if parts.fragment:
        return "must not have a fragment"
    if parts.scheme == "http" and not (
        _is_loopback(host) or host.lower() in {h.lower() for h in allowed_hosts}
    ):
        return "must use https (plain http only for loopback hosts and the allowed hosts)"
    return None


def read_scope_of(pattern: str) -> str | None:
    """The scope reading the events of a type or `prefix.*`; None for an unknown one."""
    segment, _, rest = pattern.partition(".")
    source = EVENT_SOURCES.get(segment)
    if source is None or (rest != "*" and pattern not in EVENT_TYPES):
        return None
    return source[1]


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _event_type_errors(
    field: str, patterns: Collection[str], scopes: Collection[str]
) -> list[FieldError]:
    errors = []
    for index, pattern in enumerate(patterns):
        scope = read_scope_of(pattern)
        if scope is None:
            errors.append(FieldError(f"{field}[{index}]", f"{pattern!r} is no known event type"))
        elif scope not in scopes:
            errors.append(
                FieldError(field, f"the owner cannot read {pattern} events: it lacks {scope}")
            )
    return errors


def _county_errors(
    county_codes: Collection[str], owner: Identity, region_codes: Collection[str]
) -> list[FieldError]:
    errors = []
    readable = readable_counties(owner)
    for index, code in enumerate(county_codes):
        error = county_code_error(code, region_codes)
        if error is None and readable is not None and code not in readable:
            error = f"the owner is bound to {', '.join(sorted(readable))}"
        if error:
            errors.append(FieldError(f"county_codes[{index}]", error))
    return errors


def readable_counties(owner: Identity) -> frozenset[str] | None:
    """The counties whose events the owner may receive (and events of none); None for all."""
    if not owner.county_codes or CITY_WIDE_READ_SCOPE in owner.scopes:
        return None
    return owner.county_codes


def receives(subscription: WebhookSubscription, owner: Identity, event: Mapping[str, Any]) -> bool:
    """Whether `event` (a CloudEvent) is owed to the subscription."""
    event_type = str(event.get("type", ""))
    if not any(type_matches(p, event_type) for p in subscription.event_types.split()):
        return False
    if read_scope_of(event_type) not in owner.scopes:
        return False
    county = event.get("countycode")
    if county is None:
        return True
    readable = readable_counties(owner)
    if readable is not None and county not in readable:
        return False
    wanted = subscription.county_codes.split()
    return not wanted or county in wanted


def signature(
    subscription: WebhookSubscription, *, msg_id: str, timestamp: datetime, body: str, now: datetime
) -> str:
    """The `webhook-signature` header: by the current secret, and by the previous one while
    its overlap lasts."""
    signatures = [Webhook(subscription.secret).sign(msg_id, timestamp, body)]
    until = subscription.previous_secret_until
    if subscription.previous_secret and until is not None and as_utc(until) > now:
        signatures.append(Webhook(subscription.previous_secret).sign(msg_id, timestamp, body))
    return " ".join(signatures)


def retry_delay(attempts: int, *, first: float, cap: float) -> timedelta:
    """Exponential backoff with full jitter: anywhere up to `first · 2^(attempts-1)`, capped."""
    ceiling = min(cap, first * 2 ** min(attempts - 1, 40))
    return timedelta(seconds=random.uniform(0, ceiling))


def outcome(
    delivery: WebhookDelivery,
    *,
    status_code: int | None,
    error: str | None,
    now: datetime,
    first: float,
    cap: float,
    period: float,
) -> dict[str, Any]:
    """The delivery's new state after an attempt: delivered on a 2xx, else retried later,
    or dead once the retry period is over."""
    attempts = delivery.attempts + 1
    changes: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status_code,
        "last_error": error,
    }
    if error is None:
        return {**changes, "state": repository.DELIVERED, "finished_at": now}
    if now - as_utc(delivery.retry_since) >= timedelta(seconds=period):
        return {**changes, "state": repository.DEAD, "finished_at": now}
    delay = retry_delay(attempts, first=first, cap=cap)
    return {**changes, "next_attempt_at": now + delay}


def delivery_rows(
    event: Mapping[str, Any],
    body: str,
    subscriptions: list[tuple[WebhookSubscription, Identity]],
    now: datetime,
) -> list[dict[str, Any]]:
    """One delivery row for every subscription owed the event."""
    return [
        {
            "id": new_id(),
            "subscription_id": subscription.id,
            "event_id": str(event["id"]),
            "event_type": str(event["type"]),
            "event_source": str(event.get("source", "")),
            "body": body,
            "state": repository.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "retry_since": now,
            "created_at": now,
        }
        for subscription, owner in subscriptions
        if receives(subscription, owner, event)
    ]


async def active_subscriptions(
    *, session: AsyncSession
) -> list[tuple[WebhookSubscription, Identity]]:
    """Every active subscription of an active owner, with the owner as it is now."""
    found = await repository.active_subscriptions(session=session)
    return [(subscription, identity_of(client)) for subscription, client in found]


def etag(subscription: WebhookSubscription) -> str:
    return make_etag(subscription.id, subscription.version)


def to_read(subscription: WebhookSubscription) -> WebhookRead:
    until = subscription.previous_secret_until
    return WebhookRead(
        id=subscription.id,
        owner_client_id=subscription.owner_client_id,
        url=subscription.url,
        event_types=subscription.event_types.split(),
        county_codes=subscription.county_codes.split(),
        description=subscription.description,
        active=subscription.status == "active",
        previous_secret_until=as_utc(until) if until else None,
        created_at=as_utc(subscription.created_at),
        updated_at=as_utc(subscription.updated_at),
    )


async def owner_of(*, session: AsyncSession, client_id: str) -> Identity:
    """The active client a subscription is made for (422 naming `owner_client_id` otherwise)."""
    client: ApiClient | None = await repository.get_client(session=session, client_id=client_id)
    if client is None or client.status != "active":
        raise ValidationFailed.single("owner_client_id", "no active client has this id")
    return identity_of(client)


def _check(
    *,
    url: str | None,
    event_types: Collection[str] | None,
    county_codes: Collection[str] | None,
    owner: Identity,
    allowed_hosts: Collection[str],
    region_codes: Collection[str],
) -> None:
    errors = []
    if url is not None and (error := url_error(url, allowed_hosts)):
        errors.append(FieldError("url", error))
    if event_types is not None:
        errors += _event_type_errors("event_types", event_types, owner.scopes)
    if county_codes is not None:
        errors += _county_errors(county_codes, owner, region_codes)
    if errors:
        raise ValidationFailed(errors)


async def create_subscription(
    *,
    session: AsyncSession,
    data: WebhookCreate,
    owner: Identity,
    allowed_hosts: Collection[str],
    region_codes: Collection[str],
    idempotency_key: str | None = None,
) -> NewWebhookRead:
    """A new active subscription; its secret is returned this once, and again to a retry of
    the same create with the same `Idempotency-Key` (the same key with another body is a
    422 naming it)."""
    digest = hashlib.sha256(
        json.dumps(data.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    if idempotency_key is not None:
        earlier = await repository.subscription_by_idempotency_key(
            session=session, owner_client_id=owner.client_id, key=idempotency_key
        )
        if earlier is not None:
            if earlier.request_digest != digest:
                raise ValidationFailed.single(
                    "Idempotency-Key", "was used before for a request with another body"
                )
            return NewWebhookRead(**to_read(earlier).model_dump(), secret=earlier.secret)
    _check(
        url=data.url,
        event_types=data.event_types,
        county_codes=data.county_codes,
        owner=owner,
        allowed_hosts=allowed_hosts,
        region_codes=region_codes,
    )
    now = utcnow()
    subscription = WebhookSubscription(
        id=new_id(),
        owner_client_id=owner.client_id,
        url=data.url,
        event_types=" ".join(dict.fromkeys(data.event_types)),
        county_codes=" ".join(data.county_codes),
        description=data.description,
        secret=generate_secret(),
        idempotency_key=idempotency_key,
        request_digest=digest if idempotency_key is not None else None,
        created_at=now,
        updated_at=now,
    )
    await repository.add_subscription(session=session, subscription=subscription)
    return NewWebhookRead(**to_read(subscription).model_dump(), secret=subscription.secret)


async def create_for_admin(
    *,
    session: AsyncSession,
    data: AdminWebhookCreate,
    caller: Identity,
    allowed_hosts: Collection[str],
    region_codes: Collection[str],
    idempotency_key: str | None = None,
) -> NewWebhookRead:
    """A subscription made by an administrator, for itself or for another client."""
    owner = caller
    if data.owner_client_id is not None and data.owner_client_id != caller.client_id:
        owner = await owner_of(session=session, client_id=data.owner_client_id)
    plain = WebhookCreate.model_validate(data.model_dump(exclude={"owner_client_id"}))
    return await create_subscription(
        session=session,
        data=plain,
        owner=owner,
        allowed_hosts=allowed_hosts,
        region_codes=region_codes,
        idempotency_key=idempotency_key,
    )


async def subscription_of(
    *, session: AsyncSession, subscription_id: str, owner_client_id: str | None
) -> WebhookSubscription:
    """The subscription with this id (of this owner, when given); 404 otherwise."""
    found = await repository.get_subscription(session=session, subscription_id=subscription_id)
    if found is None or (owner_client_id is not None and found.owner_client_id != owner_client_id):
        raise NotFound(f"No webhook subscription with id {subscription_id!r}.")
    return found


async def list_subscriptions(
    *, session: AsyncSession, page: PageParams, owner_client_id: str | None
) -> Page[WebhookRead]:
    found = await repository.list_subscriptions(
        session=session, page=page, owner_client_id=owner_client_id
    )
    return found.map(to_read)


async def update_subscription(
    *,
    session: AsyncSession,
    subscription: WebhookSubscription,
    data: WebhookUpdate,
    if_match: str | None,
    allowed_hosts: Collection[str],
    region_codes: Collection[str],
) -> WebhookSubscription:
    """Change what was sent, checked against the owner as it is now (If-Match required)."""
    check_if_match(if_match, etag(subscription))
    owner = await owner_of(session=session, client_id=subscription.owner_client_id)
    _check(
        url=data.url,
        event_types=data.event_types,
        county_codes=data.county_codes,
        owner=owner,
        allowed_hosts=allowed_hosts,
        region_codes=region_codes,
    )
    if data.url is not None:
        subscription.url = data.url
    if data.event_types is not None:
        subscription.event_types = " ".join(dict.fromkeys(data.event_types))
    if data.county_codes is not None:
        subscription.county_codes = " ".join(data.county_codes)
    if "description" in data.model_fields_set:
        subscription.description = data.description
    if data.active is not None:
        subscription.status = "active" if data.active else "disabled"
    subscription.version += 1
    subscription.updated_at = utcnow()
    await repository.flush(session=session)
    return subscription


async def delete_subscription(*, session: AsyncSession, subscription: WebhookSubscription) -> None:
    """The subscription is gone with its pending deliveries and its log."""
    await repository.delete_subscription(session=session, subscription_id=subscription.id)


async def rotate_secret(
    *, session: AsyncSession, subscription: WebhookSubscription, overlap_seconds: float
) -> SecretRotationRead:
    """A new secret, returned this once; the current one signs beside it for the overlap."""
    now = utcnow()
    subscription.previous_secret = subscription.secret if overlap_seconds > 0 else None
    subscription.previous_secret_until = (
        now + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    )
    subscription.secret = generate_secret()
    subscription.version += 1
    subscription.updated_at = now
    await repository.flush(session=session)
    return SecretRotationRead(
        id=subscription.id,
        secret=subscription.secret,
        previous_secret_until=subscription.previous_secret_until,
    )


def _attempt_read(attempt: WebhookAttempt) -> DeliveryAttemptRead:
    read = DeliveryAttemptRead.model_validate(attempt, from_attributes=True)
    return read.model_copy(update={"at": as_utc(attempt.at)})


async def list_attempts(
    *, session: AsyncSession, subscription: WebhookSubscription, page: PageParams
) -> Page[DeliveryAttemptRead]:
    found = await repository.list_attempts(
        session=session, subscription_id=subscription.id, page=page
    )
    return found.map(_attempt_read)


def _dead_read(delivery: WebhookDelivery) -> DeadLetterRead:
    return DeadLetterRead(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        event_source=delivery.event_source,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=as_utc(delivery.created_at),
        dead_since=as_utc(delivery.finished_at) if delivery.finished_at else None,
    )


async def list_dead_letters(
    *, session: AsyncSession, subscription: WebhookSubscription, page: PageParams
) -> Page[DeadLetterRead]:
    found = await repository.list_dead(session=session, subscription_id=subscription.id, page=page)
    return found.map(_dead_read)


async def replay(
    *,
    session: AsyncSession,
    subscription: WebhookSubscription,
    now: datetime,
    delivery_id: str | None = None,
) -> ReplayRead:
    """Dead letters back in line, with a new retry period: one (404 unless it is a dead
    letter of the subscription), or all of them."""
    if delivery_id is not None:
        delivery = await repository.get_delivery(session=session, delivery_id=delivery_id)
        if (
            delivery is None
            or delivery.subscription_id != subscription.id
            or delivery.state != repository.DEAD
        ):
            raise NotFound(f"No dead letter with id {delivery_id!r} in this subscription.")
    count = await repository.replay_dead(
        session=session, subscription_id=subscription.id, now=now, delivery_id=delivery_id
    )
    return ReplayRead(replayed=count)
