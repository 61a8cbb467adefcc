"""Geographical-indication products (地理標志產品) as a tier of their own: the protected name and
area and the approval they rest on, required there and refused in every other tier; no fixed
validity, so a listing never expires; counted by `/brands/stats` like any tier; carried by the
import, the export and the template."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from brand_registry.schemas import IMPORT_FIELDS, LABELS
from brand_registry.tests.support import PIZHOU, TONGSHAN, create, credit_code, set_status
from brand_registry.tests.test_import_export import HEADER, csv_bytes, row
from kit.testing import Harness, xlsx_values
from kit.xlsxio import XLSX_MEDIA_TYPE

BRANDS = "/api/v1/brands"
STATS = "/api/v1/brands/stats"
FENG = "320321"
GI_FIELDS = ["protected_name", "protected_area", "approval_authority", "notice_number"]


def indication(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid geographical-indication listing."""
    values: dict[str, Any] = {
        "product_name": "邳州銀杏",
        "brand_name": "邳州銀杏",
        "enterprise_credit_code": credit_code(number),
        "enterprise_name": "邳州市銀杏產業協會",
        "county_code": PIZHOU,
        "tier": "geographical_indication",
        "sector": "agriculture",
        "awarded_on": "2006-12-01",
        "valid_until": None,
        "protected_name": "邳州銀杏",
        "protected_area": [PIZHOU],
        "approval_authority": "國家質量監督檢驗檢疫總局",
        "notice_number": "2006年第185號",
    }
    values.update(overrides)
    return values


async def register(client: httpx.AsyncClient, number: int = 1, **overrides: Any) -> dict[str, Any]:
    return await create(client, **indication(number, **overrides))


def fields_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return sorted(error["field"] for error in response.json()["errors"])


async def test_an_indication_never_expires_and_carries_its_protection(service: Harness) -> None:
    client = service.client()
    body = await register(client, protected_area=[PIZHOU, FENG])
    assert body["valid_until"] is None
    assert body["status"] == "active"
    assert body["tier_label"] == "地理標志產品"
    assert body["protected_area"] == [PIZHOU, FENG]
    assert body["notice_number"] == "2006年第185號"
    assert body["counterfeit_cases"] == 0
    far = await client.get(BRANDS, params={"status": "active", "as_of": "2099-12-31"})
    assert [item["id"] for item in far.json()["items"]] == [body["id"]]
    expired = await client.get(BRANDS, params={"status": "expired", "as_of": "2099-12-31"})
    assert expired.json()["items"] == []
    expiring = await client.get(BRANDS, params={"expiring_within_days": 3650})
    assert expiring.json()["items"] == []
    tiers = {t["code"]: t for t in (await client.get("/api/v1/brands/tiers")).json()}
    assert tiers["geographical_indication"]["validity_years"] is None


async def test_a_given_validity_is_kept(service: Harness) -> None:
    body = await register(service.client(), valid_until="2030-12-01")
    assert body["valid_until"] == "2030-12-01"


async def test_each_protection_field_is_required_for_an_indication(service: Harness) -> None:
    client = service.client()
    for name in GI_FIELDS:
        payload = indication()
        del payload[name]
        assert fields_of(await client.post(BRANDS, json=payload)) == [name]
    bare = {k: v for k, v in indication().items() if k not in GI_FIELDS}
    assert fields_of(await client.post(BRANDS, json=bare)) == sorted(GI_FIELDS)


async def test_the_protected_area_names_known_counties_once(service: Harness) -> None:
    client = service.client()
    cases: list[Any] = [[], ["320399"], [PIZHOU, PIZHOU], [PIZHOU, "32038"]]
    for area in cases:
        response = await client.post(BRANDS, json=indication(protected_area=area))
        assert {f.split("[")[0].split(".")[0] for f in fields_of(response)} == {"protected_area"}, (
            area
        )
    assert (await client.get(BRANDS)).json()["items"] == []


async def test_other_tiers_refuse_the_protection_fields(service: Harness) -> None:
    client = service.client()
    payload = indication(tier="china_famous", valid_until="2030-12-01")
    assert fields_of(await client.post(BRANDS, json=payload)) == sorted(GI_FIELDS)
    one = indication(tier="city_famous", valid_until="2030-12-01")
    for name in GI_FIELDS[1:]:
        del one[name]
    assert fields_of(await client.post(BRANDS, json=one)) == ["protected_name"]


async def _patch(client: httpx.AsyncClient, brand_id: str, body: dict[str, Any]) -> httpx.Response:
    etag = (await client.get(f"{BRANDS}/{brand_id}")).headers["ETag"]
    return await client.patch(f"{BRANDS}/{brand_id}", json=body, headers={"If-Match": etag})


async def test_edits_keep_the_tier_rules(service: Harness) -> None:
    client = service.client()
    gi = await register(client)
    famous = await create(client, enterprise_credit_code=credit_code(2))
    edited = await _patch(client, gi["id"], {"notice_number": "2007年第1號"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["notice_number"] == "2007年第1號"
    history = (await client.get(f"{BRANDS}/{gi['id']}/history")).json()["items"]
    assert history[-1]["changes"] == {"notice_number": ["2006年第185號", "2007年第1號"]}
    assert fields_of(await _patch(client, gi["id"], {"protected_area": None})) == ["protected_area"]
    assert fields_of(await _patch(client, gi["id"], {"protected_area": ["320399"]})) == [
        "protected_area"
    ]
    given = await _patch(client, gi["id"], {"valid_until": "2030-01-01"})
    assert given.json()["valid_until"] == "2030-01-01"
    removed = await _patch(client, gi["id"], {"valid_until": None})
    assert removed.status_code == 200, removed.text
    assert removed.json()["valid_until"] is None
    assert fields_of(await _patch(client, famous["id"], {"protected_name": "維維"})) == [
        "protected_name"
    ]
    assert fields_of(await _patch(client, famous["id"], {"valid_until": None})) == ["valid_until"]


async def test_a_second_indication_of_the_same_product_overlaps_the_first(
    service: Harness,
) -> None:
    client = service.client()
    first = await register(client)
    again = await client.post(BRANDS, json=indication(awarded_on="2020-01-01"))
    assert again.status_code == 409, again.text
    assert first["id"] in again.json()["detail"]
    assert "no end" in again.json()["detail"]


async def _stats_register(client: httpx.AsyncClient) -> None:
    # Pizhou: A 2006 (in force, not new), B new in 2008, C new in 2008 and revoked in June.
    await register(client, 1, awarded_on="2006-12-01")
    await register(
        client, 2, product_name="邳州白蒜", protected_name="邳州白蒜", awarded_on="2008-03-01"
    )
    c = await register(
        client, 3, product_name="邳州板栗", protected_name="邳州板栗", awarded_on="2008-02-01"
    )
    response = await set_status(client, c["id"], "revoked", effective_on="2008-06-01")
    assert response.status_code == 200, response.text
    # Tongshan: D awarded 2009 (neither new in 2008 nor in force then); a china_famous listing
    # of 2006, which lapses in 2009, unlike the indications.
    await register(
        client,
        4,
        product_name="銅山牛蒡",
        protected_name="銅山牛蒡",
        county_code=TONGSHAN,
        protected_area=[TONGSHAN],
        awarded_on="2009-05-01",
    )
    await create(
        client,
        enterprise_credit_code=credit_code(5),
        awarded_on="2006-06-01",
        valid_until=None,
    )


def _counts(body: dict[str, Any], county: str, tier: str) -> tuple[int, int]:
    (group,) = [g for g in body["groups"] if g["county_code"] == county and g["tier"] == tier]
    return group["new_awards"], group["in_force"]


async def test_stats_count_indications_like_any_tier(service: Harness) -> None:
    client = service.client()
    await _stats_register(client)
    body = (await client.get(STATS, params={"year": 2008})).json()
    assert _counts(body, PIZHOU, "geographical_indication") == (1, 2)
    assert _counts(body, TONGSHAN, "geographical_indication") == (0, 0)
    assert _counts(body, TONGSHAN, "china_famous") == (0, 1)
    by_tier = {t["tier"]: t for t in body["by_tier"]}
    assert (
        by_tier["geographical_indication"]["new_awards"],
        by_tier["geographical_indication"]["in_force"],
    ) == (1, 2)
    # Sixteen years on, the indications are still in force; the famous brand has lapsed.
    later = (await client.get(STATS, params={"year": 2024})).json()
    assert _counts(later, PIZHOU, "geographical_indication") == (0, 2)
    assert _counts(later, TONGSHAN, "geographical_indication") == (0, 1)
    assert _counts(later, TONGSHAN, "china_famous") == (0, 0)
    march = (await client.get(STATS, params={"year": 2008, "as_of": "2008-03-31"})).json()
    assert _counts(march, PIZHOU, "geographical_indication") == (2, 3)


def _gi_row(number: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tier": "geographical_indication",
        "sector": "agriculture",
        "valid_until": "",
        "protected_name": f"產品{number}",
        "protected_area": f"{PIZHOU};{FENG}",
        "approval_authority": "國家質量監督檢驗檢疫總局",
        "notice_number": "2008年第12號",
    }
    return row(number, **(values | overrides))


async def _post_csv(service: Harness, body: bytes) -> httpx.Response:
    return await service.client().post(
        "/api/v1/brands/import", content=body, headers={"Content-Type": "text/csv"}
    )


async def test_import_and_export_carry_the_protection(service: Harness) -> None:
    header = [*HEADER, *GI_FIELDS]
    body = csv_bytes([_gi_row(1), row(2)], header=header)
    response = await _post_csv(service, body)
    assert response.status_code == 201, response.text
    exported = await service.client().get("/api/v1/brands/export")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    by_tier = {r["tier"]: r for r in rows}
    gi = by_tier["geographical_indication"]
    assert gi["protected_area"] == f"{PIZHOU};{FENG}"
    assert gi["valid_until"] == ""
    assert gi["notice_number"] == "2008年第12號"
    assert gi["counterfeit_cases"] == "0"
    assert by_tier["provincial_famous"]["protected_area"] == ""
    workbook = await service.client().get("/api/v1/brands/export?format=xlsx")
    values = xlsx_values(workbook.content)
    cells = [dict(zip(values[0], line, strict=True)) for line in values[1:]]
    assert {c[LABELS["protected_area"]] for c in cells} == {f"{PIZHOU};{FENG}", ""}

    await service.reset()
    again = await service.client().post(
        "/api/v1/brands/import", content=workbook.content, headers={"Content-Type": XLSX_MEDIA_TYPE}
    )
    assert again.status_code == 201, again.text
    listed = (await service.client().get(BRANDS, params={"tier": "geographical_indication"})).json()
    assert listed["items"][0]["protected_area"] == [PIZHOU, FENG]


async def test_an_import_refuses_bad_protection_per_row(service: Harness) -> None:
    header = [*HEADER, *GI_FIELDS]
    rows = [
        _gi_row(1),
        _gi_row(2, protected_area="320399"),
        _gi_row(3, notice_number=""),
        row(4, protected_name="某產品"),
    ]
    response = await _post_csv(service, csv_bytes(rows, header=header))
    assert response.status_code == 422, response.text
    errors = [(e["line"], e["field"]) for e in response.json()["errors"]]
    assert errors == [(3, "protected_area"), (4, "notice_number"), (5, "protected_name")]
    assert response.json()["stored"] == 0


async def test_the_template_has_the_protection_columns(service: Harness) -> None:
    response = await service.client().get("/api/v1/brands/import/template.xlsx")
    header = xlsx_values(response.content)[0]
    assert header == [LABELS[name] for name in IMPORT_FIELDS]
    assert {LABELS[name] for name in GI_FIELDS} <= set(header)
