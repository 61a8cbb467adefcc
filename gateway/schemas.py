"""Request and response shapes of the gateway's own endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.routing import ALL_SCOPES
from kit.identifiers import CountyCode
from kit.schemas import StrictModel

MAX_COUNTIES = 64


def check_rate_limit(value: str) -> str:
    """A rate limit in the `limits` notation, e.g. `600/minute` or `10/second;500/hour`."""
    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    if not parsed:
        raise ValueError("must look like '600/minute' (count per second, minute, hour or day)")
    return value.strip()


def _known_scopes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {list(ALL_SCOPES)}")
    return sorted(set(value))


def _distinct_counties(value: list[str] | None) -> list[str] | None:
    return None if value is None else sorted(set(value))


_COUNTIES_DESCRIPTION = (
    "GB/T 2260 codes of the counties and districts (of config/regions.json) the client reports "
    "for: it writes only their records and reads only theirs unless it holds city:read. "
    "Empty: a city-wide client. A bound client never holds admin or assessments:review."
)


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=list, max_length=len(ALL_SCOPES))
    rate_limit: str | None = Field(default=None, max_length=100, examples=["600/minute"])
    county_codes: list[CountyCode] = Field(
        default_factory=list,
        max_length=MAX_COUNTIES,
        description=_COUNTIES_DESCRIPTION,
        examples=[["320323"]],
    )

    _scopes = field_validator("scopes")(_known_scopes)
    _counties = field_validator("county_codes")(_distinct_counties)

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        return None if value is None else check_rate_limit(value)


class ClientUpdate(StrictModel):
    """A change to a client: the fields sent replace the stored ones, the others stay."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    scopes: list[str] | None = Field(default=None, max_length=len(ALL_SCOPES))
    rate_limit: str | None = Field(default=None, max_length=100, examples=["600/minute"])
    county_codes: list[CountyCode] | None = Field(
        default=None, max_length=MAX_COUNTIES, description=_COUNTIES_DESCRIPTION
    )

    _scopes = field_validator("scopes")(_known_scopes)
    _counties = field_validator("county_codes")(_distinct_counties)

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        return None if value is None else check_rate_limit(value)


class KeyRead(BaseModel):
    id: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ClientRead(BaseModel):
    id: str
    name: str
    scopes: list[str]
    county_codes: list[str]
    rate_limit: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    keys: list[KeyRead]


class NewClientRead(ClientRead):
    api_key: str = Field(description="The client's API key, shown this once only.")


class KeyRotationRead(BaseModel):
    client_id: str
    key_id: str
    api_key: str = Field(description="The new API key, shown this once only.")
    revoked_key_ids: list[str]


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105
    expires_in: int
    scope: str


EVENT_TYPE_PATTERN = r"^[a-z_]+(\.[a-z_]+|\.\*)$"
MAX_EVENT_TYPES = 32


class CloudEvent(BaseModel):
    """One change, as CloudEvents 1.0 JSON (with the `sequence` extension)."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field(examples=["1.0"])
    id: str
    source: str = Field(examples=["/brand_registry"])
    type: str = Field(examples=["brand.status_changed"])
    time: str = Field(
        json_schema_extra={"format": "date-time"}, examples=["2026-12-02T06:00:00.123456Z"]
    )
    subject: str | None = Field(default=None, examples=["brands/42"])
    datacontenttype: str = "application/json"
    sequence: str = Field(
        description="The event's position in its service's feed: 20 zero-padded digits."
    )
    countycode: str | None = Field(default=None, description="The record's county, if any.")
    data: dict[str, Any]


class EventFeedMeta(BaseModel):
    completeness: dict[str, str] = Field(
        description="For each data service `ok`, or why its events are missing from this page "
        "(its position in `next` is then where it was).",
        examples=[{"brand_registry": "ok", "certification": "timeout: no answer within 5 s"}],
    )


class EventFeedRead(BaseModel):
    items: list[CloudEvent]
    next: str = Field(description="The cursor to send as `after` for the events after these.")
    meta: EventFeedMeta


class WebhookCreate(StrictModel):
    url: str = Field(min_length=1, max_length=2000, examples=["https://receiver.example/hooks"])
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=100)]] = Field(
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description="Exact event types (`brand.status_changed`) or prefixes (`certificate.*`).",
        examples=[["brand.status_changed", "certificate.*"]],
    )
    county_codes: list[CountyCode] = Field(
        default_factory=list,
        max_length=MAX_COUNTIES,
        description="Only events of these counties (and events of no county); empty: every "
        "county the owner may read.",
    )
    description: str | None = Field(default=None, max_length=500)

    _counties = field_validator("county_codes")(_distinct_counties)


class AdminWebhookCreate(WebhookCreate):
    owner_client_id: str | None = Field(
        default=None,
        max_length=64,
        description="The client the subscription belongs to and whose scopes and counties "
        "limit what it receives (default: the caller).",
    )


class WebhookUpdate(StrictModel):
    """A change to a subscription: the fields sent replace the stored ones."""

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=100)]] | None = (
        Field(default=None, min_length=1, max_length=MAX_EVENT_TYPES)
    )
    county_codes: list[CountyCode] | None = Field(default=None, max_length=MAX_COUNTIES)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = Field(
        default=None, description="false: nothing more is enqueued until it is true again."
    )

    _counties = field_validator("county_codes")(_distinct_counties)


class WebhookRead(BaseModel):
    id: str
    owner_client_id: str
    url: str
    event_types: list[str]
    county_codes: list[str]
    description: str | None
    active: bool
    previous_secret_until: datetime | None = Field(
        description="Until when the secret rotated out still signs beside the current one."
    )
    created_at: datetime
    updated_at: datetime


class NewWebhookRead(WebhookRead):
    secret: str = Field(
        description="The signing secret (`whsec_` and base64, as Standard Webhooks specifies), "
        "shown this once only."
    )


class SecretRotationRead(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret, shown this once only.")
    previous_secret_until: datetime | None = Field(
        description="Until then deliveries carry a signature by the previous secret too."
    )


class DeliveryAttemptRead(BaseModel):
    id: str
    delivery_id: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    at: datetime


class DeadLetterRead(BaseModel):
    id: str
    event_id: str
    event_type: str
    event_source: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    dead_since: datetime | None


class ReplayRead(BaseModel):
    replayed: int = Field(description="Dead letters put back in line for delivery.")
