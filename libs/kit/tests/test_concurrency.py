import asyncio

import pytest

from kit.concurrency import check_if_match, make_etag
from kit.errors import PreconditionFailed, PreconditionRequired
from kit.testing import Harness


def test_etag_changes_with_version() -> None:
    assert make_etag("a", 1) != make_etag("a", 2)
    assert make_etag("a", 1) == make_etag("a", 1)


def test_if_match_rules() -> None:
    current = make_etag("a", 2)
    check_if_match(current, current)
    check_if_match(f"{make_etag('a', 1)}, {current}", current)
    check_if_match(f"W/{current}", current)
    check_if_match("*", current)
    with pytest.raises(PreconditionRequired):
        check_if_match(None, current)
    with pytest.raises(PreconditionRequired):
        check_if_match("  ", current)
    with pytest.raises(PreconditionFailed):
        check_if_match(make_etag("a", 1), current)


async def _widget(sample: Harness) -> tuple[str, str]:
    response = await sample.client().post("/api/v1/widgets", json={"name": "w", "color": "red"})
    return response.json()["id"], response.headers["etag"]


async def test_patch_without_if_match_is_428(sample: Harness) -> None:
    widget_id, _ = await _widget(sample)
    response = await sample.client().patch(f"/api/v1/widgets/{widget_id}", json={"color": "blue"})
    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"


async def test_patch_with_stale_etag_is_412_and_changes_nothing(sample: Harness) -> None:
    widget_id, etag = await _widget(sample)
    client = sample.client()
    first = await client.patch(
        f"/api/v1/widgets/{widget_id}", json={"color": "blue"}, headers={"If-Match": etag}
    )
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    stale = await client.patch(
        f"/api/v1/widgets/{widget_id}", json={"color": "green"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert (await client.get(f"/api/v1/widgets/{widget_id}")).json()["color"] == "blue"


async def test_concurrent_updates_exactly_one_wins(sample: Harness) -> None:
    widget_id, etag = await _widget(sample)
    client = sample.client()
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/api/v1/widgets/{widget_id}", json={"color": color}, headers={"If-Match": etag}
            )
            for color in ("blue", "green")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    final = (await client.get(f"/api/v1/widgets/{widget_id}")).json()
    assert final["version"] == 2
