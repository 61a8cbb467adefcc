"""Settings of the assessment service, read from `ASSESSMENT_*` variables."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASSESSMENT_", extra="ignore")

    service_name: ClassVar[str] = "assessment"
