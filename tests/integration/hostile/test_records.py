"""Hostile records: absurd dates, formula cells, and the same create sent twenty times at once."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest

from tests.integration.records import COUNTY, brand, certificate, spot_check
from tests.integration.test_story import credit_code

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
