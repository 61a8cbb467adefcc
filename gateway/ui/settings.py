"""Settings of the standings page, read from `GATEWAY_UI_*` variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit.settings import DEFAULT_VAR_DIR


class UiSettings(BaseSettings):
    """Where the page reads the public API, and with which read-only key."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_UI_", extra="ignore")

    api_url: str = Field(
        default="", description="The gateway's own URL; empty: the URL the page was asked on."
    )
    read_key_file: Path = DEFAULT_VAR_DIR / "keys" / "demo-read.key"
    default_year: int | None = Field(
        default=None,
        ge=1990,
        le=2100,
        description="The year shown without ?year=; empty: the latest year with a target set.",
    )
    timeout_seconds: float = Field(default=20.0, gt=0)
    sign_in_hours: float = Field(default=8.0, gt=0, le=24 * 30)
