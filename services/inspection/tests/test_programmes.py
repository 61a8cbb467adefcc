"""Supervision programmes: each record's programme and the fields its catalogue entry
(config/programmes.json) requires, the `?programme=` filters, each programme's stats against
hand-counted fixtures, and migration 0006 with data.

Metrology, 2023 (published unless noted; instruments checked / nonconforming):
  320323 national  M1 fuel_dispenser 10/0 pass · M2 fuel_dispenser 8/2 fail
  320323 city      M3 prepackaged_quantity 20/1 fail (shortfall 16 g > 15 g tolerated)
  320382 provincial M4 energy_metering 5/0 pass · M5 catering 3/0 pass, published next month
  2022: M6 trade_instrument 4/1 fail (another year)
  and one product-quality check P1 in 320323 and a food-safety check in 320382.

Special equipment (E = equipment code; inspected on → next due):
  320323 E-1 elevator     city      2022-05-01 → 2023-05-01, 2023-04-20 → 2024-04-20
  320323 E-2 boiler       city      2023-02-01 → 2023-11-30, failed, a major hazard source
  320382 E-3 pressure_vessel city   2021-06-01 → 2022-06-01
  320382 E-4 elevator     provincial 2023-03-01 → 2023-09-01, 2023-08-25 → 2024-08-25
  320382 E-5 lifting_machinery city 2023-01-10 → 2023-07-10, 2023-10-01 → 2024-10-01
  320382 E-6 elevator     city      2023-05-01 → 2024-05-01, published next month
"""

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from inspection.app import MIGRATIONS, VERSION_TABLE
from inspection.tests.support import TODAY, credit_code, spot_check
from kit.db import create_engine
from kit.migrations import alembic_config
from kit.testing import Harness, provision_database, xlsx_values

URL = "/api/v1/spot-checks"
STATS = f"{URL}/stats"
LATER = (TODAY + timedelta(days=30)).isoformat()
PUBLISHED = "2023-12-20"
FAILED_ITEMS = [{"item": "示值誤差", "requirement": "±0.3%", "measured": "+0.6%"}]


def metrology(**overrides: Any) -> dict[str, Any]:
    """A passing fuel-dispenser check of ten dispensers."""
    body = spot_check(
        result="pass",
        plan_code="2023-JL-01",
        level="city",
        sampled_on="2023-03-10",
        published_on=PUBLISHED,
        programme="metrology",
        metrology_subject="fuel_dispenser",
        instruments_checked=10,
        instruments_nonconforming=0,
    )
    for name in ("product_category", "product_name", "sample_code"):
        body.pop(name)
    if overrides.get("result") == "fail":
        body["nonconforming_items"] = FAILED_ITEMS
    body.update(overrides)
    return body


def prepackaged(**overrides: Any) -> dict[str, Any]:
    """A failing prepackaged-quantity check: one of 20 packages 16 g short of 500 g."""
    fields: dict[str, Any] = {
        "metrology_subject": "prepackaged_quantity",
        "product_name": "大米",
        "sample_code": "DL-001",
        "instruments_checked": 20,
        "instruments_nonconforming": 1,
        "nominal_quantity": "500",
        "quantity_unit": "g",
        "measured_shortfall": "16",
        "tolerated_deficiency": "15.0",
        "result": "fail",
    }
    return metrology(**{**fields, **overrides})


def equipment(code: str, **overrides: Any) -> dict[str, Any]:
    """A passing periodic inspection of an elevator, its next one due a year later."""
    body = spot_check(
        result="pass",
        plan_code="2023-TZ-01",
        level="city",
        sampled_on="2023-04-20",
        published_on=PUBLISHED,
        programme="special_equipment",
        equipment_code=code,
        equipment_kind="elevator",
        next_due_on="2024-04-20",
        major_hazard_source=False,
    )
    for name in ("product_category", "product_name", "sample_code"):
        body.pop(name)
    if overrides.get("result") == "fail":
        body["nonconforming_items"] = [
            {"item": "安全閥", "requirement": "整定壓力", "measured": "失效"}
        ]
    body.update(overrides)
    return body


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(URL, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _refused(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    response = await client.post(URL, json=body)
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["errors"]]


# Records and their validation


async def test_a_record_without_a_programme_is_a_product_quality_check(service: Harness) -> None:
    created = await _post(service.client(), spot_check())
    assert created["programme"] == "product_quality"
    assert created["programme_label"] == "產品質量監督抽查"
    assert created["metrology_subject"] is None
    assert created["equipment_code"] is None


async def test_a_metrology_check_records_its_subject_and_instruments(service: Harness) -> None:
    created = await _post(service.client(), metrology(result="fail", instruments_nonconforming=2))
    assert created["programme"] == "metrology"
    assert created["metrology_subject_label"] == "加油機"
    assert (created["instruments_checked"], created["instruments_nonconforming"]) == (10, 2)
    assert created["product_category"] is None
    assert created["sample_code"] is None


async def test_metrology_fields_are_required_and_others_refused(service: Harness) -> None:
    client = service.client()
    body = metrology()
    body.pop("metrology_subject")
    assert await _refused(client, body) == ["metrology_subject"]
    assert await _refused(client, metrology(product_category="food")) == ["product_category"]
    assert await _refused(client, metrology(equipment_code="E-9")) == ["equipment_code"]
    assert await _refused(client, metrology(metrology_subject="scales")) == ["metrology_subject"]
    assert await _refused(client, metrology(instruments_checked=0)) == ["instruments_checked"]
    # The dispensers' figures must agree with the verdict.
    assert await _refused(client, metrology(instruments_nonconforming=11, result="fail")) == [
        "instruments_nonconforming"
    ]
    assert await _refused(client, metrology(instruments_nonconforming=1)) == ["result"]
    assert await _refused(client, metrology(result="fail")) == ["result"]
    # A quantity belongs to a prepackaged-goods check only.
    assert await _refused(client, metrology(nominal_quantity="500")) == ["nominal_quantity"]


async def test_a_product_quality_check_keeps_its_required_sample(service: Harness) -> None:
    client = service.client()
    body = spot_check()
    body.pop("sample_code")
    assert await _refused(client, body) == ["sample_code"]
    assert await _refused(client, spot_check(instruments_checked=3)) == ["instruments_checked"]


async def test_prepackaged_quantity_judges_the_shortfall(service: Harness) -> None:
    client = service.client()
    created = await _post(client, prepackaged())
    assert created["metrology_subject_label"] == "定量包裝商品"
    assert created["nominal_quantity"] == "500"
    assert created["tolerated_deficiency"] == "15"
    assert created["quantity_unit"] == "g"
    body = prepackaged(sample_code="DL-002")
    body.pop("tolerated_deficiency")
    assert await _refused(client, body) == ["tolerated_deficiency"]
    # 16 g short against 15 g tolerated is a failure; 14 g short is a pass.
    assert await _refused(
        client, prepackaged(sample_code="DL-003", result="pass", instruments_nonconforming=0)
    ) == ["result"]
    passed = prepackaged(
        sample_code="DL-004",
        result="pass",
        instruments_nonconforming=0,
        measured_shortfall="14",
        nonconforming_items=[],
    )
    assert (await _post(client, passed))["result"] == "pass"
    assert await _refused(client, prepackaged(sample_code="DL-005", quantity_unit="jin")) == [
        "quantity_unit"
    ]


async def test_a_special_equipment_inspection_names_its_item(service: Harness) -> None:
    client = service.client()
    body = equipment("T-1", major_hazard_source=True)
    body["inspected_on"] = body.pop("sampled_on")
    created = await _post(client, body)
    assert created["inspected_on"] == created["sampled_on"] == "2023-04-20"
    assert created["equipment_kind_label"] == "電梯"
    assert created["major_hazard_source"] is True
    assert created["sample_code"] is None
    assert created["product_name"] is None
    missing = equipment("T-2")
    missing.pop("equipment_code")
    assert await _refused(client, missing) == ["equipment_code"]
    assert await _refused(client, equipment("T-3", sample_code="S-1")) == ["sample_code"]
    assert await _refused(client, equipment("T-4", equipment_kind="crane")) == ["equipment_kind"]
    assert await _refused(client, equipment("T-5", next_due_on="2023-04-20")) == ["next_due_on"]
    assert await _refused(client, equipment("T-6", next_due_on="2099-01-01")) == ["next_due_on"]
    clash = equipment("T-7", inspected_on="2023-04-21")
    assert await _refused(client, clash) == ["inspected_on"]


async def test_an_inspection_day_is_corrected_under_either_name(service: Harness) -> None:
    client = service.client()
    created = await _post(client, equipment("C-1"))
    url = f"{URL}/{created['id']}"
    etag = (await client.get(url)).headers["ETag"]
    corrected = await client.patch(
        url, json={"reason": "更正", "inspected_on": "2023-04-21"}, headers={"If-Match": etag}
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["sampled_on"] == corrected.json()["inspected_on"] == "2023-04-21"
    history = (await client.get(f"{url}/history")).json()["items"]
    assert history[-1]["changes"] == {"sampled_on": ["2023-04-20", "2023-04-21"]}
    clash = await client.patch(
        url,
        json={"reason": "更正", "inspected_on": "2023-04-22", "sampled_on": "2023-04-23"},
        headers={"If-Match": corrected.headers["ETag"]},
    )
    assert clash.status_code == 422, clash.text
    assert clash.json()["errors"][0]["field"] == "inspected_on"


async def test_an_item_is_inspected_once_a_day(service: Harness) -> None:
    client = service.client()
    first = await _post(client, equipment("D-1"))
    again = await client.post(URL, json=equipment("D-1", plan_code="2023-TZ-02"))
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "equipment_code"
    assert again.json()["existing_id"] == first["id"]
    later = await _post(client, equipment("D-1", sampled_on="2023-04-21"))
    etag = (await client.get(f"{URL}/{later['id']}")).headers["ETag"]
    moved = await client.patch(
        f"{URL}/{later['id']}",
        json={"reason": "更正", "sampled_on": "2023-04-20"},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 409, moved.text
    assert moved.json()["existing_id"] == first["id"]


async def test_one_inspection_sent_together_is_recorded_once(service: Harness) -> None:
    clients = [service.client() for _ in range(10)]
    responses = await asyncio.gather(*(c.post(URL, json=equipment("D-2")) for c in clients))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, [r.text for r in responses if r.status_code != 409]
    fields = {r.json()["field"] for r in responses if r.status_code == 409}
    assert fields == {"equipment_code"}


async def test_programmes_without_samples_are_not_reinspected(service: Harness) -> None:
    client = service.client()
    failed = await _post(client, equipment("R-1", result="fail"))
    body = equipment("R-1", reinspection_of=failed["id"], sampled_on="2023-05-01")
    response = await client.post(URL, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "reinspection_of"


async def test_a_reinspection_keeps_its_programme(service: Harness) -> None:
    client = service.client()
    failed = await _post(
        client, spot_check(programme="food_safety", product_category="dairy_products")
    )
    retest = spot_check(reinspection_of=failed["id"], sampled_on=failed["published_on"])
    response = await client.post(URL, json=retest)
    assert response.status_code == 409, response.text
    assert response.json()["field"] == "programme"


async def test_food_safety_names_food_categories(service: Harness) -> None:
    client = service.client()
    created = await _post(
        client, spot_check(programme="food_safety", product_category="dairy_products")
    )
    assert created["product_category_label"] == "乳製品"
    assert await _refused(client, spot_check(programme="food_safety", sample_code="S-2")) == [
        "product_category"
    ]
    assert await _refused(client, spot_check(product_category="dairy_products")) == [
        "product_category"
    ]


async def test_an_unknown_programme_is_refused_naming_it(service: Harness) -> None:
    client = service.client()
    assert await _refused(client, spot_check(programme="fire_safety")) == ["programme"]
    for path, params in ((URL, {}), (STATS, {"year": 2023}), (f"{URL}/export", {})):
        response = await client.get(path, params={**params, "programme": "metrology,fire"})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == "programme"


async def test_a_correction_is_checked_against_the_programme(service: Harness) -> None:
    client = service.client()
    created = await _post(client, metrology())
    url = f"{URL}/{created['id']}"
    etag = (await client.get(url)).headers["ETag"]
    refused = await client.patch(
        url, json={"reason": "更正", "metrology_subject": None}, headers={"If-Match": etag}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "metrology_subject"
    corrected = await client.patch(
        url,
        json={"reason": "更正", "instruments_checked": 12},
        headers={"If-Match": etag},
    )
    assert corrected.status_code == 200, corrected.text
    history = (await client.get(f"{url}/history")).json()["items"]
    assert history[-1]["changes"] == {"instruments_checked": [10, 12]}
    assert history[0]["changes"]["programme"] == "metrology"


async def test_only_a_product_failure_flags_brands_for_review(service: Harness) -> None:
    client = service.client()
    await _post(client, metrology(result="fail", instruments_nonconforming=1))
    await _post(client, equipment("B-1", result="fail"))
    await _post(client, spot_check(programme="food_safety", product_category="meat_products"))
    async with service.engine.connect() as connection:
        notices = await connection.scalar(sa.text("SELECT count(*) FROM outbox_message"))
    assert notices == 1


async def test_the_published_event_carries_the_programme(service: Harness) -> None:
    client = service.client()
    await _post(client, metrology(published_on=(TODAY - timedelta(days=1)).isoformat()))
    response = await service.client(scopes=["events:read", "spot-checks:read"]).get(
        "/api/v1/events", params={"limit": 100}
    )
    assert response.status_code == 200, response.text
    items = [event for event in response.json()["items"] if event["type"] == "spot_check.published"]
    assert [event["data"]["item"]["programme"] for event in items] == ["metrology"]
    assert items[0]["data"]["programme"] == "metrology"


# Lists, export and import


async def test_lists_and_exports_filter_by_programme(service: Harness) -> None:
    client = service.client()
    product = await _post(client, spot_check())
    meter = await _post(client, metrology())
    item = await _post(client, equipment("L-1"))

    async def listed(**params: Any) -> list[str]:
        response = await client.get(URL, params=params)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["items"]]

    assert await listed() == [product["id"], meter["id"], item["id"]]
    assert await listed(programme="metrology") == [meter["id"]]
    assert await listed(programme="special_equipment, metrology") == [meter["id"], item["id"]]
    assert await listed(equipment_code="L-1") == [item["id"]]
    exported = await client.get(f"{URL}/export", params={"programme": "special_equipment"})
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [(row["id"], row["programme"], row["equipment_code"]) for row in rows] == [
        (item["id"], "special_equipment", "L-1")
    ]
    assert rows[0]["next_due_on"] == "2024-04-20"
    assert rows[0]["sample_code"] == ""


async def test_a_workbook_export_writes_quantities_as_numbers(service: Harness) -> None:
    client = service.client()
    await _post(client, prepackaged(measured_shortfall="16.25"))
    exported = await client.get(f"{URL}/export", params={"format": "xlsx"})
    assert exported.status_code == 200, exported.text
    header, row = xlsx_values(exported.content)
    values = dict(zip(header, row, strict=True))
    assert values["实际短缺量"] == 16.25
    assert values["标注净含量"] == 500
    assert values["监管项目"] == "metrology"


def _csv(rows: list[dict[str, Any]]) -> bytes:
    names = list(dict.fromkeys(name for row in rows for name in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {key: ("true" if v is True else "false" if v is False else v) for key, v in row.items()}
        )
    return buffer.getvalue().encode()


async def test_an_import_carries_each_programme(service: Harness) -> None:
    client = service.client()
    item = equipment("I-1", enterprise_credit_code=credit_code(7))
    item["inspected_on"] = item.pop("sampled_on")
    rows = [metrology(), prepackaged(nonconforming_items=""), item]
    rows[1]["nonconforming_items"] = (
        '[{"item": "凈含量", "requirement": "T=15 g", "measured": "短缺 16 g"}]'
    )
    rows[0]["nonconforming_items"] = item["nonconforming_items"] = ""
    response = await client.post(
        f"{URL}/import", content=_csv(rows), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    listed = (await client.get(URL, params={"programme": "metrology,special_equipment"})).json()
    assert [
        (r["programme"], r["metrology_subject"], r["equipment_code"]) for r in listed["items"]
    ] == [
        ("metrology", "fuel_dispenser", None),
        ("metrology", "prepackaged_quantity", None),
        ("special_equipment", None, "I-1"),
    ]
    assert listed["items"][2]["sampled_on"] == "2023-04-20"

    twice = [equipment("I-3", nonconforming_items=""), equipment("I-3", nonconforming_items="")]
    repeated = await client.post(
        f"{URL}/import", content=_csv([*twice, item]), headers={"Content-Type": "text/csv"}
    )
    assert repeated.status_code == 422, repeated.text
    assert [(e["line"], e["field"]) for e in repeated.json()["errors"]] == [
        (3, "equipment_code"),
        (4, "equipment_code"),
    ]

    broken = equipment("I-2")
    broken.pop("equipment_kind")
    broken["nonconforming_items"] = ""
    refused = await client.post(
        f"{URL}/import", content=_csv([broken]), headers={"Content-Type": "text/csv"}
    )
    assert refused.status_code == 422, refused.text
    assert [(e["line"], e["field"]) for e in refused.json()["errors"]] == [(2, "equipment_kind")]


# Stats


@pytest.fixture
async def metrology_fixture(service: Harness) -> httpx.AsyncClient:
    client = service.client()
    national = {"level": "national", "plan_code": "2023-JL-GJ"}
    await _post(client, metrology(**national))
    await _post(
        client,
        metrology(**national, instruments_checked=8, instruments_nonconforming=2, result="fail"),
    )
    await _post(client, prepackaged())
    provincial = {"level": "provincial", "plan_code": "2023-JL-SJ", "county_code": "320382"}
    await _post(
        client, metrology(**provincial, metrology_subject="energy_metering", instruments_checked=5)
    )
    await _post(
        client,
        metrology(
            **provincial, metrology_subject="catering", instruments_checked=3, published_on=LATER
        ),
    )
    await _post(
        client,
        metrology(
            metrology_subject="trade_instrument",
            instruments_checked=4,
            instruments_nonconforming=1,
            result="fail",
            sampled_on="2022-06-01",
            published_on="2022-07-01",
        ),
    )
    await _post(client, spot_check(sample_code="P1", sampled_on="2023-03-01"))
    await _post(
        client,
        spot_check(
            programme="food_safety",
            product_category="dairy_products",
            county_code="320382",
            result="pass",
            sampled_on="2023-03-01",
        ),
    )
    return client


def _counties(body: dict[str, Any], *counties: str) -> dict[str, dict[str, Any]]:
    rows = {row["county_code"]: row for row in body["by_county"]}
    return {county: rows[county] for county in counties}


async def test_metrology_stats_count_checks_and_instruments(
    metrology_fixture: httpx.AsyncClient,
) -> None:
    response = await metrology_fixture.get(STATS, params={"year": 2023, "programme": "metrology"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["programme"] == "metrology"
    fields = ("checked", "nonconforming", "instruments_checked", "instruments_nonconforming")

    def counts(row: dict[str, Any]) -> tuple[int, ...]:
        return tuple(row[name] for name in fields)

    by_county = _counties(body, "320323", "320382", "320302")
    assert counts(by_county["320323"]) == (3, 2, 38, 3)
    assert counts(by_county["320382"]) == (1, 0, 5, 0)
    assert counts(by_county["320302"]) == (0, 0, 0, 0)
    assert counts(body["totals"]) == (4, 2, 43, 3)
    subjects = {row["metrology_subject"]: row for row in body["by_subject"]}
    assert counts(subjects["fuel_dispenser"]) == (2, 1, 18, 2)
    assert counts(subjects["prepackaged_quantity"]) == (1, 1, 20, 1)
    assert counts(subjects["catering"]) == (0, 0, 0, 0)
    assert subjects["energy_metering"]["metrology_subject_label"] == "能源計量"
    groups = {(g["county_code"], g["level"]): g for g in body["groups"]}
    assert counts(groups[("320323", "national")]) == (2, 1, 18, 2)
    assert counts(groups[("320323", "city")]) == (1, 1, 20, 1)

    unpublished = await metrology_fixture.get(
        STATS, params={"year": 2023, "programme": "metrology", "include_unpublished": True}
    )
    assert counts(_counties(unpublished.json(), "320382")["320382"]) == (2, 0, 8, 0)
    one = await metrology_fixture.get(
        STATS, params={"year": 2023, "programme": "metrology", "county_code": "320382"}
    )
    assert [row["county_code"] for row in one.json()["by_county"]] == ["320382"]
    earlier = await metrology_fixture.get(STATS, params={"year": 2022, "programme": "metrology"})
    assert counts(earlier.json()["totals"]) == (1, 1, 4, 1)


async def test_product_and_food_stats_count_their_own_programme(
    metrology_fixture: httpx.AsyncClient,
) -> None:
    product = (await metrology_fixture.get(STATS, params={"year": 2023})).json()
    assert product["programme"] == "product_quality"
    assert (product["totals"]["checked"], product["totals"]["passed"]) == (1, 0)
    assert _counties(product, "320323")["320323"]["checked"] == 1
    food = (
        await metrology_fixture.get(STATS, params={"year": 2023, "programme": "food_safety"})
    ).json()
    assert food["programme"] == "food_safety"
    assert (food["totals"]["checked"], food["totals"]["passed"]) == (1, 1)
    categories = {row["product_category"]: row for row in food["by_category"]}
    assert categories["dairy_products"]["checked"] == 1
    assert categories["dairy_products"]["product_category_label"] == "乳製品"
    assert "food" not in categories
    assert categories["meat_products"]["checked"] == 0


@pytest.fixture
async def equipment_fixture(service: Harness) -> httpx.AsyncClient:
    client = service.client()

    async def inspect(code: str, on: str, due: str, **overrides: Any) -> None:
        await _post(client, equipment(code, sampled_on=on, next_due_on=due, **overrides))

    await inspect("E-1", "2022-05-01", "2023-05-01", published_on="2022-06-01")
    await inspect("E-1", "2023-04-20", "2024-04-20")
    await inspect(
        "E-2",
        "2023-02-01",
        "2023-11-30",
        equipment_kind="boiler",
        result="fail",
        major_hazard_source=True,
    )
    elsewhere = {"county_code": "320382"}
    await inspect(
        "E-3",
        "2021-06-01",
        "2022-06-01",
        equipment_kind="pressure_vessel",
        published_on="2021-07-01",
        **elsewhere,
    )
    provincial = {**elsewhere, "level": "provincial", "plan_code": "2023-TZ-SJ"}
    await inspect("E-4", "2023-03-01", "2023-09-01", **provincial)
    await inspect("E-4", "2023-08-25", "2024-08-25", **provincial)
    lifting = {**elsewhere, "equipment_kind": "lifting_machinery"}
    await inspect("E-5", "2023-01-10", "2023-07-10", **lifting)
    await inspect("E-5", "2023-10-01", "2024-10-01", **lifting)
    await inspect("E-6", "2023-05-01", "2024-05-01", published_on=LATER, **elsewhere)
    return client


EQUIPMENT_FIELDS = ("inspected", "failed", "items_registered", "items_overdue")


def _equipment_counts(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[name] for name in EQUIPMENT_FIELDS)


async def _equipment_stats(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(
        STATS, params={"year": 2023, "programme": "special_equipment", **params}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_special_equipment_stats_count_items_overdue_at_year_end(
    equipment_fixture: httpx.AsyncClient,
) -> None:
    body = await _equipment_stats(equipment_fixture)
    assert body["programme"] == "special_equipment"
    by_county = _counties(body, "320323", "320382", "320302")
    assert _equipment_counts(by_county["320323"]) == (2, 1, 2, 1)
    assert by_county["320323"]["overdue_equipment_codes"] == ["E-2"]
    assert (
        by_county["320323"]["items_major_hazard"],
        by_county["320323"]["items_major_hazard_overdue"],
    ) == (1, 1)
    assert _equipment_counts(by_county["320382"]) == (4, 0, 3, 1)
    assert by_county["320382"]["overdue_equipment_codes"] == ["E-3"]
    assert _equipment_counts(by_county["320302"]) == (0, 0, 0, 0)
    assert _equipment_counts(body["totals"]) == (6, 1, 5, 2)
    kinds = {row["equipment_kind"]: row for row in body["by_kind"]}
    assert _equipment_counts(kinds["elevator"]) == (3, 0, 2, 0)
    assert kinds["boiler"]["equipment_kind_label"] == "鍋爐"
    groups = {(g["county_code"], g["level"]): g for g in body["groups"]}
    assert (
        groups[("320382", "provincial")]["inspected"],
        groups[("320382", "city")]["inspected"],
    ) == (2, 2)


async def test_an_item_is_overdue_by_its_latest_inspection_as_of_the_day(
    equipment_fixture: httpx.AsyncClient,
) -> None:
    body = await _equipment_stats(equipment_fixture, as_of="2023-08-31")
    by_county = _counties(body, "320323", "320382")
    # E-2 is due on 30 November; E-5's inspection of 1 October has not happened yet.
    assert _equipment_counts(by_county["320323"]) == (2, 1, 2, 0)
    assert _equipment_counts(by_county["320382"]) == (3, 0, 3, 2)
    assert by_county["320382"]["overdue_equipment_codes"] == ["E-3", "E-5"]
    # Due on 30 November is not yet overdue on that day, and is the day after.
    on_the_day = await _equipment_stats(equipment_fixture, as_of="2023-11-30")
    assert _counties(on_the_day, "320323")["320323"]["items_overdue"] == 0
    next_day = await _equipment_stats(equipment_fixture, as_of="2023-12-01")
    assert _counties(next_day, "320323")["320323"]["items_overdue"] == 1


async def test_a_writer_counts_embargoed_inspections(
    equipment_fixture: httpx.AsyncClient,
) -> None:
    body = await _equipment_stats(equipment_fixture, include_unpublished=True)
    assert _equipment_counts(_counties(body, "320382")["320382"]) == (5, 0, 4, 1)


async def test_a_bound_reader_sees_its_own_county(
    service: Harness, equipment_fixture: httpx.AsyncClient
) -> None:
    bound = service.client(scopes=["spot-checks:read"], county_codes=["320323"])
    body = await _equipment_stats(bound)
    assert [row["county_code"] for row in body["by_county"]] == ["320323"]
    assert _equipment_counts(body["totals"]) == (2, 1, 2, 1)


# Migration 0006


OLD_ROW: dict[str, Any] = {
    "id": "sc-1",
    "plan_code": "2023-GJ-01",
    "level": "national",
    "product_category": "food",
    "product_name": "速凍水餃",
    "enterprise_credit_code": credit_code(1),
    "enterprise_name": "徐州市某某食品有限公司",
    "county_code": "320323",
    "sample_code": "S-1",
    "sampled_on": date(2023, 3, 1),
    "result": "pass",
    "nonconforming_items": [],
    "mandatory_standard_violation": False,
    "refused": False,
    "unlicensed_referral": False,
    "root_id": "sc-1",
    "final_result": "pass",
    "created_by": "test",
    "created_at": datetime(2023, 3, 1, 8, tzinfo=UTC),
    "updated_at": datetime(2023, 3, 1, 8, tzinfo=UTC),
    "version": 1,
}


TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "sampled_on": sa.Date(),
    "nonconforming_items": sa.JSON(),
    "mandatory_standard_violation": sa.Boolean(),
    "refused": sa.Boolean(),
    "unlicensed_referral": sa.Boolean(),
    "created_at": sa.DateTime(timezone=True),
    "updated_at": sa.DateTime(timezone=True),
    "version": sa.Integer(),
}
OLD_TABLE = sa.table(
    "spot_check", *(sa.column(name, TYPES.get(name, sa.String())) for name in OLD_ROW)
)


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(MIGRATIONS, url, VERSION_TABLE)
    (command.downgrade if down else command.upgrade)(config, revision)


async def _execute(url: str, statement: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(statement)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_migration_0006_keeps_records_as_product_quality_both_ways(tmp_path: Path) -> None:
    async with provision_database("inspection_programmes", tmp_path) as url:
        await asyncio.to_thread(_migrate, url, "0005")
        await _execute(url, sa.insert(OLD_TABLE).values(**OLD_ROW))
        await asyncio.to_thread(_migrate, url, "0006")
        rows = await _execute(
            url, sa.text("SELECT id, programme, sample_code, equipment_code FROM spot_check")
        )
        assert [tuple(row) for row in rows] == [("sc-1", "product_quality", "S-1", None)]
        await _execute(
            url,
            sa.text(
                "INSERT INTO spot_check (id, plan_code, level, enterprise_credit_code,"
                " enterprise_name, county_code, sampled_on, result, nonconforming_items,"
                " mandatory_standard_violation, refused, unlicensed_referral, root_id,"
                " final_result, created_by, created_at, updated_at, version, programme,"
                " equipment_code) SELECT 'sc-2', plan_code, level, enterprise_credit_code,"
                " enterprise_name, county_code, sampled_on, result, nonconforming_items,"
                " mandatory_standard_violation, refused, unlicensed_referral, 'sc-2',"
                " final_result, created_by, created_at, updated_at, version,"
                " 'special_equipment', 'E-1' FROM spot_check WHERE id = 'sc-1'"
            ),
        )
        with pytest.raises(RuntimeError, match="1 spot-check record"):
            await asyncio.to_thread(_migrate, url, "0005", down=True)
        await _execute(url, sa.text("DELETE FROM spot_check WHERE id = 'sc-2'"))
        await asyncio.to_thread(_migrate, url, "0005", down=True)
        rows = await _execute(url, sa.text("SELECT id, sample_code FROM spot_check"))
        assert [tuple(row) for row in rows] == [("sc-1", "S-1")]
        await asyncio.to_thread(_migrate, url, "0006")


async def test_the_bulletin_lists_the_programmes_asked_for(service: Harness) -> None:
    client = service.client()
    shared = {"plan_code": "2023-XZ-09", "published_on": "2023-04-01", "sampled_on": "2023-03-01"}
    await _post(client, spot_check(**shared, level="city", product_name="速凍湯圓"))
    await _post(client, metrology(**shared, product_name="加油站", sample_code="JL-1"))
    params = {"plan_code": "2023-XZ-09", "level": "city"}
    both = await client.get(f"{URL}/bulletin.xlsx", params=params)
    assert both.status_code == 200, both.text
    only = await client.get(f"{URL}/bulletin.xlsx", params={**params, "programme": "metrology"})
    assert only.status_code == 200, only.text
    assert len(xlsx_values(both.content)) == 3
    rows = xlsx_values(only.content)
    assert [row[3] for row in rows[1:]] == ["加油站"]
    none = await client.get(
        f"{URL}/bulletin.xlsx", params={**params, "programme": "special_equipment"}
    )
    assert none.status_code == 404, none.text


async def _overdue(client: httpx.AsyncClient, **params: Any) -> list[tuple[str, str, int]]:
    response = await client.get(f"{URL}/overdue-equipment", params=params)
    assert response.status_code == 200, response.text
    return [
        (item["equipment_code"], item["next_due_on"], item["days_overdue"])
        for item in response.json()["items"]
    ]


async def test_the_items_overdue_are_listed_by_their_latest_inspection(
    equipment_fixture: httpx.AsyncClient,
) -> None:
    client = equipment_fixture
    assert await _overdue(client, as_of="2023-12-31") == [
        ("E-2", "2023-11-30", 31),
        ("E-3", "2022-06-01", 578),
    ]
    # On 31 August E-5's inspection of 1 October has not happened, E-2 is not yet due.
    assert await _overdue(client, as_of="2023-08-31") == [
        ("E-3", "2022-06-01", 456),
        ("E-5", "2023-07-10", 52),
    ]
    assert await _overdue(client, as_of="2023-12-31", county_code="320323") == [
        ("E-2", "2023-11-30", 31)
    ]
    first = await client.get(f"{URL}/overdue-equipment", params={"as_of": "2023-12-31", "limit": 1})
    rest = await client.get(
        f"{URL}/overdue-equipment",
        params={"as_of": "2023-12-31", "limit": 1, "cursor": first.json()["next_cursor"]},
    )
    assert [i["equipment_code"] for i in first.json()["items"] + rest.json()["items"]] == [
        "E-2",
        "E-3",
    ]
    boiler = first.json()["items"][0]
    assert boiler["equipment_kind"] == "boiler"
    assert boiler["major_hazard_source"] is True
    assert boiler["inspected_on"] == "2023-02-01"


async def test_a_bound_reader_sees_its_own_county_s_overdue_items(
    service: Harness, equipment_fixture: httpx.AsyncClient
) -> None:
    bound = service.client(scopes=["spot-checks:read"], county_codes=["320382"])
    response = await bound.get(f"{URL}/overdue-equipment", params={"as_of": "2023-12-31"})
    assert response.status_code == 200, response.text
    assert [i["equipment_code"] for i in response.json()["items"]] == ["E-3"]
    unknown = await bound.get(f"{URL}/overdue-equipment", params={"county_code": "990000"})
    assert unknown.status_code == 422, unknown.text
    assert "county_code" in unknown.text


async def test_the_sweep_announces_each_overdue_item_once_per_missed_due_day(
    service: Harness, equipment_fixture: httpx.AsyncClient
) -> None:
    from inspection import alerts

    settings = service.app.state.settings

    async def sweep(today: date) -> int:
        return await alerts.sweep(
            sessionmaker=service.app.state.sessionmaker,
            today=today,
            months=settings.alert_repeated_failure_months,
            min_failures=settings.alert_repeated_failure_min,
        )

    assert await sweep(date(2023, 12, 31)) == 2
    assert await sweep(date(2023, 12, 31)) == 0
    # A week later the same two are still overdue on the same due days: nothing new.
    assert await sweep(date(2024, 1, 7)) == 0
    reader = service.client(scopes=["spot-checks:read", "events:read"])
    feed = await reader.get("/api/v1/events", params={"type": "spot_check.equipment_overdue"})
    assert feed.status_code == 200, feed.text
    events = feed.json()["items"]
    assert sorted((e["subject"], e["countycode"]) for e in events) == [
        ("equipment/E-2", "320323"),
        ("equipment/E-3", "320382"),
    ]
    assert {e["data"]["item"]["next_due_on"] for e in events} == {"2023-11-30", "2022-06-01"}
