"""The public verification a purchaser makes, one number or up to 100 at once."""

from collections.abc import Awaitable, Callable
from typing import Any

from kit.testing import Harness

NewCertificate = Callable[..., Awaitable[dict[str, Any]]]
FUTURE = "2035-12-31"


async def _suspend(service: Harness, item: dict[str, Any], on: str) -> None:
    client = service.client()
    url = f"/api/v1/certificates/{item['id']}"
    etag = (await client.get(url)).headers["ETag"]
    response = await client.post(
        f"{url}/status",
        json={"status": "suspended", "reason": "r", "effective_on": on},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200


async def test_anonymous_purchaser_verifies_by_number_and_body(
    service: Harness, new_certificate: NewCertificate
) -> None:
    item = await new_certificate(issued_on="2021-04-01", expires_on=FUTURE)
    purchaser = service.client(scopes=[])
    response = await purchaser.get(
        "/api/v1/certificates/verify",
        params={"number": item["certificate_number"], "body": item["certification_body"]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "valid"
    assert answer["in_force"] is True
    assert answer["standard"] == "ISO 9001:2015"
    assert answer["enterprise_name"] == item["enterprise_name"]
    assert answer["scope"] == item["scope"]
    assert answer["issued_on"] == "2021-04-01"
    assert answer["expires_on"] == FUTURE


async def test_verify_as_of_a_date(service: Harness, new_certificate: NewCertificate) -> None:
    item = await new_certificate(issued_on="2021-04-01", expires_on="2024-03-31")
    await _suspend(service, item, "2022-05-01")
    client = service.client(scopes=[])

    async def status(as_of: str | None) -> Any:
        params = {"number": item["certificate_number"]}
        if as_of:
            params["as_of"] = as_of
        return (await client.get("/api/v1/certificates/verify", params=params)).json()

    assert (await status("2022-04-30"))["status"] == "valid"
    assert (await status("2022-05-01"))["status"] == "suspended"
    assert (await status("2022-05-01"))["in_force"] is False
    assert (await status(None))["status"] == "expired"
    before = await status("2020-01-01")
    assert before["status"] is None
    assert before["in_force"] is False


async def test_unknown_or_confidential_certificate_is_a_404_problem(
    service: Harness, new_certificate: NewCertificate
) -> None:
    secret = await new_certificate(confidential=True, expires_on=FUTURE)
    client = service.client(scopes=[])
    for number in ("NO-SUCH-NUMBER", secret["certificate_number"]):
        response = await client.get("/api/v1/certificates/verify", params={"number": number})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert number in response.json()["detail"]
    wrong_body = await client.get(
        "/api/v1/certificates/verify", params={"number": "CN-00001", "body": "別的機構"}
    )
    assert wrong_body.status_code == 404


async def test_verify_needs_a_gateway_token(service: Harness) -> None:
    anonymous = service.client(authenticated=False)
    response = await anonymous.get("/api/v1/certificates/verify", params={"number": "x"})
    assert response.status_code == 401


async def test_same_number_at_two_bodies_asks_for_the_body(
    service: Harness, new_certificate: NewCertificate
) -> None:
    await new_certificate(certificate_number="SAME-1", certification_body="甲認證")
    await new_certificate(certificate_number="SAME-1", certification_body="乙認證")
    client = service.client(scopes=[])
    response = await client.get("/api/v1/certificates/verify", params={"number": "SAME-1"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    one = await client.get(
        "/api/v1/certificates/verify", params={"number": "SAME-1", "body": "乙認證"}
    )
    assert one.json()["certification_body"] == "乙認證"


async def test_batch_verify_answers_each_in_order(
    service: Harness, new_certificate: NewCertificate, credit_code: Callable[[int], str]
) -> None:
    first = await new_certificate(expires_on=FUTURE)
    second = await new_certificate(
        enterprise_credit_code=first["enterprise_credit_code"],
        standard="ISO 14001:2015",
        expires_on=FUTURE,
    )
    await new_certificate(enterprise_credit_code=credit_code(77), confidential=True)
    client = service.client(scopes=[])
    response = await client.post(
        "/api/v1/certificates/verify",
        json={
            "items": [
                {"number": second["certificate_number"]},
                {"number": "MISSING"},
                {"enterprise_credit_code": first["enterprise_credit_code"]},
                {"enterprise_credit_code": credit_code(77)},
            ]
        },
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["found"] for item in items] == [True, False, True, False]
    assert items[0]["certificates"][0]["standard"] == "ISO 14001:2015"
    assert {c["certificate_number"] for c in items[2]["certificates"]} == {
        first["certificate_number"],
        second["certificate_number"],
    }


async def test_batch_verify_rejects_bad_requests(
    service: Harness, credit_code: Callable[[int], str]
) -> None:
    client = service.client(scopes=[])
    url = "/api/v1/certificates/verify"
    too_many = {"items": [{"number": f"N{i}"} for i in range(101)]}
    assert (await client.post(url, json=too_many)).status_code == 422
    exactly_100 = {"items": [{"number": f"N{i}"} for i in range(100)]}
    assert (await client.post(url, json=exactly_100)).status_code == 200
    bad_code = await client.post(
        url, json={"items": [{"number": "A"}, {"enterprise_credit_code": "913203031234567890"}]}
    )
    assert bad_code.status_code == 422
    assert bad_code.json()["errors"][0]["field"] == "items[1].enterprise_credit_code"
    neither = await client.post(url, json={"items": [{}]})
    assert neither.status_code == 422
    assert (await client.post(url, json={"items": []})).status_code == 422
