"""Settings of the gateway service, read from `GATEWAY_*` variables."""

import json
from pathlib import Path
from typing import Annotated, ClassVar

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from kit.settings import DEFAULT_VAR_DIR, ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: ClassVar[str] = "gateway"

    brand_registry_url: str = "http://127.0.0.1:8001"
    certification_url: str = "http://127.0.0.1:8002"
    inspection_url: str = "http://127.0.0.1:8003"
    assessment_url: str = "http://127.0.0.1:8004"

    bootstrap_admin_key: SecretStr | None = None
    bootstrap_admin_rate_limit: str = "6000/minute"
    default_rate_limit: str = "600/minute"
    anonymous_rate_limit: str = "60/minute"
    redis_url: str | None = None
    rate_limit_prefix: str = "qrp-gateway"
    redis_timeout_seconds: float = Field(default=0.05, gt=0, le=5)
    redis_retry_seconds: float = Field(default=1.0, gt=0, le=60)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    token_private_key_file: Path = DEFAULT_VAR_DIR / "keys" / "gateway.pem"
    token_issuer: str = "gateway"  # noqa: S105
    service_token_ttl_seconds: int = Field(default=60, ge=10, le=3600)
    oauth_private_key_file: Path = DEFAULT_VAR_DIR / "keys" / "gateway-oauth.pem"
    oauth_issuer: str = "qrp-gateway-oauth"
    oauth_audience: str = "qrp-api"
    oauth_token_ttl_seconds: int = Field(default=600, ge=30, le=86400)
    auth_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    auth_failures_per_address: str = "20/minute"
    """Failed authentications an address may make (`limits` notation) before its attempts
    are refused with 429, credentials unchecked, until the window ends; empty: unlimited."""
    auth_failures_per_client: str = "10/minute"
    """The same for the wrong secrets sent for one client id at /oauth/token."""

    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    pool_timeout_seconds: float = Field(default=5.0, gt=0)
    pool_size: int = Field(default=100, ge=1, le=10000)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=0.05, ge=0)
    retry_max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    openapi_cache_seconds: float = Field(default=30.0, ge=0)

    events_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """How long the merged feed waits for each service's part before naming it missing."""
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts a webhook may name over plain http (besides loopback); comma-separated or JSON."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_first_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_period_seconds: float = Field(default=3 * 86400.0, gt=0)
    """How long a delivery is retried before it is parked as a dead letter."""
    webhook_secret_overlap_seconds: float = Field(default=86400.0, ge=0)
    """How long a rotated-out secret keeps signing beside the new one."""
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_concurrency: int = Field(default=10, ge=1, le=200)
    webhooks_enabled: bool = True
    """Run the dispatcher and sender in this process (every replica may: they share the work)."""

    @field_validator("auth_failures_per_address", "auth_failures_per_client")
    @classmethod
    def _limit(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError("must look like '20/minute', or be empty") from None
        return value.strip()

    @field_validator("cors_origins", "webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # `GATEWAY_CORS_ORIGINS=https://a,https://b` as well as a JSON list.
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    def backend_urls(self) -> dict[str, str]:
        """Base URL of every backend service, by name."""
        return {
            "brand_registry": self.brand_registry_url.rstrip("/"),
            "certification": self.certification_url.rstrip("/"),
            "inspection": self.inspection_url.rstrip("/"),
            "assessment": self.assessment_url.rstrip("/"),
        }
