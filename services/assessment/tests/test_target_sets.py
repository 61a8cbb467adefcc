"""Regions and target sets: validation, versions, freezing and the shipped seed."""

import json
from pathlib import Path

from kit.testing import Harness

from .builders import PIZHOU, TONGSHAN, small_target_set

SEED = Path(__file__).resolve().parents[3] / "config" / "target_sets" / "2007.json"


async def test_regions_are_the_configured_counties(service: Harness) -> None:
    response = await service.client().get("/api/v1/regions")
    items = response.json()["items"]
    assert len(items) == 11
    assert {"code": TONGSHAN, "name": "銅山縣", "kind": "county"} in items
    assert {r["kind"] for r in items} == {"county", "county_city", "district"}


async def test_reading_needs_the_read_scope(service: Harness) -> None:
    response = await service.client(scopes=["brands:read"]).get("/api/v1/regions")
    assert response.status_code == 403


async def test_the_seed_target_set_loads_and_copies_to_another_year(service: Harness) -> None:
    client = service.client()
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    created = await client.put("/api/v1/target-sets/2007", json=seed)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/api/v1/target-sets/2007?version=1"
    read = (await client.get("/api/v1/target-sets/2007")).json()
    keys = {i["key"] for i in read["indicators"]}
    assert len(keys) == 23
    assert {"spot_check_pass_rate", "major_quality_incidents", "quality_county_acceptance"} <= keys
    assert {"quality_county_activity", "food_processing_rectification"} <= keys
    assert sum(i["weight"] for i in read["indicators"]) == 108
    shown = {i["key"] for i in read["indicators"] if i["comparator"] == "informational"}
    assert shown == {
        "metrology_special_checks",
        "special_equipment_overdue",
        "licensed_food_producers",
        "new_gi_products",
        "quality_awards_won",
    }
    assert all(i["weight"] == 0 for i in read["indicators"] if i["key"] in shown)
    veto = next(i for i in read["indicators"] if i["key"] == "major_quality_incidents")
    assert len(veto["measure"]["incidents"]) == 4
    activity = next(i for i in read["indicators"] if i["key"] == "quality_county_activity")
    assert len(activity["allocations"]) == 10
    assert TONGSHAN not in activity["allocations"]
    copy = await client.put("/api/v1/target-sets/2008", json=read)
    assert copy.status_code == 201, copy.text
    assert (await client.get("/api/v1/target-sets/2008")).json()["indicators"] == read["indicators"]
    listing = (await client.get("/api/v1/target-sets")).json()["items"]
    assert [(s["year"], s["version"], s["current"]) for s in listing] == [
        (2007, 1, True),
        (2008, 1, True),
    ]


async def test_counts_must_add_up_to_the_city_target(service: Harness) -> None:
    body = small_target_set()
    body["indicators"][0]["allocations"][TONGSHAN]["target"] = 2
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "add up to 3" in fields["indicators[0].allocations"]
    assert (await service.client().get("/api/v1/target-sets/2007")).status_code == 404


async def test_a_rate_may_carry_its_own_county_target(service: Harness) -> None:
    body = small_target_set()
    body["indicators"][3]["allocations"] = {PIZHOU: {"target": 0.9}}
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 201, response.text


async def test_inconsistent_indicators_are_named(service: Harness) -> None:
    body = small_target_set()
    body["indicators"][0]["source"] = "certificates"
    body["indicators"][1]["allocations"]["999999"] = {"target": 0}
    body["indicators"][2]["reference"] = None
    body["indicators"][3]["target"] = 95
    body["indicators"].append(dict(body["indicators"][4]))
    body["indicators"].append(
        {
            "key": "about_without_tolerance",
            "name": "x",
            "source": "brands",
            "measure": {"kind": "in_force", "tier": "city_famous"},
            "comparator": "about",
            "target": 150,
            "weight": 1,
        }
    )
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {
        "indicators[0].measure.kind",
        "indicators[1].allocations.999999",
        "indicators[2].reference",
        "indicators[3].target",
        "indicators[5].key",
        "indicators[6].tolerance",
    } <= fields


async def test_unknown_comparator_is_a_422_naming_the_field(service: Harness) -> None:
    body = small_target_set()
    body["indicators"][0]["comparator"] = "roughly"
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "indicators[0].comparator"


async def test_before_publication_a_put_changes_the_set_in_place(service: Harness) -> None:
    client = service.client()
    first = await client.put("/api/v1/target-sets/2007", json=small_target_set())
    body = small_target_set()
    body["indicators"][2]["margin"] = 0.01
    stale = await client.put(
        "/api/v1/target-sets/2007", json=body, headers={"If-Match": '"not-the-etag"'}
    )
    assert stale.status_code == 412
    second = await client.put(
        "/api/v1/target-sets/2007", json=body, headers={"If-Match": first.headers["ETag"]}
    )
    assert second.status_code == 200
    assert second.json()["version"] == 1
    assert second.headers["ETag"] != first.headers["ETag"]
    audit = (await client.get("/api/v1/audit-entries", params={"entity": "target_set"})).json()
    actions = [(e["action"], e["entity_id"]) for e in audit["items"]]
    assert actions == [("create", "2007/1"), ("update", "2007/1")]
    update = audit["items"][1]
    assert update["before"]["indicators"][2]["margin"] == 0
    assert update["after"]["indicators"][2]["margin"] == 0.01


async def test_an_unknown_version_is_a_404(service: Harness) -> None:
    await service.client().put("/api/v1/target-sets/2007", json=small_target_set())
    response = await service.client().get("/api/v1/target-sets/2007", params={"version": 9})
    assert response.status_code == 404


async def test_a_version_beyond_any_stored_number_is_a_422_not_a_500(service: Harness) -> None:
    response = await service.client().get(
        "/api/v1/target-sets/2007", params={"version": 5_441_876_772_418}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "version"


async def test_replacing_a_set_needs_its_etag(service: Harness) -> None:
    client = service.client()
    path = "/api/v1/target-sets/2007"
    first = await client.put(path, json=small_target_set(), headers={"If-None-Match": "*"})
    assert first.status_code == 201, first.text
    body = small_target_set()
    body["indicators"][2]["margin"] = 0.01
    without = await client.put(path, json=body)
    assert without.status_code == 428
    assert without.json()["field"] == "If-Match"
    create_only = await client.put(path, json=body, headers={"If-None-Match": "*"})
    assert create_only.status_code == 412
    unchanged = await client.get(path)
    assert unchanged.json()["indicators"][2]["margin"] == 0
    assert unchanged.headers["ETag"] == first.headers["ETag"]
    nothing_to_match = await client.put(
        "/api/v1/target-sets/2008", json=body, headers={"If-Match": first.headers["ETag"]}
    )
    assert nothing_to_match.status_code == 412
    assert (await client.get("/api/v1/target-sets/2008")).status_code == 404


async def test_target_sets_are_listed_page_by_page(service: Harness) -> None:
    client = service.client()
    for year in (2009, 2007, 2008):
        response = await client.put(f"/api/v1/target-sets/{year}", json=small_target_set())
        assert response.status_code == 201
    first = (await client.get("/api/v1/target-sets", params={"limit": 2})).json()
    assert [s["year"] for s in first["items"]] == [2007, 2008]
    rest = await client.get(
        "/api/v1/target-sets", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [(s["year"], s["current"]) for s in rest.json()["items"]] == [(2009, True)]
    assert rest.json()["next_cursor"] is None
    other_query = await client.get(
        "/api/v1/target-sets", params={"year": 2007, "cursor": first["next_cursor"]}
    )
    assert other_query.status_code == 400


async def test_the_verdict_options_are_checked(service: Harness) -> None:
    body = small_target_set(
        rules={
            "scoring": "all_or_nothing",
            "commendation_quota": 3,
            "ranking_groups": [
                {"group": "counties", "label": "縣(市)", "kinds": ["county", "county_city"]},
                {"group": "districts", "label": "區", "kinds": ["district", "county"]},
            ],
        }
    )
    body["indicators"][0]["over"] = "met"
    body["indicators"][1]["expected_on"] = "12-08"
    body["indicators"][2]["unallocated_credit"] = 1
    body["indicators"][3]["measure"]["findings"] = ["refused"]
    body["indicators"][4]["measure"]["findings"] = ["mandatory_standard_violation"]
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "indicators[0].over",
        "indicators[1].expected_on",
        "indicators[2].unallocated_credit",
        "indicators[3].measure.findings",
        "rules.ranking_groups[1].kinds",
    }
    body["rules"]["ranking_groups"][1]["kinds"] = ["district"]
    for index, name in ((0, "over"), (1, "expected_on"), (2, "unallocated_credit")):
        del body["indicators"][index][name]
    del body["indicators"][3]["measure"]["findings"]
    body["indicators"][1]["cadence"] = "batch"
    response = await service.client().put("/api/v1/target-sets/2007", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["rules"]["ranking_groups"][1]["kinds"] == ["district"]
