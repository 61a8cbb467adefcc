"""The certification service on a real, migrated database for every test of this folder."""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest

from certification.app import SPEC, build_app
from certification.models import metadata
from certification.settings import Settings
from kit.identifiers import credit_code_check_char
from kit.testing import Harness, service_fixtures

certification_service, service = service_fixtures(
    spec=SPEC,
    metadata=metadata,
    build_app=build_app,
    settings_factory=Settings,
    default_scopes=("certificates:read", "certificates:write"),
    alert_sweep_enabled=False,
)


def make_credit_code(n: int, county: str = "320303") -> str:
    """A valid unified social credit code for enterprise number `n`."""
    first17 = f"91{county}{n:09d}"
    return first17 + credit_code_check_char(first17)


@pytest.fixture
def credit_code() -> Callable[[int], str]:
    """Valid credit codes by enterprise number."""
    return make_credit_code


@pytest.fixture
def today(service: Harness) -> date:
    """Today as the service sees it (the bureau's time zone)."""
    settings: Settings = service.app.state.settings
    return settings.today()


NewCertificate = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_certificate(service: Harness) -> NewCertificate:
    """Create a certificate through the API and return its JSON; fields override defaults."""
    counter = iter(range(1, 1_000_000))

    async def create(**fields: Any) -> dict[str, Any]:
        n = next(counter)
        payload = {
            "certificate_number": f"CN-{n:05d}",
            "standard": "ISO 9001:2015",
            "certification_body": "中國質量認證中心",
            "accreditation_body": "CNAS",
            "enterprise_credit_code": make_credit_code(n),
            "enterprise_name": f"徐州第{n}機械有限公司",
            "county_code": "320323",
            "scope": "工程機械的設計和生產",
            "issued_on": "2020-03-01",
            **fields,
        }
        response = await service.client().post("/api/v1/certificates", json=payload)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return create
