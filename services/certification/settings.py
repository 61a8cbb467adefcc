"""Settings of the certification service, read from `CERTIFICATION_*` variables."""

from datetime import date, datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.dates import DEFAULT_VALIDITY_HORIZON_YEARS
from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CERTIFICATION_", extra="ignore")

    service_name: ClassVar[str] = "certification"

    standards_file: Path | None = None
    default_validity_years: int = Field(default=3, ge=1, le=10)
    # How far ahead of today a certificate's expiry may lie (kit.dates).
    validity_horizon_years: int = Field(default=DEFAULT_VALIDITY_HORIZON_YEARS, ge=1, le=100)
    suspension_limit_months: int = Field(default=6, ge=1, le=60)
    timezone: str = "Asia/Shanghai"
    import_batch_size: int = Field(default=1000, ge=10, le=10_000)

    @property
    def standards_path(self) -> Path:
        """The standards catalogue: configured, or `certification_standards.json` in config."""
        return self.standards_file or self.config_dir / "certification_standards.json"

    def today(self) -> date:
        """Today's date in the bureau's time zone."""
        return datetime.now(ZoneInfo(self.timezone)).date()
