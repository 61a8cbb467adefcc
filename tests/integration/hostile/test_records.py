"""Hostile records: absurd dates, formula cells, and the same create sent twenty times at once."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from datetime import date
from typing import Any

import httpx
import pytest

from tests.integration.test_story import credit_code

COUNTY = "320323"


def brand(enterprise: str, **changes: Any) -> dict[str, Any]:
    return {
        "product_name": "電纜",
        "brand_name": "淮海",
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "county_code": COUNTY,
        "tier": "provincial_famous",
        "sector": "industry",
        "award_kind": "new",
        "awarded_on": f"{date.today().year - 1}-03-15",
        "international_standard": False,
        **changes,
    }


def certificate(enterprise: str, **changes: Any) -> dict[str, Any]:
    return {
        "certificate_number": f"HX-{secrets.token_hex(5).upper()}",
        "standard": "ISO 9001:2015",
        "certification_body": "中國質量認證中心",
        "accreditation_body": "CNAS",
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "county_code": COUNTY,
        "scope": "電線電纜的生產",
        "issued_on": f"{date.today().year - 1}-04-01",
        **changes,
    }


def spot_check(enterprise: str, **changes: Any) -> dict[str, Any]:
    year = date.today().year - 1
    return {
        "plan_code": f"HX-{year}-GJ",
        "level": "provincial",
        "product_name": "電纜",
        "product_category": "electrical_materials",
        "county_code": COUNTY,
        "enterprise_credit_code": enterprise,
        "enterprise_name": "徐州電纜有限公司",
        "sample_code": f"S-{secrets.token_hex(5)}",
        "sampled_on": f"{year}-06-01",
        "published_on": f"{year}-07-01",
        "testing_lab": "江蘇省產品質量監督檢驗研究院",
        "result": "pass",
        "report_number": f"R-{secrets.token_hex(3)}",
        **changes,
    }


DATES = [
    ("brands", brand, "awarded_on", "9999-12-31"),
    ("brands", brand, "awarded_on", "0001-01-01"),
    ("brands", brand, "awarded_on", "1949-09-30"),
    ("certificates", certificate, "issued_on", "9998-01-01"),
    ("certificates", certificate, "issued_on", "0001-01-01"),
    ("spot-checks", spot_check, "sampled_on", "9999-12-31"),
    ("spot-checks", spot_check, "sampled_on", "0001-01-01"),
]


def _as_csv(record: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(record))
    writer.writeheader()
    writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in record.items()})
    return buffer.getvalue().encode()


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("kind", "make", "field", "value"), DATES)
def test_an_absurd_date_is_a_422_naming_the_field_by_post_and_by_import(
    writer: httpx.Client, kind: str, make: Any, field: str, value: str
) -> None:
    body = make(credit_code(COUNTY), **{field: value})
    posted = writer.post(f"/api/v1/{kind}", json=body)
    assert posted.status_code == 422, posted.text[:500]
    assert field in {error["field"] for error in posted.json()["errors"]}
    for dry_run in ("true", "false"):
        imported = writer.post(
            f"/api/v1/{kind}/import",
            params={"dry_run": dry_run},
            content=_as_csv(body),
            headers={"Content-Type": "text/csv"},
        )
        assert imported.status_code == 422, imported.text[:500]
        assert field in imported.text


FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://x.invalid","x")', "+1+1", "@SUM(1)", "-2+3"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_an_export_never_carries_a_formula(writer: httpx.Client, formula: str) -> None:
    enterprise = credit_code(COUNTY)
    created = writer.post("/api/v1/brands", json=brand(enterprise, enterprise_name=formula))
    assert created.status_code == 201, created.text
    exported = writer.get("/api/v1/brands/export", params={"enterprise_credit_code": enterprise})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [row["enterprise_name"] for row in rows] == ["'" + formula]
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


CREATES = {
    "brands": lambda enterprise: brand(enterprise),
    "certificates": lambda enterprise: certificate(enterprise),
    "spot-checks": lambda enterprise: spot_check(enterprise),
}


@pytest.mark.parametrize("kind", list(CREATES))
def test_twenty_identical_creates_at_once_store_one(writer: httpx.Client, kind: str) -> None:
    enterprise = credit_code(COUNTY)
    body = CREATES[kind](enterprise)

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=str(writer.base_url), headers=dict(writer.headers), timeout=60
        ) as client:
            return await asyncio.gather(
                *(client.post(f"/api/v1/{kind}", json=body) for _ in range(20))
            )

    answers = asyncio.run(fire())
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 19, statuses
    sequential = writer.post(f"/api/v1/{kind}", json=body)
    assert sequential.status_code == 409
    types = {answer.json()["type"] for answer in answers if answer.status_code == 409}
    assert types == {sequential.json()["type"]}
    listed = writer.get(f"/api/v1/{kind}", params={"enterprise_credit_code": enterprise})
    assert len(listed.json()["items"]) == 1
