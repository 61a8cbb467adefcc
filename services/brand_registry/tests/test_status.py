"""Status actions, their history, and review flags raised by other services."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from brand_registry.tests.support import count, create, credit_code, listing, set_status
from kit.testing import Harness

BRANDS = "/api/v1/brands"
FLAGS = f"{BRANDS}/review-flags"


async def test_legal_transitions_are_kept_in_the_history(service: Harness) -> None:
    client = service.client()
    brand = await create(client, awarded_on="2020-01-01")
    suspended = await set_status(
        client, brand["id"], "suspended", reason="抽查不合格", effective_on="2021-03-01"
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    back = await set_status(
        client, brand["id"], "active", reason="整改合格", effective_on="2021-06-01"
    )
    assert back.json()["status"] == "active"
    revoked = await set_status(client, brand["id"], "revoked", reason="弄虛作假")
    assert revoked.json()["status"] == "revoked"
    history = (await client.get(f"{BRANDS}/{brand['id']}/history")).json()["items"]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [
        ("created", None, "active"),
        ("status_changed", "active", "suspended"),
        ("status_changed", "suspended", "active"),
        ("status_changed", "active", "revoked"),
    ]
    assert [h["reason"] for h in history[1:]] == ["抽查不合格", "整改合格", "弄虛作假"]
    assert history[1]["effective_on"] == "2021-03-01"
    assert all(h["actor_id"] == "test-client" and h["changed_at"] for h in history)
    # Status on past dates follows the dated changes.
    assert await count(client, status="suspended", as_of="2021-04-01") == 1
    assert await count(client, status="active", as_of="2021-07-01") == 1
    assert await count(client, status="active", as_of="2021-02-28") == 1
    assert await count(client, status="revoked") == 1


@pytest.mark.parametrize(
    ("steps", "requested", "current"),
    [
        (["revoked"], "active", "revoked"),
        (["revoked"], "suspended", "revoked"),
        ([], "expired", "active"),
        ([], "active", "active"),
    ],
)
async def test_illegal_transitions_are_409_naming_both_statuses(
    service: Harness, steps: list[str], requested: str, current: str
) -> None:
    client = service.client()
    brand = await create(client)
    for step in steps:
        assert (await set_status(client, brand["id"], step)).status_code == 200
    before = await client.get(f"{BRANDS}/{brand['id']}")
    response = await set_status(client, brand["id"], requested)
    assert response.status_code == 409
    problem = response.json()
    assert (problem["current_status"], problem["requested_status"]) == (current, requested)
    after = await client.get(f"{BRANDS}/{brand['id']}")
    assert after.headers["ETag"] == before.headers["ETag"]


async def test_an_expired_listing_cannot_be_suspended(service: Harness) -> None:
    client = service.client()
    brand = await create(client, awarded_on="2005-01-01", valid_until=None)
    response = await set_status(client, brand["id"], "suspended")
    assert response.status_code == 409
    assert response.json()["current_status"] == "expired"


async def test_status_changes_need_if_match_a_reason_and_a_sane_date(service: Harness) -> None:
    client = service.client()
    brand = await create(client, awarded_on="2020-01-01")
    url = f"{BRANDS}/{brand['id']}/status"
    no_etag = await client.post(url, json={"status": "suspended", "reason": "x"})
    assert no_etag.status_code == 428
    stale = await client.post(
        url, json={"status": "suspended", "reason": "x"}, headers={"If-Match": '"old"'}
    )
    assert stale.status_code == 412
    etag = (await client.get(f"{BRANDS}/{brand['id']}")).headers["ETag"]
    for body, field in [
        ({"status": "suspended"}, "reason"),
        ({"status": "suspended", "reason": "x", "effective_on": "2019-01-01"}, "effective_on"),
        ({"status": "suspended", "reason": "x", "effective_on": "2999-01-01"}, "effective_on"),
        ({"status": "dormant", "reason": "x"}, "status"),
    ]:
        response = await client.post(url, json=body, headers={"If-Match": etag})
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field
    assert (await client.get(f"{BRANDS}/{brand['id']}")).json()["status"] == "active"


async def test_review_flags_are_idempotent_and_cleared_by_a_status_action(
    service: Harness,
) -> None:
    client = service.client()
    enterprise = credit_code(7)
    active = await create(client, enterprise_credit_code=enterprise)
    suspended = await create(client, enterprise_credit_code=enterprise, tier="city_famous")
    await set_status(client, suspended["id"], "suspended")
    revoked = await create(client, enterprise_credit_code=enterprise, tier="provincial_famous")
    await set_status(client, revoked["id"], "revoked")
    await create(
        client,
        enterprise_credit_code=enterprise,
        product_name="過期產品",
        awarded_on="2001-01-01",
        valid_until=None,
    )
    bystander = await create(client, enterprise_credit_code=credit_code(8))

    inspection = service.client(scopes=["brands:flag"], client_id="inspection")
    flag = {
        "enterprise_credit_code": enterprise,
        "source": "inspection",
        "reference": "spot-check-1",
        "reason": "Spot-check 2008-GJ-001 failed: 鉛含量",
    }
    first = await inspection.post(FLAGS, json=flag)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    assert sorted(first.json()["flagged_brand_ids"]) == sorted([active["id"], suspended["id"]])
    repeat = await inspection.post(FLAGS, json=flag)
    assert repeat.status_code == 200
    assert repeat.json()["created"] is False
    assert repeat.json()["flagged_brand_ids"] == first.json()["flagged_brand_ids"]

    flagged = (await client.get(BRANDS, params={"review_required": "true"})).json()["items"]
    assert sorted(item["id"] for item in flagged) == sorted([active["id"], suspended["id"]])
    assert bystander["id"] not in [item["id"] for item in flagged]
    history = (await client.get(f"{BRANDS}/{active['id']}/history")).json()["items"]
    assert [h["action"] for h in history] == ["created", "review_flagged"]
    assert "鉛含量" in history[1]["reason"]
    assert "inspection" in history[1]["reason"]
    assert history[1]["actor_id"] == "inspection"

    cleared = await set_status(client, active["id"], "active", reason="複查合格", clear_review=True)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["review_required"] is False
    assert cleared.json()["status"] == "active"
    again = await set_status(client, active["id"], "active", reason="x", clear_review=True)
    assert again.status_code == 409
    assert await count(client, review_required="true") == 1
    history = (await client.get(f"{BRANDS}/{active['id']}/history")).json()["items"]
    assert history[-1]["action"] == "review_cleared"
    assert history[-1]["reason"] == "複查合格"


async def test_review_flags_need_the_flag_scope_and_a_valid_body(service: Harness) -> None:
    flag = {
        "enterprise_credit_code": credit_code(7),
        "source": "inspection",
        "reference": "r",
        "reason": "failed",
    }
    writer = service.client(scopes=["brands:write", "brands:read"])
    assert (await writer.post(FLAGS, json=flag)).status_code == 403
    flagger = service.client(scopes=["brands:flag"])
    bad = await flagger.post(FLAGS, json={**flag, "enterprise_credit_code": "91320303X"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "enterprise_credit_code"
    nothing = await flagger.post(FLAGS, json=flag)
    assert nothing.status_code == 201
    assert nothing.json()["flagged_brand_ids"] == []


async def test_a_flag_does_not_hide_behind_a_stale_listing(service: Harness) -> None:
    """Flagging bumps the ETag, so an edit based on the unflagged listing is refused."""
    client = service.client()
    created = await client.post(
        "/api/v1/brands", json=listing(enterprise_credit_code=credit_code(9))
    )
    await service.client(scopes=["brands:flag"]).post(
        FLAGS,
        json={
            "enterprise_credit_code": credit_code(9),
            "source": "inspection",
            "reference": "r9",
            "reason": "failed",
        },
    )
    response = await client.patch(
        created.headers["Location"],
        json={"brand_name": "新"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert response.status_code == 412


def _flag(enterprise: str, reference: str) -> dict[str, str]:
    return {
        "enterprise_credit_code": enterprise,
        "source": "inspection",
        "reference": reference,
        "reason": f"Spot-check {reference} failed: 鉛含量",
    }


def _clear_url(reference: str) -> str:
    return f"{FLAGS}/inspection/{reference}/clear"


async def test_a_withdrawn_flag_takes_its_listings_out_of_review_once(service: Harness) -> None:
    client = service.client()
    enterprise = credit_code(11)
    first = await create(client, enterprise_credit_code=enterprise)
    second = await create(client, enterprise_credit_code=enterprise, tier="city_famous")
    inspection = service.client(scopes=["brands:flag"], client_id="inspection")
    reference = "0190aa00-0000-7000-8000-000000000001/v2"
    raised = await inspection.post(FLAGS, json=_flag(enterprise, reference))
    assert raised.status_code == 201, raised.text
    flagged = await client.get(f"{BRANDS}/{first['id']}")
    assert flagged.json()["review_required"] is True

    reason = "re-inspection R-2 of 2024-06-20 overturned the failure"
    cleared = await inspection.post(_clear_url(reference), json={"reason": reason})
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert body["changed"] is True
    assert (body["source"], body["reference"]) == ("inspection", reference)
    assert sorted(body["cleared_brand_ids"]) == sorted([first["id"], second["id"]])
    assert body["still_flagged_brand_ids"] == []
    listing_now = await client.get(f"{BRANDS}/{first['id']}")
    assert listing_now.json()["review_required"] is False
    assert listing_now.json()["review_reason"] is None
    assert listing_now.headers["ETag"] != flagged.headers["ETag"]
    history = (await client.get(f"{BRANDS}/{first['id']}/history")).json()["items"]
    assert [h["action"] for h in history] == ["created", "review_flagged", "review_flag_cleared"]
    entry = history[-1]
    assert entry["actor_id"] == "inspection"
    assert reason in entry["reason"]
    assert reference in entry["reason"]
    assert entry["changes"]["review_required"] == [True, False]
    assert entry["changes"]["reference"] == reference

    repeat = await inspection.post(_clear_url(quote(reference, safe="")), json={"reason": "x"})
    assert repeat.status_code == 200
    assert repeat.json() == {**body, "changed": False}
    again = await inspection.post(FLAGS, json=_flag(enterprise, reference))
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert await count(client, review_required="true") == 0
    history = (await client.get(f"{BRANDS}/{first['id']}/history")).json()["items"]
    assert len(history) == 3


async def test_a_listing_another_flag_holds_stays_under_review(service: Harness) -> None:
    client = service.client()
    enterprise = credit_code(12)
    brand = await create(client, enterprise_credit_code=enterprise)
    inspection = service.client(scopes=["brands:flag"], client_id="inspection")
    for reference in ("check-a", "check-b"):
        assert (await inspection.post(FLAGS, json=_flag(enterprise, reference))).status_code == 201

    kept = await inspection.post(_clear_url("check-b"), json={"reason": "overturned"})
    assert kept.json()["cleared_brand_ids"] == []
    assert kept.json()["still_flagged_brand_ids"] == [brand["id"]]
    still = (await client.get(f"{BRANDS}/{brand['id']}")).json()
    assert still["review_required"] is True
    assert still["review_reason"].startswith("inspection check-a:")
    lifted = await inspection.post(_clear_url("check-a"), json={"reason": "overturned"})
    assert lifted.json()["cleared_brand_ids"] == [brand["id"]]
    assert (await client.get(f"{BRANDS}/{brand['id']}")).json()["review_required"] is False

    # A flag raised before an operator took the listing out of review no longer holds it.
    assert (await inspection.post(FLAGS, json=_flag(enterprise, "check-c"))).status_code == 201
    reviewed = await set_status(client, brand["id"], "active", reason="審核", clear_review=True)
    assert reviewed.status_code == 200, reviewed.text
    assert (await inspection.post(FLAGS, json=_flag(enterprise, "check-d"))).status_code == 201
    withdrawn = await inspection.post(_clear_url("check-d"), json={"reason": "overturned"})
    assert withdrawn.json()["cleared_brand_ids"] == [brand["id"]]
    assert (await client.get(f"{BRANDS}/{brand['id']}")).json()["review_required"] is False
    # Nor is a listing out of review touched again.
    untouched = await inspection.post(_clear_url("check-c"), json={"reason": "overturned"})
    assert untouched.json()["cleared_brand_ids"] == []
    assert untouched.json()["still_flagged_brand_ids"] == []
    history = (await client.get(f"{BRANDS}/{brand['id']}/history")).json()["items"]
    assert [h["action"] for h in history].count("review_flag_cleared") == 3


async def test_only_the_raiser_withdraws_a_flag(service: Harness) -> None:
    enterprise = credit_code(13)
    await create(service.client(), enterprise_credit_code=enterprise)
    inspection = service.client(scopes=["brands:flag"], client_id="inspection")
    await inspection.post(FLAGS, json=_flag(enterprise, "check-x"))
    body = {"reason": "overturned"}
    writer = service.client(scopes=["brands:write", "brands:read"], client_id="inspection")
    assert (await writer.post(_clear_url("check-x"), json=body)).status_code == 403
    other = service.client(scopes=["brands:flag"], client_id="provincial-platform")
    refused = await other.post(_clear_url("check-x"), json=body)
    assert refused.status_code == 403
    assert refused.json()["raised_by"] == "inspection"
    unknown = await inspection.post(_clear_url("check-y"), json=body)
    assert unknown.status_code == 404
    bad = await inspection.post(_clear_url("check-x"), json={})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "reason"
    assert await count(service.client(), review_required="true") == 1
