"""The enterprise view against the real brand registry, certification and inspection services,
each app in this process on its own migrated database (SQLite, or PostgreSQL with
`TEST_DATABASE_URL`), reached by the assessment over ASGI with the tokens it mints, which the
services check against `config/token_issuers.json` as they do in production.

Records of 維維 (91320323MA0000001…), all hand-made:

| service | record | what the view makes of it |
|---|---|---|
| brands | b-active, 銅山縣, valid 30 more days | active, `brand.expiring_soon` (30 days) |
| brands | b-pizhou, 邳州市, awarded 10 days ago as 維維集團 | active; the newest record names the enterprise |
| brands | review flag `inspection`/`S-1` | both listings under review |
| certificates | c-valid, 銅山縣, expires in 400 days | valid, no alert |
| certificates | c-suspended, 銅山縣 | suspended |
| spot-checks | S-1 and S-2, failed, published | failed 2, `spot_check.repeated_failures` |
| spot-checks | S-3, failed, bulletin in 20 days | only for `spot-checks:write` |
| brands | o-listing of 邳州某廠 (91320382…), a product named 維維 | found by code, not by name |
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assessment.app import SPEC as ASSESSMENT
from assessment.app import build_app as build_assessment
from assessment.models import metadata as assessment_metadata
from assessment.settings import Settings as AssessmentSettings
from brand_registry.app import SPEC as BRANDS
from brand_registry.app import build_app as build_brands
from brand_registry.models import metadata as brand_metadata
from brand_registry.settings import Settings as BrandSettings
from certification.app import SPEC as CERTIFICATION
from certification.app import build_app as build_certification
from certification.models import metadata as certification_metadata
from certification.settings import Settings as CertificationSettings
from inspection.app import SPEC as INSPECTION
from inspection.app import build_app as build_inspection
from inspection.models import metadata as inspection_metadata
from inspection.settings import Settings as InspectionSettings
from kit.auth import write_keypair
from kit.identifiers import credit_code_check_char
from kit.testing import Harness, ServiceTokens, running_service

TONGSHAN, PIZHOU = "320323", "320382"
TODAY = date.today()
READ_ALL = ("enterprises:read", "brands:read", "certificates:read", "spot-checks:read")
OVERRIDES: dict[str, dict[str, Any]] = {"inspection": {"outbox_enabled": False}}
HOSTS = {
    "brand-registry.test": "brand_registry",
    "certification.test": "certification",
    "inspection.test": "inspection",
}


def _code(county: str, number: int) -> str:
    first17 = f"91{county}MA{number:07d}"
    return first17 + credit_code_check_char(first17)


ACME = _code(TONGSHAN, 1)
OTHER = _code(PIZHOU, 2)


def _day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


class Services(httpx.AsyncBaseTransport):
    """The three data apps behind one transport, by host; a host in `down` refuses."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = HOSTS[request.url.host]
        if name in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.apps[name].handle_async_request(request)


@dataclass
class Stack:
    harnesses: dict[str, Harness]
    services: Services

    def assessment(self, scopes: tuple[str, ...], **kwargs: Any) -> httpx.AsyncClient:
        return self.harnesses["assessment"].client(scopes, **kwargs)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    created: dict[str, Any] = response.json()
    return created


def _listing(**fields: Any) -> dict[str, Any]:
    return {
        "product_name": "維維豆奶粉",
        "brand_name": "維維",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "tier": "provincial_famous",
        "sector": "industry",
        "awarded_on": _day(-700),
        "valid_until": _day(30),
        **fields,
    }


def _certificate(**fields: Any) -> dict[str, Any]:
    return {
        "certificate_number": "00124Q0001",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "scope": "豆奶粉的生產",
        "issued_on": _day(-600),
        "expires_on": _day(400),
        **fields,
    }


def _check(sample: str, **fields: Any) -> dict[str, Any]:
    return {
        "plan_code": "2026-SJ-01",
        "level": "provincial",
        "product_category": "food",
        "product_name": "豆奶粉",
        "enterprise_credit_code": ACME,
        "enterprise_name": "維維食品有限公司",
        "county_code": TONGSHAN,
        "sample_code": sample,
        "sampled_on": _day(-90),
        "result": "fail",
        "nonconforming_items": [{"item": "蛋白質", "requirement": "≥3.0%", "measured": "2.1%"}],
        "published_on": _day(-60),
        **fields,
    }


async def _load(stack: Stack) -> dict[str, str]:
    """The records of the module docstring; their ids by name."""
    h = stack.harnesses
    brands = h["brand_registry"].client(["brands:write", "brands:read", "brands:flag"])
    ids = {
        "b-active": (await _post(brands, "/api/v1/brands", _listing()))["id"],
        "b-pizhou": (
            await _post(
                brands,
                "/api/v1/brands",
                _listing(
                    county_code=PIZHOU,
                    enterprise_name="維維集團",
                    product_name="維維牛奶",
                    awarded_on=_day(-10),
                    valid_until=_day(1000),
                ),
            )
        )["id"],
        "o-listing": (
            await _post(
                brands,
                "/api/v1/brands",
                _listing(
                    enterprise_credit_code=OTHER,
                    enterprise_name="邳州某廠",
                    county_code=PIZHOU,
                    valid_until=_day(1000),
                ),
            )
        )["id"],
    }
    await _post(
        brands,
        "/api/v1/brands/review-flags",
        {
            "enterprise_credit_code": ACME,
            "source": "inspection",
            "reference": "S-1",
            "reason": "監督抽查不合格",
        },
    )
    certificates = h["certification"].client(["certificates:write", "certificates:read"])
    ids["c-valid"] = (await _post(certificates, "/api/v1/certificates", _certificate()))["id"]
    ids["c-suspended"] = (
        await _post(
            certificates,
            "/api/v1/certificates",
            _certificate(
                certificate_number="00124Q0002", status="suspended", status_since=_day(-30)
            ),
        )
    )["id"]
    checks = h["inspection"].client(["spot-checks:write", "spot-checks:read"])
    for sample in ("S-1", "S-2"):
        ids[sample] = (await _post(checks, "/api/v1/spot-checks", _check(sample)))["id"]
    ids["S-3"] = (
        await _post(
            checks,
            "/api/v1/spot-checks",
            _check("S-3", sampled_on=_day(-5), published_on=_day(20)),
        )
    )["id"]
    return ids


@pytest.fixture(scope="module")
async def stack(
    service_tokens: ServiceTokens, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("enterprise-view")
    keys = tmp / "assessment-keys"
    write_keypair(keys, "assessment")
    public = keys / "assessment.pub"
    services = Services()

    def trusting(settings_class: type[Any]) -> Any:
        def make(**values: Any) -> Any:
            issuers: dict[str, Path] = {**values.pop("token_issuers"), "assessment": public}
            return settings_class(token_issuers=issuers, alert_sweep_enabled=False, **values)

        return make

    def assessment_app(settings: AssessmentSettings) -> FastAPI:
        app = build_assessment(settings)
        app.state.stats_transport = services
        return app

    async with AsyncExitStack() as exits:
        harnesses: dict[str, Harness] = {}
        for spec, metadata, build, settings in (
            (BRANDS, brand_metadata, build_brands, BrandSettings),
            (CERTIFICATION, certification_metadata, build_certification, CertificationSettings),
            (INSPECTION, inspection_metadata, build_inspection, InspectionSettings),
        ):
            harness = await exits.enter_async_context(
                running_service(
                    spec=spec,
                    metadata=metadata,
                    build_app=build,
                    settings_factory=trusting(settings),
                    tokens=service_tokens,
                    tmp_dir=tmp_path_factory.mktemp(spec.name),
                    **OVERRIDES.get(spec.name, {}),
                )
            )
            harnesses[spec.name] = harness
            services.apps[spec.name] = httpx.ASGITransport(app=harness.app)
        harnesses["assessment"] = await exits.enter_async_context(
            running_service(
                spec=ASSESSMENT,
                metadata=assessment_metadata,
                build_app=assessment_app,
                settings_factory=lambda **values: AssessmentSettings(
                    service_private_key_file=keys / "assessment.pem", **values
                ),
                tokens=service_tokens,
                tmp_dir=tmp_path_factory.mktemp("assessment"),
                brand_registry_url="http://brand-registry.test",
                certification_url="http://certification.test",
                inspection_url="http://inspection.test",
                stats_deadline_seconds=10.0,
                stats_retry_backoff_seconds=0.01,
                load_demo=False,
            )
        )
        built = Stack(harnesses, services)
        yield built, await _load(built)


async def test_the_view_reads_every_service(stack: tuple[Stack, dict[str, str]]) -> None:
    running, ids = stack
    response = await running.assessment(READ_ALL).get(f"/api/v1/enterprises/{ACME}")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["meta"]["completeness"] == {
        "brands": "ok",
        "certificates": "ok",
        "spot_checks": "ok",
    }
    assert view["name"] == "維維集團"
    assert view["county_codes"] == [TONGSHAN, PIZHOU]
    assert {b["id"] for b in view["brands"]["items"]} == {ids["b-active"], ids["b-pizhou"]}
    assert view["brands"]["by_status"] == {"active": 2}
    assert view["certificates"]["by_status"] == {"suspended": 1, "valid": 1}
    assert {c["id"] for c in view["spot_checks"]["items"]} == {ids["S-1"], ids["S-2"]}
    assert view["spot_checks"]["failed"] == 2
    assert {f["brand_id"] for f in view["review_flags"]} == {ids["b-active"], ids["b-pizhou"]}
    assert {(a["type"], a["subject"]) for a in view["alerts"]} == {
        ("brand.expiring_soon", f"brands/{ids['b-active']}"),
        ("spot_check.repeated_failures", f"enterprises/{ACME}"),
    }


async def test_a_writer_sees_the_embargoed_result(stack: tuple[Stack, dict[str, str]]) -> None:
    running, ids = stack
    writer = running.assessment((*READ_ALL, "spot-checks:write"))
    view = (await writer.get(f"/api/v1/enterprises/{ACME}")).json()
    assert view["meta"]["completeness"]["spot_checks"] == "ok"
    assert view["spot_checks"]["latest"]["id"] == ids["S-3"]
    assert view["spot_checks"]["latest"]["published"] is False
    assert view["spot_checks"]["failed"] == 3


async def test_a_bound_caller_sees_its_county_only(stack: tuple[Stack, dict[str, str]]) -> None:
    running, ids = stack
    bound = running.assessment(READ_ALL, county_codes=[PIZHOU])
    view = (await bound.get(f"/api/v1/enterprises/{ACME}")).json()
    assert [b["id"] for b in view["brands"]["items"]] == [ids["b-pizhou"]]
    assert view["certificates"]["count"] == 0
    assert view["spot_checks"]["count"] == 0
    assert view["alerts"] == []


async def test_sections_follow_the_scopes(stack: tuple[Stack, dict[str, str]]) -> None:
    running, _ = stack
    client = running.assessment(("enterprises:read", "spot-checks:read"))
    view = (await client.get(f"/api/v1/enterprises/{ACME}")).json()
    assert sorted(k for k in ("brands", "certificates", "spot_checks") if k in view) == [
        "spot_checks"
    ]
    assert view["meta"]["not_permitted"] == ["brands", "certificates"]


async def test_search_by_name_and_by_code(stack: tuple[Stack, dict[str, str]]) -> None:
    running, _ = stack
    client = running.assessment(READ_ALL)
    by_name = (await client.get("/api/v1/enterprises", params={"q": "維維"})).json()
    assert [
        (m["credit_code"], m["brands"], m["certificates"], m["spot_checks"])
        for m in by_name["items"]
    ] == [(ACME, 2, 2, 2)]
    by_code = (await client.get("/api/v1/enterprises", params={"q": OTHER[:10]})).json()
    assert [(m["credit_code"], m["name"], m["brands"]) for m in by_code["items"]] == [
        (OTHER, "邳州某廠", 1)
    ]
    assert by_code["meta"]["complete"] is True


async def test_a_service_down_and_an_unknown_code(stack: tuple[Stack, dict[str, str]]) -> None:
    running, _ = stack
    client = running.assessment(READ_ALL)
    unknown = _code(TONGSHAN, 99)
    assert (await client.get(f"/api/v1/enterprises/{unknown}")).status_code == 404
    running.services.down.add("certification")
    try:
        view = (await client.get(f"/api/v1/enterprises/{ACME}")).json()
        partial = await client.get(f"/api/v1/enterprises/{unknown}")
    finally:
        running.services.down.clear()
    assert view["meta"]["completeness"]["certificates"] == "unreachable: ConnectError"
    assert "certificates" not in view
    assert view["brands"]["count"] == 2
    assert partial.status_code == 200
