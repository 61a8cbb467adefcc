"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path(os.environ.get("QRP_VAR_DIR", "var"))
DEFAULT_CONFIG_DIR = Path(os.environ.get("QRP_CONFIG_DIR", "config"))


class ServiceSettings(BaseSettings):
    """Configuration read from `<PREFIX>_*` environment variables, with working defaults."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    service_name: ClassVar[str] = "service"

    database_url: str = ""
    database_echo: bool = False
    database_pool_size: int = Field(default=10, ge=1, le=200)
    var_dir: Path = DEFAULT_VAR_DIR
    config_dir: Path = DEFAULT_CONFIG_DIR
    log_level: str = "INFO"
    log_json: bool = True
    secret_key: SecretStr | None = None
    token_issuers: dict[str, Path] = Field(default_factory=dict)
    token_issuer_scopes: dict[str, list[str]] = Field(default_factory=dict)
    """The scopes each issuer may grant to this service (`["*"]`: any). Defaults to this
    service's entry in `config/token_issuers.json`; an issuer without an entry grants any."""
    token_leeway_seconds: int = Field(default=5, ge=0, le=300)
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    idempotency_lease_seconds: float = Field(default=15, gt=0, le=3600)
    """How long a claimed key waits for its owner before a retry may take it over (the
    owner renews it every third of this while it works)."""

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / self.service_name}.db"
        if not self.token_issuer_scopes:
            self.token_issuer_scopes = self._configured_issuer_scopes()
        if not self.token_issuers:
            keys = self.var_dir / "keys"
            self.token_issuers = {
                issuer: keys / f"{issuer}.pub" for issuer in self.token_issuer_scopes
            }
        return self

    def _configured_issuer_scopes(self) -> dict[str, list[str]]:
        path = self.config_dir / "token_issuers.json"
        configured = load_json(path).get(self.service_name) if path.exists() else None
        return dict(configured) if configured else {"gateway": ["*"]}

    def issuer_grants(self) -> dict[str, frozenset[str] | None]:
        """Each trusted issuer's grantable scopes, None where it may grant any."""
        grants: dict[str, frozenset[str] | None] = {}
        for issuer in self.token_issuers:
            scopes = self.token_issuer_scopes.get(issuer)
            grants[issuer] = None if scopes is None or "*" in scopes else frozenset(scopes)
        return grants

    @property
    def regions_file(self) -> Path:
        return self.config_dir / "regions.json"

    def region_codes(self) -> frozenset[str]:
        """The county and district codes this deployment serves."""
        return frozenset(region["code"] for region in load_json(self.regions_file))

    def region_names(self) -> dict[str, str]:
        """Each county's and district's name by its code."""
        return {region["code"]: region["name"] for region in load_json(self.regions_file)}

    def resolved_secret(self) -> bytes:
        """The signing secret for cursors: configured, or kept in a file under `var/`."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return load_or_create_secret(self.var_dir / "keys" / "secret.key")


def load_json(path: Path) -> Any:
    """Read a JSON document shipped as configuration."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def load_or_create_secret(path: Path) -> bytes:
    """Return the secret stored at `path`, creating it with owner-only permissions if absent."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
