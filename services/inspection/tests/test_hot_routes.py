"""A spot-check by id is answered before FastAPI in its usual case (`kit.hotpaths`): each
such answer is the one FastAPI's route gives."""

from datetime import timedelta

import pytest

from inspection.tests.support import TODAY, spot_check
from kit.testing import Harness, assert_answered_alike

ROUTE = "/api/v1/spot-checks/{spot_check_id}"
READ = ("spot-checks:read",)
WRITE = ("spot-checks:read", "spot-checks:write")


@pytest.mark.parametrize(
    ("scopes", "counties", "published", "status", "answered_hot"),
    [
        (READ, (), True, 200, 1),
        (READ, (), False, 404, 1),  # not yet in its bulletin
        (WRITE, (), False, 200, 1),
        (("spot-checks:write",), (), True, 200, 1),
        (READ, ("320381",), True, 404, 1),  # bound to another county
        (READ, ("320323",), True, 200, 1),
        ((), (), True, 403, 0),  # refused by the FastAPI route
    ],
)
async def test_a_spot_check_by_id_answers_as_the_framework_route(
    service: Harness,
    scopes: tuple[str, ...],
    counties: tuple[str, ...],
    published: bool,
    status: int,
    answered_hot: int,
) -> None:
    published_on = TODAY - timedelta(days=1) if published else TODAY + timedelta(days=20)
    created = await service.client().post(
        "/api/v1/spot-checks", json=spot_check(published_on=published_on.isoformat())
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/spot-checks/{created.json()['id']}"
    client = service.client(scopes, county_codes=counties)
    hot = await assert_answered_alike(
        service, client, ROUTE, path, status=status, answered_hot=answered_hot
    )
    if status == 200:
        assert hot.json() == created.json()
        assert hot.headers["etag"] == created.headers["etag"]


async def test_an_unknown_spot_check_is_the_frameworks_404(service: Harness) -> None:
    path = "/api/v1/spot-checks/nowhere"
    await assert_answered_alike(service, service.client(), ROUTE, path, status=404, answered_hot=1)
