"""`/certificates/stats` against a hand-counted fixture (see docs/contracts.md)."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]

# Enterprises of the fixture, by letter:
# A 320323  ISO 9001 2008-03-01 and ISO 14001 2008-09-01 (OHSAS 18001 since 2006, not counted)
# B 320323  ISO 9001 2005-06-01, renewed 2008-06-01 keeping original_issued_on: not new
# C 320302  ISO 9001 2004, withdrawn 2006-05-01, re-certified 2008-04-01: not new
# D 320302  ISO 14001 2008-11-20: new
# E 320321  ISO 22000 2008-02-01: food safety only, new when that family is asked for
# F 320323  ISO 9001 2009-01-05: new in 2009
# G 320382  GB/T 19001-2008 2007-12-31: not new; suspended 2008-10-01, reinstated 2009-01-15
# H 320324  ISO 9001 2008-12-31: new; withdrawn 2009-02-01
# I 320303 and 320305: ISO 9001 and ISO 14001 both 2008-05-05: new in each county, once citywide
# J 320323  ISO 9001 2008-07-01, confidential: new (counts hide no enterprise)
# K 320311  ISO 9001 2008-02-01, withdrawn 2008-08-01: new only as of a day before the withdrawal
# L 320311  ISO 9001 2008-03-01 withdrawn 2008-10-01, ISO 14001 2008-05-01 held: new


@pytest.fixture
async def fixture(
    service: Harness, new_certificate: NewCertificate, credit_code: Callable[[int], str]
) -> None:
    client = service.client()
    code = {letter: credit_code(900 + i) for i, letter in enumerate("ABCDEFGHIJKL")}

    async def cert(letter: str, county: str, standard: str, issued: str, **extra: Any) -> Any:
        return await new_certificate(
            enterprise_credit_code=code[letter],
            county_code=county,
            standard=standard,
            issued_on=issued,
            **extra,
        )

    async def status(item: dict[str, Any], to: str, on: str) -> None:
        url = f"/api/v1/certificates/{item['id']}"
        etag = (await client.get(url)).headers["ETag"]
        response = await client.post(
            f"{url}/status",
            json={"status": to, "reason": "fixture", "effective_on": on},
            headers={"If-Match": etag},
        )
        assert response.status_code == 200, response.text

    await cert("A", "320323", "OHSAS 18001:2007", "2006-01-01")
    await cert("A", "320323", "ISO 9001:2008", "2008-03-01")
    await cert("A", "320323", "ISO 14001:2004", "2008-09-01")
    await cert("B", "320323", "ISO 9001:2000", "2005-06-01")
    await cert("B", "320323", "ISO 9001:2008", "2008-06-01", original_issued_on="2005-06-01")
    withdrawn = await cert("C", "320302", "ISO 9001:2000", "2004-01-10")
    await status(withdrawn, "withdrawn", "2006-05-01")
    await cert("C", "320302", "ISO 9001:2008", "2008-04-01")
    await cert("D", "320302", "ISO 14001:2004", "2008-11-20")
    await cert("E", "320321", "ISO 22000:2005", "2008-02-01")
    await cert("F", "320323", "ISO 9001:2008", "2009-01-05")
    suspended = await cert("G", "320382", "GB/T 19001-2008", "2007-12-31")
    await status(suspended, "suspended", "2008-10-01")
    await status(suspended, "valid", "2009-01-15")
    later_withdrawn = await cert("H", "320324", "ISO 9001:2008", "2008-12-31")
    await status(later_withdrawn, "withdrawn", "2009-02-01")
    await cert("I", "320303", "ISO 9001:2008", "2008-05-05")
    await cert("I", "320305", "ISO 14001:2004", "2008-05-05")
    await cert("J", "320323", "ISO 9001:2008", "2008-07-01", confidential=True)
    lapsed = await cert("K", "320311", "ISO 9001:2008", "2008-02-01")
    await status(lapsed, "withdrawn", "2008-08-01")
    partly = await cert("L", "320311", "ISO 9001:2008", "2008-03-01")
    await status(partly, "withdrawn", "2008-10-01")
    await cert("L", "320311", "ISO 14001:2004", "2008-05-01")


def _by_county(body: dict[str, Any]) -> dict[str, tuple[int, int, dict[str, int]]]:
    return {
        row["county_code"]: (
            row["new_certified_enterprises"],
            row["in_force"],
            row["in_force_by_family"],
        )
        for row in body["by_county"]
    }


async def test_newly_certified_enterprises_and_in_force_for_2008(
    service: Harness, fixture: None
) -> None:
    response = await service.client(scopes=["certificates:read"]).get(
        "/api/v1/certificates/stats", params={"year": 2008}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == 2008
    assert body["as_of"] == "2008-12-31"
    assert body["families"] == ["environment", "quality"]
    counties = _by_county(body)
    assert counties["320323"] == (2, 4, {"quality": 3, "environment": 1})
    assert counties["320302"] == (1, 2, {"quality": 1, "environment": 1})
    assert counties["320324"] == (1, 1, {"quality": 1, "environment": 0})
    assert counties["320303"] == (1, 1, {"quality": 1, "environment": 0})
    assert counties["320305"] == (1, 1, {"quality": 0, "environment": 1})
    assert counties["320382"] == (0, 0, {"quality": 0, "environment": 0})
    assert counties["320321"] == (0, 0, {"quality": 0, "environment": 0})
    # K's only certificate was withdrawn in August; L keeps its ISO 14001
    assert counties["320311"] == (1, 1, {"quality": 0, "environment": 1})
    # every configured county is listed, with zeros where nothing happened
    assert len(counties) == 11
    assert body["totals"] == {
        "new_certified_enterprises": 6,
        "in_force": 10,
        "in_force_by_family": {"quality": 6, "environment": 4},
    }


async def test_an_enterprise_whose_certificates_were_withdrawn_is_not_newly_certified(
    service: Harness, fixture: None
) -> None:
    async def new_in(county: str, **params: Any) -> tuple[int, int]:
        body = (
            await service.client().get(
                "/api/v1/certificates/stats", params={"year": 2008, **params}
            )
        ).json()
        return _by_county(body)[county][0], body["totals"]["new_certified_enterprises"]

    # By hand, the enterprises whose first counted certificate is of 2008 and who still hold
    # one not withdrawn on the day:
    assert await new_in("320311", as_of="2008-06-30") == (2, 4)  # A, I, K, L
    assert await new_in("320311", as_of="2008-07-31") == (2, 5)  # and J from 1 July
    assert await new_in("320311", as_of="2008-08-01") == (1, 4)  # K withdrawn that day
    assert await new_in("320311") == (1, 6)  # year end: A, D, H, I, J, L
    # After the year, on the day H was withdrawn: A, D, I, J, L (L keeps its ISO 14001).
    assert await new_in("320324", as_of="2009-02-01") == (0, 5)


async def test_as_of_inside_the_next_year(service: Harness, fixture: None) -> None:
    body = (
        await service.client().get(
            "/api/v1/certificates/stats", params={"year": 2009, "as_of": "2009-06-30"}
        )
    ).json()
    counties = _by_county(body)
    assert counties["320323"][0] == 1  # F
    assert counties["320382"][1] == 1  # G reinstated
    assert counties["320324"][1] == 0  # H withdrawn
    # B's first cycle expired on 2008-06-01; F joined
    assert counties["320323"][2] == {"quality": 4, "environment": 1}
    assert body["totals"]["new_certified_enterprises"] == 1


async def test_other_families_and_one_county(service: Harness, fixture: None) -> None:
    client = service.client()
    food = (
        await client.get(
            "/api/v1/certificates/stats", params={"year": 2008, "families": "food_safety"}
        )
    ).json()
    assert food["families"] == ["food_safety"]
    assert _by_county(food)["320321"] == (1, 1, {"food_safety": 1})
    assert food["totals"]["new_certified_enterprises"] == 1
    health = (
        await client.get(
            "/api/v1/certificates/stats",
            params={"year": 2008, "families": "occupational_health_safety,quality"},
        )
    ).json()
    # A held OHSAS 18001 since 2006, so with that family counted it is not new in 2008
    assert _by_county(health)["320323"][0] == 1
    one = (
        await client.get(
            "/api/v1/certificates/stats", params={"year": 2008, "county_code": "320323"}
        )
    ).json()
    assert [row["county_code"] for row in one["by_county"]] == ["320323"]
    assert one["totals"]["new_certified_enterprises"] == 2
    assert one["totals"]["in_force"] == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "year"),
        ({"year": "abc"}, "year"),
        ({"year": 2008, "families": "quality,energy"}, "families"),
        ({"year": 2008, "county_code": "320399"}, "county_code"),
        ({"year": 2008, "as_of": "2007-12-31"}, "as_of"),
    ],
)
async def test_bad_stats_queries_name_the_field(
    service: Harness, params: dict[str, Any], field: str
) -> None:
    response = await service.client().get("/api/v1/certificates/stats", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_stats_need_the_read_scope(service: Harness) -> None:
    response = await service.client(scopes=[]).get(
        "/api/v1/certificates/stats", params={"year": 2008}
    )
    assert response.status_code == 403
