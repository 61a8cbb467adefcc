import os
import stat
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, load_or_create_secret


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_SVC_", extra="ignore")
    service_name: ClassVar[str] = "demo_svc"


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DEMO_SVC_"):
            monkeypatch.delenv(name)
    settings = DemoSettings()
    assert settings.database_url == "sqlite+aiosqlite:///var/demo_svc.db"
    assert settings.token_issuers["gateway"] == Path("var/keys/gateway.pub")
    assert "320323" in settings.region_codes()


def test_prefixed_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SVC_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("DEMO_SVC_TOKEN_ISSUERS", '{"gateway": "/keys/gw.pub"}')
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///ignored.db")
    settings = DemoSettings()
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.token_issuers == {"gateway": Path("/keys/gw.pub")}


def test_secret_is_created_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_secret_wins(tmp_path: Path) -> None:
    settings = DemoSettings(secret_key="from-the-environment-123456", var_dir=tmp_path)
    assert settings.resolved_secret() == b"from-the-environment-123456"
    assert not (tmp_path / "keys").exists()
