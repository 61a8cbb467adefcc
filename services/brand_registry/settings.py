"""Settings of the brand_registry service, read from `BRAND_REGISTRY_*` variables."""

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.dates import DEFAULT_VALIDITY_HORIZON_YEARS
from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """Brand registry configuration; the tier policy table lives in `config/brand_tiers.json`,
    the quality award kinds in `config/award_kinds.json`."""

    model_config = SettingsConfigDict(env_prefix="BRAND_REGISTRY_", extra="ignore")

    service_name: ClassVar[str] = "brand_registry"

    # How long change events stay in the feed, and how often due ones are numbered.
    events_retention_days: int = Field(default=400, ge=1, le=36_500)
    events_sequence_seconds: float = Field(default=1.0, gt=0, le=60)

    # 100,000 rows of long Chinese names stay well under this.
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    import_batch_size: int = Field(default=250, ge=1, le=10_000)
    tiers_file: Path | None = None
    award_kinds_path: Path | None = None
    timezone: str = "Asia/Shanghai"
    # How far ahead of today a listing's valid_until may lie (kit.dates).
    validity_horizon_years: int = Field(default=DEFAULT_VALIDITY_HORIZON_YEARS, ge=1, le=100)
    # A suspension longer than this is overdue (`suspension_overdue`, `?overdue_suspension=`).
    suspension_limit_months: int = Field(default=6, ge=1, le=60)
    # The daily sweep emitting brand.expiring_soon and brand.suspension_overdue.
    alert_thresholds_days: list[Annotated[int, Field(ge=1, le=3650)]] = Field(
        default=[90, 30, 7], min_length=1, max_length=20
    )
    alert_sweep_enabled: bool = True
    alert_sweep_interval_seconds: float = Field(default=86_400, gt=0, le=31 * 86_400)
    alert_sweep_delay_seconds: float = Field(default=60, ge=0, le=86_400)

    def tier_policy_file(self) -> Path:
        """The tier policy table: configured explicitly, or `brand_tiers.json` in the config dir."""
        return self.tiers_file or self.config_dir / "brand_tiers.json"

    def award_kinds_file(self) -> Path:
        """The award kinds: configured explicitly, or `award_kinds.json` in the config dir."""
        return self.award_kinds_path or self.config_dir / "award_kinds.json"

    def today(self) -> date:
        """The bureau's current date, which decides expiry."""
        return datetime.now(ZoneInfo(self.timezone)).date()
