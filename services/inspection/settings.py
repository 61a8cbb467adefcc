"""Settings of the inspection service, read from `INSPECTION_*` variables."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INSPECTION_", extra="ignore")

    service_name: ClassVar[str] = "inspection"
