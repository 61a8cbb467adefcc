"""The public check and the certificate by id are answered before FastAPI in their usual
case (`kit.hotpaths`): each such answer is the one FastAPI's route gives."""

from typing import Any

import pytest

from kit.testing import Harness, assert_answered_alike

VERIFY = "/api/v1/certificates/verify"
BY_ID = "/api/v1/certificates/{certificate_id}"


async def test_verification_answers_as_the_framework_route(
    service: Harness, new_certificate: Any
) -> None:
    await new_certificate(certificate_number="HOT-1")
    await new_certificate(certificate_number="HOT-2", certification_body="方圓標志認證集團")
    await new_certificate(certificate_number="HOT-2", certification_body="中國質量認證中心")
    await new_certificate(certificate_number="HOT-3", confidential=True)
    public = service.client(scopes=())
    cases = [
        ({"number": "HOT-1"}, 200, 1),
        ({"number": "  HOT-1 "}, 200, 1),
        ({"number": "HOT-2", "body": "方圓標志認證集團"}, 200, 1),
        ({"number": "HOT-2"}, 422, 1),  # two bodies issued it: name one
        ({"number": "HOT-3"}, 404, 1),  # confidential
        ({"number": "NOWHERE"}, 404, 1),
        ({"number": "HOT-1", "as_of": "2021-01-01"}, 200, 0),  # left to FastAPI
        ({"number": "X" * 101}, 422, 0),
        ({"number": "HOT-1", "body": ""}, 422, 0),
        ({"number": "HOT-1", "body": "Y" * 201}, 422, 0),
        ({"number": ""}, 422, 0),
        ({}, 422, 0),
    ]
    for params, status, answered_hot in cases:
        await assert_answered_alike(
            service, public, VERIFY, VERIFY, status=status, answered_hot=answered_hot, params=params
        )
    unauthenticated = service.client(authenticated=False)
    await assert_answered_alike(
        service,
        unauthenticated,
        VERIFY,
        VERIFY,
        status=401,
        answered_hot=0,
        params={"number": "HOT-1"},
    )


@pytest.mark.parametrize(
    ("scopes", "counties", "confidential", "status"),
    [
        (("certificates:read",), (), False, 200),
        (("certificates:read",), (), True, 404),
        (("certificates:read", "certificates:write"), (), True, 200),
        (("certificates:read",), ("320303",), False, 404),  # bound to another county
        (("certificates:read",), ("320323",), False, 200),
    ],
)
async def test_a_certificate_by_id_answers_as_the_framework_route(
    service: Harness,
    new_certificate: Any,
    scopes: tuple[str, ...],
    counties: tuple[str, ...],
    confidential: bool,
    status: int,
) -> None:
    created = await new_certificate(confidential=confidential)
    client = service.client(scopes=scopes, county_codes=counties)
    path = f"/api/v1/certificates/{created['id']}"
    hot = await assert_answered_alike(service, client, BY_ID, path, status=status, answered_hot=1)
    if status == 200:
        assert hot.json() == created
        assert hot.headers["etag"]


async def test_a_caller_without_the_read_scope_is_refused_by_the_framework_route(
    service: Harness, new_certificate: Any
) -> None:
    created = await new_certificate()
    path = f"/api/v1/certificates/{created['id']}"
    await assert_answered_alike(
        service, service.client(scopes=()), BY_ID, path, status=403, answered_hot=0
    )
