"""The enterprise view's filter: listings whose credit code starts with a prefix."""

from kit.testing import Harness

from .support import create, credit_code


async def test_a_credit_code_prefix_finds_the_enterprises_that_start_with_it(
    service: Harness,
) -> None:
    client = service.client()
    first = await create(client, enterprise_credit_code=credit_code(1))
    second = await create(client, enterprise_credit_code=credit_code(2), product_name="維維牛奶")

    prefix = credit_code(1)[:17]
    response = await client.get("/api/v1/brands", params={"enterprise_credit_code_prefix": prefix})
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [first["id"]]

    both = await client.get(
        "/api/v1/brands", params={"enterprise_credit_code_prefix": "91320303".lower()}
    )
    assert {item["id"] for item in both.json()["items"]} == {first["id"], second["id"]}

    none = await client.get("/api/v1/brands", params={"enterprise_credit_code_prefix": "9132038"})
    assert none.json()["items"] == []


async def test_a_prefix_that_is_not_a_code_is_a_422_naming_it(service: Harness) -> None:
    client = service.client()
    for bad in ("9", "91-32", "9" * 19):
        response = await client.get("/api/v1/brands", params={"enterprise_credit_code_prefix": bad})
        assert response.status_code == 422, bad
        fields = [error["field"] for error in response.json()["errors"]]
        assert fields == ["enterprise_credit_code_prefix"], response.json()
