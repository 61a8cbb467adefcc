"""`/brands/stats` against a hand-counted register spanning year boundaries, renewals,
revocations, suspensions and expiry. A listing revoked on or before `as_of` counts neither as
new nor in force; a suspended one is still new, only not in force while suspended."""

from __future__ import annotations

from typing import Any

import httpx

from brand_registry.tests.support import PIZHOU, TONGSHAN, create, credit_code, set_status
from kit.testing import Harness

STATS = "/api/v1/brands/stats"


async def _award(client: httpx.AsyncClient, number: int, **fields: Any) -> str:
    fields.setdefault("valid_until", None)
    fields.setdefault("enterprise_credit_code", credit_code(number))
    return str((await create(client, **fields))["id"])


async def _change(client: httpx.AsyncClient, brand_id: str, status: str, on: str) -> None:
    response = await set_status(client, brand_id, status, effective_on=on)
    assert response.status_code == 200, response.text


async def _register(client: httpx.AsyncClient) -> None:
    intl = {"international_standard": True, "standard_code": "ISO 22000"}
    # Tongshan, china_famous: A new in 2008 (international), B just before the year, C just after.
    await _award(client, 1, awarded_on="2008-03-01", **intl)
    await _award(client, 2, awarded_on="2007-12-31")
    await _award(client, 3, awarded_on="2009-01-01")
    # Tongshan, provincial_famous (2-year validity): D valid through 31 December, E lapsed.
    await _award(client, 4, tier="provincial_famous", awarded_on="2006-12-31")
    await _award(client, 5, tier="provincial_famous", awarded_on="2006-06-01")
    # F1 renewed by F2 in October 2008, while F1 was still valid.
    await _award(
        client, 6, tier="provincial_famous", awarded_on="2006-11-01", valid_until="2009-06-30"
    )
    await _award(client, 6, tier="provincial_famous", award_kind="renewal", awarded_on="2008-10-15")
    # G new in 2008 and revoked in November; H new in 2008, revoked only in 2009.
    g = await _award(client, 7, tier="provincial_famous", awarded_on="2008-05-05")
    await _change(client, g, "revoked", "2008-11-01")
    h = await _award(client, 8, tier="provincial_famous", awarded_on="2008-02-02", **intl)
    await _change(client, h, "revoked", "2009-02-01")
    # Tongshan, city_famous: I suspended from 1 December 2008; J suspended in spring only.
    i = await _award(client, 9, tier="city_famous", awarded_on="2007-05-01")
    await _change(client, i, "suspended", "2008-12-01")
    j = await _award(client, 10, tier="city_famous", awarded_on="2007-05-01")
    await _change(client, j, "suspended", "2008-03-01")
    await _change(client, j, "active", "2008-04-01")
    # Pizhou: K, the last day the inspection-exempt scheme took awards; L1 renewed by L2.
    await _award(
        client,
        11,
        tier="national_inspection_exempt",
        county_code=PIZHOU,
        awarded_on="2008-09-17",
        **intl,
    )
    await _award(client, 12, county_code=PIZHOU, awarded_on="2005-09-01")
    await _award(client, 12, county_code=PIZHOU, award_kind="renewal", awarded_on="2008-09-01")


def _counts(new: int, in_force: int, intl: int) -> dict[str, int]:
    return {"new_awards": new, "in_force": in_force, "in_force_international": intl}


def _group(body: dict[str, Any], county: str, tier: str) -> dict[str, int]:
    (group,) = [g for g in body["groups"] if g["county_code"] == county and g["tier"] == tier]
    return {k: group[k] for k in ("new_awards", "in_force", "in_force_international")}


async def test_stats_match_the_hand_count(service: Harness) -> None:
    client = service.client()
    await _register(client)
    response = await client.get(STATS, params={"year": 2008})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == 2008
    assert body["as_of"] == "2008-12-31"
    assert _group(body, TONGSHAN, "china_famous") == _counts(1, 2, 1)
    # Provincial, new in 2008: G (revoked 1 November: out) and H (revoked only in 2009): 1.
    assert _group(body, TONGSHAN, "provincial_famous") == _counts(1, 3, 1)
    assert _group(body, TONGSHAN, "city_famous") == _counts(0, 1, 0)
    assert _group(body, TONGSHAN, "national_inspection_exempt") == _counts(0, 0, 0)
    assert _group(body, PIZHOU, "national_inspection_exempt") == _counts(1, 1, 1)
    assert _group(body, PIZHOU, "china_famous") == _counts(0, 1, 0)
    assert body["totals"] == _counts(3, 8, 3)
    by_county = {c["county_code"]: c for c in body["by_county"]}
    assert len(by_county) == 11  # every configured county, none truncated
    assert by_county[TONGSHAN] == {"county_code": TONGSHAN, **_counts(2, 6, 2)}
    assert by_county[PIZHOU] == {"county_code": PIZHOU, **_counts(1, 2, 1)}
    assert by_county["320321"] == {"county_code": "320321", **_counts(0, 0, 0)}
    by_tier = {t["tier"]: t for t in body["by_tier"]}
    assert by_tier["china_famous"] == {"tier": "china_famous", **_counts(1, 3, 1)}
    assert by_tier["provincial_famous"] == {"tier": "provincial_famous", **_counts(1, 3, 1)}
    assert by_tier["city_famous"] == {"tier": "city_famous", **_counts(0, 1, 0)}
    assert len(body["groups"]) == 11 * 5  # every county × every tier


async def test_stats_as_of_a_date_and_for_the_next_year(service: Harness) -> None:
    client = service.client()
    await _register(client)
    november = (await client.get(STATS, params={"year": 2008, "as_of": "2008-11-30"})).json()
    assert november["as_of"] == "2008-11-30"
    # G was revoked on 1 November; I's suspension only starts on 1 December.
    assert november["totals"] == _counts(3, 9, 3)
    assert _group(november, TONGSHAN, "city_famous") == _counts(0, 2, 0)
    # The day before G's revocation it was new and in force.
    october = (await client.get(STATS, params={"year": 2008, "as_of": "2008-10-31"})).json()
    assert _group(october, TONGSHAN, "provincial_famous") == _counts(2, 4, 1)
    # 2008 counted in March 2009: H was revoked on 1 February, so it is no longer new either.
    later = (await client.get(STATS, params={"year": 2008, "as_of": "2009-03-01"})).json()
    assert _group(later, TONGSHAN, "provincial_famous")["new_awards"] == 0
    next_year = (await client.get(STATS, params={"year": 2009})).json()
    # C is new in 2009; D lapsed, H was revoked, I is still suspended.
    assert next_year["totals"] == _counts(1, 7, 2)


async def test_stats_for_one_county(service: Harness) -> None:
    client = service.client()
    await _register(client)
    body = (await client.get(STATS, params={"year": 2008, "county_code": PIZHOU})).json()
    assert {g["county_code"] for g in body["groups"]} == {PIZHOU}
    assert [c["county_code"] for c in body["by_county"]] == [PIZHOU]
    assert body["totals"] == _counts(1, 2, 1)


async def test_stats_reject_bad_parameters(service: Harness) -> None:
    client = service.client()
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "year"),
        ({"year": "twenty"}, "year"),
        ({"year": 2008, "county_code": "320399"}, "county_code"),
        ({"year": 2008, "as_of": "2008-13-01"}, "as_of"),
    ]
    for params, field in cases:
        response = await client.get(STATS, params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field
