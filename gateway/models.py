"""Tables of the gateway service, on its own registry."""

from sqlmodel import SQLModel

from kit.db import new_registry
from kit.idempotency import idempotency_table

registry = new_registry()
metadata = registry.metadata


class Base(SQLModel, registry=registry):
    """Base of every table of this service."""


idempotency_record = idempotency_table(metadata)
