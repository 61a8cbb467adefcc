"""Tables of the gateway service, on its own registry."""

from datetime import datetime

from sqlalchemy import Column, DateTime
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
