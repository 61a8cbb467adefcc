"""Settings of the inspection service, read from `INSPECTION_*` variables."""

from datetime import date, datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """Inspection configuration: the brand registry it notifies and the outbox's pacing."""

    model_config = SettingsConfigDict(env_prefix="INSPECTION_", extra="ignore")

    service_name: ClassVar[str] = "inspection"

    # How long change events stay in the feed, and how often due ones are numbered.
    events_retention_days: int = Field(default=400, ge=1, le=36_500)
    events_sequence_seconds: float = Field(default=1.0, gt=0, le=60)

    brand_registry_url: str = "http://127.0.0.1:8001"
    brand_registry_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    service_private_key_file: Path | None = None
    outbox_enabled: bool = True
    outbox_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    outbox_batch_size: int = Field(default=50, ge=1, le=1000)
    outbox_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    outbox_backoff_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # The daily sweep emitting spot_check.repeated_failures.
    alert_repeated_failure_months: int = Field(default=12, ge=1, le=120)
    alert_repeated_failure_min: int = Field(default=2, ge=1, le=100)
    alert_sweep_enabled: bool = True
    alert_sweep_interval_seconds: float = Field(default=86_400, gt=0, le=31 * 86_400)
    alert_sweep_delay_seconds: float = Field(default=60, ge=0, le=86_400)
    # 100,000 rows with nonconforming items in JSON stay well under this.
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    import_batch_size: int = Field(default=1000, ge=1, le=10_000)
    product_categories_path: Path | None = None
    timezone: str = "Asia/Shanghai"
    # How far ahead of today a bulletin (published_on) may be scheduled (kit.dates); a
    # sampling date is an event and is never later than today.
    bulletin_horizon_years: int = Field(default=1, ge=0, le=10)
    report_font: Path | None = Field(
        default=None,
        description="the CJK font bulletins are set in (an OpenType or TrueType file);"
        " default Noto Sans CJK from the system's fonts-noto-cjk",
    )

    @model_validator(mode="after")
    def _fill_inspection_defaults(self) -> "Settings":
        if self.service_private_key_file is None:
            self.service_private_key_file = self.var_dir / "keys" / "inspection.pem"
        return self

    def today(self) -> date:
        """The bureau's calendar day: bulletin dates and sampling dates are judged by it."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def product_categories_file(self) -> Path:
        return self.product_categories_path or self.config_dir / "product_categories.json"
