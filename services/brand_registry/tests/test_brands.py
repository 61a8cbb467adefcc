"""Registering, reading, editing and listing brand listings over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from brand_registry.tests.support import PIZHOU, TONGSHAN, count, create, credit_code, listing
from kit.testing import Harness

BRANDS = "/api/v1/brands"


async def test_create_returns_the_listing_with_location_etag_and_defaults(service: Harness) -> None:
    client = service.client()
    response = await client.post(
        BRANDS, json=listing(batch_code="蘇質監〔2024〕12號", valid_until=None)
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"{BRANDS}/{body['id']}"
    assert body["tier_label"] == "中國名牌產品"
    assert body["valid_until"] == "2027-09-01"
    assert body["status"] == "active"
    assert body["batch_code"] == "蘇質監〔2024〕12號"
    fetched = await client.get(response.headers["Location"])
    assert fetched.json() == body
    assert fetched.headers["ETag"] == response.headers["ETag"]


async def test_validity_comes_from_the_tier_policy_table(service: Harness) -> None:
    client = service.client()
    provincial = await create(
        client, tier="provincial_famous", awarded_on="2024-02-29", valid_until=None
    )
    assert provincial["valid_until"] == "2026-02-28"
    assert provincial["tier_label"] == "江蘇名牌產品"
    explicit = await create(client, tier="city_famous", valid_until="2025-12-31")
    assert explicit["valid_until"] == "2025-12-31"
    tiers = (await client.get(f"{BRANDS}/tiers")).json()
    exempt = next(t for t in tiers if t["code"] == "national_inspection_exempt")
    assert exempt["awards_closed_after"] == "2008-09-17"


async def test_a_listing_past_valid_until_reads_expired_without_a_write(service: Harness) -> None:
    client = service.client()
    old = await create(client, awarded_on="2005-09-01", valid_until=None)
    assert old["valid_until"] == "2008-09-01"
    assert old["status"] == "expired"
    assert await count(client, status="expired") == 1
    assert await count(client, status="active", as_of="2008-09-01") == 1
    assert await count(client, status="expired", as_of="2008-09-02") == 1


async def test_idempotency_key_replays_the_first_create(service: Harness) -> None:
    client = service.client()
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post(BRANDS, json=listing(), headers=headers)
    again = await client.post(BRANDS, json=listing(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert await count(client) == 1
    changed = await client.post(BRANDS, json=listing(brand_name="別的"), headers=headers)
    assert changed.status_code == 422


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tier": "world_famous"}, "tier"),
        ({"sector": "mining"}, "sector"),
        ({"county_code": "320399"}, "county_code"),
        ({"county_code": "32032"}, "county_code"),
        ({"enterprise_credit_code": credit_code(1)[:-1] + "0"}, "enterprise_credit_code"),
        ({"awarded_on": "2024-09-01", "valid_until": "2024-08-31"}, "valid_until"),
        ({"tier": "national_inspection_exempt", "awarded_on": "2008-09-18"}, "tier"),
        ({"international_standard": True}, "standard_code"),
        ({"award_kind": "renewal"}, "award_kind"),
        ({"product_name": ""}, "product_name"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    service: Harness, overrides: dict[str, object], field: str
) -> None:
    client = service.client()
    response = await client.post(BRANDS, json=listing(**overrides))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await count(client) == 0


async def test_inspection_exempt_awards_are_accepted_until_the_scheme_closed(
    service: Harness,
) -> None:
    body = await create(
        service.client(), tier="national_inspection_exempt", awarded_on="2008-09-17"
    )
    assert body["tier_label"] == "國家免檢產品"


async def test_a_duplicate_active_listing_is_a_409_until_the_first_is_revoked(
    service: Harness,
) -> None:
    client = service.client()
    first = await create(client)
    clash = await client.post(BRANDS, json=listing(awarded_on="2025-01-01"))
    assert clash.status_code == 409
    assert clash.json()["existing_id"] == first["id"]
    other_tier = await client.post(BRANDS, json=listing(tier="city_famous"))
    assert other_tier.status_code == 201
    etag = (await client.get(f"{BRANDS}/{first['id']}")).headers["ETag"]
    revoked = await client.post(
        f"{BRANDS}/{first['id']}/status",
        json={"status": "revoked", "reason": "撤銷"},
        headers={"If-Match": etag},
    )
    assert revoked.status_code == 200
    assert (await client.post(BRANDS, json=listing(awarded_on="2025-01-01"))).status_code == 201


async def test_a_renewal_continues_the_earlier_listing(service: Harness) -> None:
    client = service.client()
    first = await create(client, awarded_on="2020-09-01")
    renewal = await create(client, award_kind="renewal", awarded_on="2023-08-15")
    assert renewal["renewal_of"] == first["id"]
    old = (await client.get(f"{BRANDS}/{first['id']}")).json()
    assert old["superseded_on"] == "2023-08-15"
    assert old["status"] == "expired"
    history = (await client.get(f"{BRANDS}/{first['id']}/history")).json()["items"]
    assert [entry["action"] for entry in history] == ["created", "renewed"]
    assert renewal["id"] in history[1]["reason"]
    # The renewed listing is no longer open to another renewal dated before its successor.
    again = await client.post(BRANDS, json=listing(award_kind="renewal", awarded_on="2023-01-01"))
    assert again.status_code == 422


async def test_patch_needs_if_match_and_records_the_change(service: Harness) -> None:
    client = service.client()
    created = await client.post(BRANDS, json=listing())
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    missing = await client.patch(url, json={"brand_name": "維維股份"})
    assert missing.status_code == 428
    updated = await client.patch(
        url,
        json={"brand_name": "維維股份", "international_standard": True, "standard_code": "CAC"},
        headers={"If-Match": etag},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["international_standard"] is True
    assert updated.headers["ETag"] != etag
    stale = await client.patch(url, json={"brand_name": "舊"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    history = (await client.get(f"{url}/history")).json()["items"]
    assert history[-1]["action"] == "updated"
    assert history[-1]["changes"]["brand_name"] == ["維維", "維維股份"]
    assert history[-1]["actor_id"] == "test-client"
    assert history[-1]["actor_name"] == "Test client"
    assert (await client.get(url)).json()["brand_name"] == "維維股份"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"tier": "city_famous"}, "tier"),
        ({"brand_name": None}, "brand_name"),
        ({"valid_until": "2020-01-01"}, "valid_until"),
        ({"county_code": "110101"}, "county_code"),
        ({"international_standard": True}, "standard_code"),
    ],
)
async def test_bad_patches_are_422_and_change_nothing(
    service: Harness, patch: dict[str, object], field: str
) -> None:
    client = service.client()
    created = await client.post(BRANDS, json=listing())
    response = await client.patch(
        created.headers["Location"], json=patch, headers={"If-Match": created.headers["ETag"]}
    )
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    after = await client.get(created.headers["Location"])
    assert after.headers["ETag"] == created.headers["ETag"]


async def test_concurrent_updates_one_wins_one_gets_412(service: Harness) -> None:
    client = service.client()
    created = await client.post(BRANDS, json=listing())
    url, etag = created.headers["Location"], created.headers["ETag"]
    responses = await asyncio.gather(
        client.patch(url, json={"brand_name": "甲"}, headers={"If-Match": etag}),
        client.patch(url, json={"brand_name": "乙"}, headers={"If-Match": etag}),
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).json()["brand_name"]
    assert (await client.get(url)).json()["brand_name"] == winner
    history = (await client.get(f"{url}/history")).json()["items"]
    assert [entry["action"] for entry in history] == ["created", "updated"]


async def test_list_filters_each_narrow_the_result(service: Harness) -> None:
    client = service.client()
    await create(client)
    await create(
        client,
        product_name="徐工裝載機",
        brand_name="徐工",
        enterprise_credit_code=credit_code(2),
        enterprise_name="徐州工程機械集團有限公司",
        county_code=PIZHOU,
        tier="provincial_famous",
        international_standard=True,
        standard_code="ISO 20474",
        awarded_on="2023-03-01",
    )
    await create(
        client,
        product_name="沛縣狗肉",
        brand_name="樊噲",
        enterprise_credit_code=credit_code(3),
        enterprise_name="沛縣樊噲食品集團",
        sector="agriculture",
        tier="city_famous",
        awarded_on="2022-01-10",
        valid_until=None,
    )
    assert await count(client) == 3
    assert await count(client, county_code=PIZHOU) == 1
    assert await count(client, county_code=TONGSHAN) == 2
    assert await count(client, tier="city_famous") == 1
    assert await count(client, sector="agriculture") == 1
    assert await count(client, award_kind="new") == 3
    assert await count(client, awarded_from="2023-01-01") == 2
    assert await count(client, awarded_from="2023-01-01", awarded_to="2023-12-31") == 1
    assert await count(client, enterprise_credit_code=credit_code(2)) == 1
    assert await count(client, international_standard="true") == 1
    assert await count(client, q="徐工") == 1
    assert await count(client, q="狗") == 1
    assert await count(client, q="集團") == 3
    assert await count(client, q="股份") == 1
    assert await count(client, status="active", as_of="2022-06-01") == 1
    assert await count(client, status="active") == 2  # the 2022 city award (3 years) has expired
    bad = await client.get(BRANDS, params={"county_code": "999999"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "county_code"
    bad_code = await client.get(BRANDS, params={"enterprise_credit_code": "123"})
    assert bad_code.status_code == 422


async def test_pages_follow_the_cursor_and_refuse_another_query(service: Harness) -> None:
    client = service.client()
    for number in range(5):
        await create(client, enterprise_credit_code=credit_code(10 + number))
    first = (await client.get(BRANDS, params={"limit": 2})).json()
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await client.get(BRANDS, params={"limit": 2, "cursor": cursor})).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)
    other = await client.get(
        BRANDS, params={"limit": 2, "cursor": first["next_cursor"], "tier": "city_famous"}
    )
    assert other.status_code == 400


async def test_scopes_are_enforced(service: Harness) -> None:
    anonymous = service.client(authenticated=False)
    assert (await anonymous.get(BRANDS)).status_code == 401
    reader = service.client(scopes=["brands:read"])
    assert (await reader.get(BRANDS)).status_code == 200
    assert (await reader.post(BRANDS, json=listing())).status_code == 403


async def test_unknown_listing_is_a_404(service: Harness) -> None:
    response = await service.client().get(f"{BRANDS}/no-such-id")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_lists_paths_and_filters(service: Harness) -> None:
    document = (await service.client(authenticated=False).get("/openapi.json")).json()
    for path in [
        BRANDS,
        f"{BRANDS}/{{brand_id}}",
        f"{BRANDS}/{{brand_id}}/status",
        f"{BRANDS}/{{brand_id}}/history",
        f"{BRANDS}/stats",
        f"{BRANDS}/import",
        f"{BRANDS}/export",
        f"{BRANDS}/review-flags",
    ]:
        assert path in document["paths"], path
    parameters = {p["name"] for p in document["paths"][BRANDS]["get"]["parameters"]}
    assert {"county_code", "tier", "status", "as_of", "q", "limit", "cursor"} <= parameters
    assert "Tier" in document["components"]["schemas"]


async def test_listings_cannot_be_deleted(service: Harness) -> None:
    client = service.client()
    created = await client.post(BRANDS, json=listing())
    assert (await client.delete(created.headers["Location"])).status_code == 405
    assert (await client.get(created.headers["Location"])).status_code == 200


async def test_award_kind_follows_when_the_earlier_listing_lapsed(service: Harness) -> None:
    """A china_famous listing of 2015-09-01 lapses on 2018-09-01; the tier allows 180 days
    (config/brand_tiers.json) to renew it, so until 2019-02-28 it is renewed, not new again."""
    client = service.client()
    await create(client, awarded_on="2015-09-01", valid_until=None)
    again_new = await client.post(BRANDS, json=listing(awarded_on="2018-12-01", valid_until=None))
    assert again_new.status_code == 422
    (error,) = again_new.json()["errors"]
    assert error["field"] == "award_kind"
    assert error["message"].startswith("new award of a lapsed listing")
    late = await client.post(
        BRANDS, json=listing(award_kind="renewal", awarded_on="2019-06-01", valid_until=None)
    )
    assert late.status_code == 422
    (error,) = late.json()["errors"]
    assert error["field"] == "award_kind"
    assert error["message"].startswith("renewal after the grace period")
    assert "273 days" in error["message"]
    on_time = await client.post(
        BRANDS, json=listing(award_kind="renewal", awarded_on="2019-02-28", valid_until=None)
    )
    assert on_time.status_code == 201, on_time.text
    # Lapsed beyond the grace period, a product may be awarded anew.
    other = {"product_name": "維維牛奶", "valid_until": None}
    await create(client, awarded_on="2010-01-01", **other)
    assert (
        await client.post(BRANDS, json=listing(awarded_on="2014-01-01", **other))
    ).status_code == 201
    renewed_late = await client.post(
        BRANDS,
        json=listing(award_kind="renewal", awarded_on="2013-08-01", product_name="維維牛奶"),
    )
    assert renewed_late.status_code == 422
