"""Settings of the brand_registry service, read from `BRAND_REGISTRY_*` variables."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BRAND_REGISTRY_", extra="ignore")

    service_name: ClassVar[str] = "brand_registry"
