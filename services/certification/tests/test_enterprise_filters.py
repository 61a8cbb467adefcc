"""The enterprise view's filter: certificates whose holder's credit code starts with a prefix."""

from kit.testing import Harness

from .conftest import NewCertificate, make_credit_code


async def test_a_credit_code_prefix_finds_the_holders_that_start_with_it(
    service: Harness, new_certificate: NewCertificate
) -> None:
    tongshan = await new_certificate(enterprise_credit_code=make_credit_code(7))
    also = await new_certificate(enterprise_credit_code=make_credit_code(8))
    await new_certificate(enterprise_credit_code=make_credit_code(7, county="320382"))
    client = service.client()

    one = await client.get(
        "/api/v1/certificates", params={"enterprise_credit_code_prefix": make_credit_code(7)[:17]}
    )
    assert one.status_code == 200, one.text
    assert [item["id"] for item in one.json()["items"]] == [tongshan["id"]]

    county = await client.get(
        "/api/v1/certificates", params={"enterprise_credit_code_prefix": "91320303"}
    )
    assert {item["id"] for item in county.json()["items"]} == {tongshan["id"], also["id"]}

    lower = await client.get(
        "/api/v1/certificates", params={"enterprise_credit_code_prefix": "91320382".lower()}
    )
    assert [item["enterprise_credit_code"][:8] for item in lower.json()["items"]] == ["91320382"]


async def test_a_prefix_that_is_not_a_code_is_a_422_naming_it(service: Harness) -> None:
    client = service.client()
    for bad in ("9", "91_3", "9" * 19):
        response = await client.get(
            "/api/v1/certificates", params={"enterprise_credit_code_prefix": bad}
        )
        assert response.status_code == 422, bad
        fields = [error["field"] for error in response.json()["errors"]]
        assert fields == ["enterprise_credit_code_prefix"], response.json()
