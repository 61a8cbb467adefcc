"""Recording, reading, correcting and listing spot-checks over HTTP."""

from datetime import timedelta
from typing import Any

import pytest

from inspection.tests.support import PAST, TODAY, credit_code, spot_check
from kit.testing import Harness

URL = "/api/v1/spot-checks"
READ_ONLY = ["spot-checks:read"]


async def _count(service: Harness) -> int:
    response = await service.client().get(URL, params={"limit": 500, "include_unpublished": True})
    return len(response.json()["items"])


async def test_create_answers_201_with_location_etag_and_labels(service: Harness) -> None:
    response = await service.client().post(URL, json=spot_check())
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert response.headers["ETag"]
    assert body["level_label"] == "國家監督抽查"
    assert body["product_category_label"] == "食品"
    assert body["result"] == "fail"
    assert body["final_result"] == "fail"
    assert body["nonconforming_items"][0]["item"] == "鉛含量"
    assert body["published"] is True
    assert body["root_id"] == body["id"]
    fetched = await service.client().get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert fetched.json() == body


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nonconforming_items": []}, "nonconforming_items"),
        (
            {"result": "pass", "nonconforming_items": spot_check()["nonconforming_items"]},
            "nonconforming_items",
        ),
        ({"sampled_on": (TODAY + timedelta(days=1)).isoformat()}, "sampled_on"),
        ({"level": "county"}, "level"),
        ({"product_category": "spaceships"}, "product_category"),
        ({"enterprise_credit_code": credit_code(1)[:-1] + "0"}, "enterprise_credit_code"),
        ({"county_code": "320399"}, "county_code"),
        ({"county_code": "32032"}, "county_code"),
        ({"result": "maybe"}, "result"),
        ({"result": "pass", "refused": True}, "result"),
        ({"refused": True}, "nonconforming_items"),
        ({"result": "pass", "mandatory_standard_violation": True}, "mandatory_standard_violation"),
        ({"published_on": (PAST - timedelta(days=30)).isoformat()}, "published_on"),
        ({"nonconforming_items": [{"item": "鉛含量"}]}, "nonconforming_items[0].requirement"),
        ({"plan_code": "  "}, "plan_code"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    service: Harness, overrides: dict[str, Any], field: str
) -> None:
    response = await service.client().post(URL, json=spot_check(**overrides))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await _count(service) == 0


async def test_a_refusal_is_a_failure_without_items(service: Harness) -> None:
    body = spot_check(refused=True, nonconforming_items=[], mandatory_standard_violation=False)
    response = await service.client().post(URL, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["refused"] is True
    assert response.json()["result"] == "fail"


async def test_a_sample_code_is_unique_within_its_plan(service: Harness) -> None:
    client = service.client()
    assert (await client.post(URL, json=spot_check())).status_code == 201
    duplicate = await client.post(URL, json=spot_check(product_name="別的"))
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "sample_code"
    other_plan = await client.post(URL, json=spot_check(plan_code="2024-SJ-02"))
    assert other_plan.status_code == 201
    assert await _count(service) == 2


async def test_idempotency_key_replays_the_first_answer(service: Harness) -> None:
    client = service.client()
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post(URL, json=spot_check(), headers=headers)
    again = await client.post(URL, json=spot_check(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    changed = await client.post(URL, json=spot_check(sample_code="S-9"), headers=headers)
    assert changed.status_code == 422
    assert await _count(service) == 1


async def test_corrections_need_if_match_and_a_reason_and_keep_history(service: Harness) -> None:
    client = service.client(client_id="bureau-clerk")
    created = await client.post(URL, json=spot_check(result="pass"))
    item = f"{URL}/{created.json()['id']}"
    etag = created.headers["ETag"]
    change = {"product_name": "速凍湯圓", "reason": "typo in the bulletin"}

    assert (await client.patch(item, json=change)).status_code == 428
    assert (
        await client.patch(item, json=change, headers={"If-Match": '"stale"'})
    ).status_code == 412
    no_reason = await client.patch(item, json={"product_name": "x"}, headers={"If-Match": etag})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"

    corrected = await client.patch(item, json=change, headers={"If-Match": etag})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["product_name"] == "速凍湯圓"
    assert corrected.headers["ETag"] != etag
    stale = await client.patch(
        item, json={**change, "product_name": "y"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412

    history = (await client.get(f"{item}/history")).json()["items"]
    assert [entry["action"] for entry in history] == ["created", "corrected"]
    assert history[1]["changed_by"] == "bureau-clerk"
    assert history[1]["reason"] == "typo in the bulletin"
    assert history[1]["changes"] == {"product_name": ["速凍水餃", "速凍湯圓"]}
    assert (await client.delete(item)).status_code == 405


async def test_a_correction_is_validated_like_a_new_record(service: Harness) -> None:
    client = service.client()
    created = await client.post(URL, json=spot_check())
    item = f"{URL}/{created.json()['id']}"
    headers = {"If-Match": created.headers["ETag"]}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"result": "pass"}, "nonconforming_items"),
        ({"level": None}, "level"),
        ({"county_code": "110101"}, "county_code"),
        ({"sampled_on": (TODAY + timedelta(days=3)).isoformat()}, "sampled_on"),
    ]
    for change, field in bad:
        response = await client.patch(item, json={**change, "reason": "r"}, headers=headers)
        assert response.status_code == 422, (change, response.text)
        assert field in [e["field"] for e in response.json()["errors"]]
    assert (await client.get(item)).json() == created.json()


async def test_a_correction_cannot_duplicate_a_sample_code(service: Harness) -> None:
    client = service.client()
    await client.post(URL, json=spot_check(sample_code="A"))
    other = await client.post(URL, json=spot_check(sample_code="B"))
    response = await client.patch(
        f"{URL}/{other.json()['id']}",
        json={"sample_code": "A", "reason": "merge"},
        headers={"If-Match": other.headers["ETag"]},
    )
    assert response.status_code == 409
    assert response.json()["field"] == "sample_code"


async def test_embargo_hides_unpublished_results_from_readers(service: Harness) -> None:
    writer = service.client()
    reader = service.client(READ_ONLY, client_id="provincial-platform")
    public = await writer.post(URL, json=spot_check(sample_code="P"))
    scheduled = await writer.post(
        URL, json=spot_check(sample_code="F", published_on=(TODAY + timedelta(days=5)).isoformat())
    )
    unset = await writer.post(URL, json=spot_check(sample_code="U", published_on=None))
    hidden = [scheduled.json()["id"], unset.json()["id"]]

    listed = [i["id"] for i in (await reader.get(URL)).json()["items"]]
    assert listed == [public.json()["id"]]
    for spot_check_id in hidden:
        assert (await reader.get(f"{URL}/{spot_check_id}")).status_code == 404
        assert (await reader.get(f"{URL}/{spot_check_id}/history")).status_code == 404
        assert (await writer.get(f"{URL}/{spot_check_id}")).status_code == 200
    refused = await reader.get(URL, params={"include_unpublished": True})
    assert refused.status_code == 403
    assert [i["id"] for i in (await writer.get(URL)).json()["items"]] == [public.json()["id"]]
    everything = await writer.get(URL, params={"include_unpublished": True})
    assert len(everything.json()["items"]) == 3
    export = await reader.get(f"{URL}/export")
    assert export.text.count("\r\n") == 2


async def test_reads_and_writes_need_their_scopes(service: Harness) -> None:
    assert (await service.client(authenticated=False).get(URL)).status_code == 401
    assert (await service.client(["brands:read"]).get(URL)).status_code == 403
    assert (await service.client(READ_ONLY).post(URL, json=spot_check())).status_code == 403
    assert (await service.client(["spot-checks:write"]).get(URL)).status_code == 200


async def test_list_filters_and_cursor_pagination(service: Harness) -> None:
    client = service.client()
    rows = [
        spot_check(sample_code="1", level="national", county_code="320323"),
        spot_check(sample_code="2", level="provincial", county_code="320323", result="pass"),
        spot_check(
            sample_code="3",
            level="city",
            county_code="320382",
            product_category="children_products",
            product_name="毛絨玩具",
        ),
        spot_check(
            sample_code="4",
            plan_code="2024-SJ-02",
            county_code="320382",
            enterprise_credit_code=credit_code(2),
            sampled_on=(PAST - timedelta(days=200)).isoformat(),
            published_on=(PAST - timedelta(days=190)).isoformat(),
        ),
    ]
    ids = []
    for row in rows:
        response = await client.post(URL, json=row)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    async def listed(**params: Any) -> list[str]:
        response = await client.get(URL, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed(level="provincial") == [ids[1]]
    assert await listed(county_code="320382") == [ids[2], ids[3]]
    assert await listed(product_category="children_products") == [ids[2]]
    assert await listed(result="pass") == [ids[1]]
    assert await listed(plan_code="2024-SJ-02") == [ids[3]]
    assert await listed(enterprise_credit_code=credit_code(2)) == [ids[3]]
    assert await listed(sampled_to=(PAST - timedelta(days=100)).isoformat()) == [ids[3]]
    assert await listed(sampled_from=(PAST - timedelta(days=100)).isoformat()) == ids[:3]
    assert await listed(q="毛絨") == [ids[2]]
    assert await listed(q="r-2024") == ids

    for params, field in [
        ({"county_code": "999999"}, "county_code"),
        ({"product_category": "nope"}, "product_category"),
        ({"enterprise_credit_code": "123"}, "enterprise_credit_code"),
        ({"level": "county"}, "level"),
    ]:
        response = await client.get(URL, params=params)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field

    first = (await client.get(URL, params={"limit": 3})).json()
    assert [i["id"] for i in first["items"]] == ids[:3]
    second = (await client.get(URL, params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in second["items"]] == ids[3:]
    assert second["next_cursor"] is None
    replayed = await client.get(
        URL, params={"limit": 3, "cursor": first["next_cursor"], "level": "city"}
    )
    assert replayed.status_code == 400


async def test_unknown_id_is_a_404(service: Harness) -> None:
    response = await service.client().get(f"{URL}/no-such-id")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
