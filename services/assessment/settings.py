"""Settings of the assessment service, read from `ASSESSMENT_*` variables."""

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import DEFAULT_VAR_DIR, ServiceSettings


def _demo_default() -> bool:
    return os.environ.get("QRP_DEMO", "0") == "1"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASSESSMENT_", extra="ignore")

    service_name: ClassVar[str] = "assessment"

    # How long change events stay in the feed, and how often due ones are numbered.
    events_retention_days: int = Field(default=400, ge=1, le=36_500)
    events_sequence_seconds: float = Field(default=1.0, gt=0, le=60)

    brand_registry_url: str = "http://127.0.0.1:8001"
    certification_url: str = "http://127.0.0.1:8002"
    inspection_url: str = "http://127.0.0.1:8003"
    stats_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    stats_deadline_seconds: float = Field(default=5.0, gt=0, le=120)
    stats_retries: int = Field(default=2, ge=0, le=5)
    stats_retry_backoff_seconds: float = Field(default=0.1, ge=0, le=5)
    stats_max_connections: int = Field(default=50, ge=1, le=1000)
    service_private_key_file: Path = DEFAULT_VAR_DIR / "keys" / "assessment.pem"
    service_token_ttl_seconds: int = Field(default=60, ge=10, le=3600)
    load_demo: bool = Field(default_factory=_demo_default)
    evidence_store: str | None = Field(
        default=None,
        description="where evidence files are kept: file://<dir>, a path, or "
        "s3://bucket/prefix?endpoint_url=...; default <var_dir>/evidence",
    )
    evidence_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, le=2**40)
    report_font: Path | None = Field(
        default=None,
        description="the CJK font the year-end report is set in (an OpenType or TrueType file);"
        " default Noto Sans CJK from the system's fonts-noto-cjk",
    )

    @property
    def evidence_store_url(self) -> str:
        return self.evidence_store or str(self.var_dir / "evidence")

    @property
    def evidence_upload_dir(self) -> Path:
        """Where uploads are received before they are stored (beside a local store)."""
        return self.var_dir / "evidence-uploads"

    @property
    def assessment_file(self) -> Path:
        return self.config_dir / "assessment.json"

    @property
    def target_sets_dir(self) -> Path:
        return self.config_dir / "target_sets"
