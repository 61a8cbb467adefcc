"""Tables of the gateway service, on its own registry."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from kit.db import new_registry

registry = new_registry()
metadata = registry.metadata


class Base(SQLModel, registry=registry):
    """Base of every table of this service."""


class ApiClient(Base, table=True):
    """A calling system: its scopes, its rate limit and whether it may call at all."""

    __tablename__ = "api_client"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200, index=True)
    scopes: str = Field(default="", max_length=2000)
    county_codes: str = Field(default="", max_length=2000)
    """The GB/T 2260 codes the client is bound to, space-separated; empty for city-wide."""
    rate_limit: str = Field(max_length=100)
    status: str = Field(default="active", max_length=16, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class ApiKey(Base, table=True):
    """One API key of a client, kept only as its SHA-256 digest."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(foreign_key="api_client.id", max_length=64, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    key_prefix: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class WebhookSubscription(Base, table=True):
    """Where a client wants events delivered, which ones, and the secret that signs them."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (UniqueConstraint("owner_client_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=36)
    owner_client_id: str = Field(foreign_key="api_client.id", max_length=64, index=True)
    url: str = Field(max_length=2000)
    event_types: str = Field(max_length=2000)
    """Exact types or `prefix.*`, space-separated."""
    county_codes: str = Field(default="", max_length=2000)
    """Counties whose events are wanted, space-separated; empty for every county readable."""
    description: str | None = Field(default=None, max_length=500)
    status: str = Field(default="active", max_length=16)
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    version: int = Field(default=1)
    idempotency_key: str | None = Field(default=None, max_length=200)
    """The `Idempotency-Key` it was created with: a retry of the create answers it again."""
    request_digest: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class WebhookDelivery(Base, table=True):
    """One event owed to one subscription, until it is delivered or parked as dead."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        Index("ix_webhook_delivery_subscription_state", "subscription_id", "state"),
    )

    id: str = Field(primary_key=True, max_length=36)
    subscription_id: str = Field(
        sa_column=Column(
            String(36),
            ForeignKey("webhook_subscription.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=100)
    event_source: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    """The CloudEvent as sent, byte for byte the text that is signed."""
    state: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    """A sender's claim; once past, a sender that crashed has let it go."""
    claim: str | None = Field(default=None, max_length=36)
    """Which sender's claim holds it."""
    retry_since: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    """When the retry period began (enqueued, or replayed)."""
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class WebhookAttempt(Base, table=True):
    """The delivery log: one line per attempt to deliver."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_subscription_at", "subscription_id", "at"),)

    id: str = Field(primary_key=True, max_length=36)
    delivery_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("webhook_delivery.id", ondelete="CASCADE"), nullable=False
        )
    )
    subscription_id: str = Field(
        sa_column=Column(
            String(36),
            ForeignKey("webhook_subscription.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=100)
    attempt: int
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class EventCursor(Base, table=True):
    """How far the dispatcher has read each service's change feed."""

    __tablename__ = "event_cursor"

    backend: str = Field(primary_key=True, max_length=64)
    position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
