"""A listing by id is answered before FastAPI in its usual case (`kit.hotpaths`): each such
answer is the one FastAPI's route gives."""

import pytest

from brand_registry.tests.support import PIZHOU, TONGSHAN, create
from kit.auth import CITY_WIDE_READ_SCOPE
from kit.testing import Harness, assert_answered_alike

ROUTE = "/api/v1/brands/{brand_id}"


@pytest.mark.parametrize(
    ("scopes", "counties", "status", "answered_hot"),
    [
        (("brands:read",), (), 200, 1),
        (("brands:read",), (TONGSHAN,), 200, 1),
        (("brands:read",), (PIZHOU,), 404, 1),  # bound to another county
        (("brands:read", CITY_WIDE_READ_SCOPE), (PIZHOU,), 200, 1),
        (("brands:write",), (), 403, 0),  # refused by the FastAPI route
    ],
)
async def test_a_listing_by_id_answers_as_the_framework_route(
    service: Harness,
    scopes: tuple[str, ...],
    counties: tuple[str, ...],
    status: int,
    answered_hot: int,
) -> None:
    created = await create(service.client())
    path = f"/api/v1/brands/{created['id']}"
    client = service.client(scopes, county_codes=counties)
    hot = await assert_answered_alike(
        service, client, ROUTE, path, status=status, answered_hot=answered_hot
    )
    if status == 200:
        assert hot.json() == created


@pytest.mark.parametrize(
    ("brand_id", "status", "answered_hot"), [("x" * 36, 404, 1), ("x" * 37, 422, 0)]
)
async def test_an_unknown_or_overlong_id_is_the_frameworks_answer(
    service: Harness, brand_id: str, status: int, answered_hot: int
) -> None:
    path = f"/api/v1/brands/{brand_id}"
    await assert_answered_alike(
        service, service.client(), ROUTE, path, status=status, answered_hot=answered_hot
    )
