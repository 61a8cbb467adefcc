"""What the enterprise view asks of the spot-check list: a credit-code prefix, and embargoed
results for a reader holding `spot-checks:read-unpublished`."""

from datetime import timedelta

from kit.testing import Harness

from .support import TODAY, credit_code, spot_check


async def _create(service: Harness, **overrides: object) -> str:
    response = await service.client().post("/api/v1/spot-checks", json=spot_check(**overrides))
    assert response.status_code == 201, response.text
    spot_check_id: str = response.json()["id"]
    return spot_check_id


async def test_a_credit_code_prefix_finds_the_enterprises_that_start_with_it(
    service: Harness,
) -> None:
    first = await _create(service, enterprise_credit_code=credit_code(11), sample_code="S-1")
    second = await _create(service, enterprise_credit_code=credit_code(12), sample_code="S-2")
    client = service.client(["spot-checks:read"])

    one = await client.get(
        "/api/v1/spot-checks", params={"enterprise_credit_code_prefix": credit_code(11)[:17]}
    )
    assert one.status_code == 200, one.text
    assert [item["id"] for item in one.json()["items"]] == [first]

    both = await client.get(
        "/api/v1/spot-checks", params={"enterprise_credit_code_prefix": "91320303ma"}
    )
    assert {item["id"] for item in both.json()["items"]} == {first, second}

    bad = await client.get("/api/v1/spot-checks", params={"enterprise_credit_code_prefix": "9"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["enterprise_credit_code_prefix"]


async def test_the_unpublished_read_scope_lifts_the_embargo_of_the_list(service: Harness) -> None:
    embargoed = await _create(
        service,
        sampled_on=(TODAY - timedelta(days=3)).isoformat(),
        published_on=(TODAY + timedelta(days=5)).isoformat(),
    )
    query = {"include_unpublished": "true"}

    reader = service.client(["spot-checks:read"])
    refused = await reader.get("/api/v1/spot-checks", params=query)
    assert refused.status_code == 403
    assert (await reader.get("/api/v1/spot-checks")).json()["items"] == []

    lifted = service.client(["spot-checks:read", "spot-checks:read-unpublished"])
    response = await lifted.get("/api/v1/spot-checks", params=query)
    assert response.status_code == 200, response.text
    assert [(item["id"], item["published"]) for item in response.json()["items"]] == [
        (embargoed, False)
    ]
