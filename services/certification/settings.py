"""Settings of the certification service, read from `CERTIFICATION_*` variables."""

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.dates import DEFAULT_VALIDITY_HORIZON_YEARS
from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CERTIFICATION_", extra="ignore")

    service_name: ClassVar[str] = "certification"

    # How long change events stay in the feed, and how often due ones are numbered.
    events_retention_days: int = Field(default=400, ge=1, le=36_500)
    events_sequence_seconds: float = Field(default=1.0, gt=0, le=60)

    standards_file: Path | None = None
    kinds_file: Path | None = None
    default_validity_years: int = Field(default=3, ge=1, le=10)
    # How far ahead of today a certificate's expiry may lie (kit.dates).
    validity_horizon_years: int = Field(default=DEFAULT_VALIDITY_HORIZON_YEARS, ge=1, le=100)
    suspension_limit_months: int = Field(default=6, ge=1, le=60)
    timezone: str = "Asia/Shanghai"
    import_batch_size: int = Field(default=1000, ge=10, le=10_000)
    # The daily sweep emitting certificate.expiring_soon and certificate.suspension_overdue.
    alert_thresholds_days: list[Annotated[int, Field(ge=1, le=3650)]] = Field(
        default=[90, 30, 7], min_length=1, max_length=20
    )
    alert_sweep_enabled: bool = True
    alert_sweep_interval_seconds: float = Field(default=86_400, gt=0, le=31 * 86_400)
    alert_sweep_delay_seconds: float = Field(default=60, ge=0, le=86_400)

    @property
    def standards_path(self) -> Path:
        """The standards catalogue: configured, or `certification_standards.json` in config."""
        return self.standards_file or self.config_dir / "certification_standards.json"

    @property
    def kinds_path(self) -> Path:
        """The certificate and licence kinds: configured, or `certificate_kinds.json` in config."""
        return self.kinds_file or self.config_dir / "certificate_kinds.json"

    def today(self) -> date:
        """Today's date in the bureau's time zone."""
        return datetime.now(ZoneInfo(self.timezone)).date()
