"""Request and response shapes of the gateway's own endpoints."""

from __future__ import annotations

from datetime import datetime

from limits import parse_many
from pydantic import BaseModel, Field, field_validator

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
