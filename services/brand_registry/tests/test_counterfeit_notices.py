"""Counterfeit notices (§三.7 假冒我市名優企業產品): another service reports a counterfeiting case
against a listed product, once per source and reference. The listing counts it and its history
records it; it is not put under review, being the victim."""

from __future__ import annotations

import asyncio
from typing import Any

from brand_registry.tests.support import PIZHOU, TONGSHAN, create, credit_code
from kit.testing import Harness

NOTICES = "/api/v1/brands/counterfeit-notices"
FLAG = ["brands:flag"]


def notice(brand_id: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "source": "inspection",
        "reference": "incidents/1",
        "brand_id": brand_id,
        "case_kind": "counterfeiting_case",
        "occurred_on": "2024-10-08",
        "county_code": PIZHOU,
        "summary": "邳州某作坊假冒維維豆奶粉",
    }
    values.update(overrides)
    return values


async def test_a_notice_is_counted_recorded_and_listed(service: Harness) -> None:
    client = service.client()
    brand = await create(client)
    etag = (await client.get(f"/api/v1/brands/{brand['id']}")).headers["ETag"]
    flagger = service.client(scopes=FLAG, client_id="inspection")
    response = await flagger.post(NOTICES, json=notice(brand["id"]))
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["raised_by"] == "inspection"
    assert stored["case_kind"] == "counterfeiting_case"
    second = await flagger.post(NOTICES, json=notice(brand["id"], reference="incidents/2"))
    assert second.status_code == 201, second.text

    read = await client.get(f"/api/v1/brands/{brand['id']}")
    assert read.json()["counterfeit_cases"] == 2
    assert read.json()["review_required"] is False
    assert read.json()["status"] == "active"
    assert read.headers["ETag"] != etag
    listed = (await client.get("/api/v1/brands")).json()["items"]
    assert listed[0]["counterfeit_cases"] == 2
    notices = (await client.get(f"/api/v1/brands/{brand['id']}/counterfeit-notices")).json()
    assert [n["reference"] for n in notices["items"]] == ["incidents/1", "incidents/2"]
    assert notices["items"][0] == stored
    history = (await client.get(f"/api/v1/brands/{brand['id']}/history")).json()["items"]
    noticed = [h for h in history if h["action"] == "counterfeit_noticed"]
    assert [h["changes"]["counterfeit_cases"] for h in noticed] == [[0, 1], [1, 2]]
    assert noticed[0]["changes"]["reference"] == "incidents/1"
    assert noticed[0]["effective_on"] == "2024-10-08"
    assert "邳州某作坊" in noticed[0]["reason"]


async def test_a_repeat_answers_the_stored_notice_and_another_body_is_a_409(
    service: Harness,
) -> None:
    brand = await create(service.client())
    flagger = service.client(scopes=FLAG, client_id="inspection")
    first = await flagger.post(NOTICES, json=notice(brand["id"]))
    assert first.status_code == 201, first.text
    repeat = await flagger.post(NOTICES, json=notice(brand["id"]))
    assert repeat.status_code == 200, repeat.text
    assert repeat.json() == first.json()
    other = await flagger.post(NOTICES, json=notice(brand["id"], summary="另一案件"))
    assert other.status_code == 409, other.text
    assert [e["field"] for e in other.json()["errors"]] == ["summary"]
    read = (await service.client().get(f"/api/v1/brands/{brand['id']}")).json()
    assert read["counterfeit_cases"] == 1


async def test_concurrent_copies_store_one_notice(service: Harness) -> None:
    brand = await create(service.client())
    clients = [service.client(scopes=FLAG, client_id="inspection") for _ in range(10)]
    responses = await asyncio.gather(*(c.post(NOTICES, json=notice(brand["id"])) for c in clients))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 9 + [201], [r.text for r in responses]
    assert len({r.text for r in responses}) == 1
    read = (await service.client().get(f"/api/v1/brands/{brand['id']}")).json()
    assert read["counterfeit_cases"] == 1


async def test_an_unknown_listing_is_a_404_naming_brand_id(service: Harness) -> None:
    flagger = service.client(scopes=FLAG)
    response = await flagger.post(NOTICES, json=notice("no-such-listing"))
    assert response.status_code == 404, response.text
    assert response.json()["field"] == "brand_id"


async def test_bad_fields_are_422s_naming_them(service: Harness) -> None:
    brand = await create(service.client(), enterprise_credit_code=credit_code(2))
    flagger = service.client(scopes=FLAG)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"county_code": "320399"}, "county_code"),
        ({"occurred_on": "2999-01-01"}, "occurred_on"),
        ({"occurred_on": "1900-01-01"}, "occurred_on"),
        ({"case_kind": "Counterfeit!"}, "case_kind"),
        ({"summary": ""}, "summary"),
        ({"source": None}, "source"),
    ]
    for overrides, field in cases:
        response = await flagger.post(NOTICES, json=notice(brand["id"], **overrides))
        assert response.status_code == 422, (overrides, response.text)
        assert response.json()["errors"][0]["field"] == field, overrides
    assert (await service.client().get(f"/api/v1/brands/{brand['id']}")).json()[
        "counterfeit_cases"
    ] == 0


async def test_the_flag_scope_is_required_and_readers_see_their_counties(
    service: Harness,
) -> None:
    brand = await create(service.client(), county_code=TONGSHAN)
    writer = service.client(scopes=["brands:read", "brands:write"])
    refused = await writer.post(NOTICES, json=notice(brand["id"]))
    assert refused.status_code == 403
    flagger = service.client(scopes=FLAG)
    assert (await flagger.post(NOTICES, json=notice(brand["id"]))).status_code == 201
    elsewhere = service.client(scopes=["brands:read"], county_codes=[PIZHOU])
    hidden = await elsewhere.get(f"/api/v1/brands/{brand['id']}/counterfeit-notices")
    assert hidden.status_code == 404
