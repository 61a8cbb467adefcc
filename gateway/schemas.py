"""Request and response shapes of the gateway's own endpoints."""

from __future__ import annotations

from datetime import datetime

from limits import parse_many
from pydantic import BaseModel, Field, field_validator

from gateway.routing import ALL_SCOPES


def check_rate_limit(value: str) -> str:
    """A rate limit in the `limits` notation, e.g. `600/minute` or `10/second;500/hour`."""
    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    if not parsed:
        raise ValueError("must look like '600/minute' (count per second, minute, hour or day)")
    return value.strip()


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=list, max_length=len(ALL_SCOPES))
    rate_limit: str | None = Field(default=None, max_length=100, examples=["600/minute"])

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALL_SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {list(ALL_SCOPES)}")
        return sorted(set(value))

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
