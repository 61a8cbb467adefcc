import gc
import weakref

import pytest
from sqlalchemy import select

from kit.errors import BadRequest
from kit.pagination import (
    CURSOR_PATTERN,
    CursorCodec,
    PageParams,
    page_of,
    paginate,
    query_fingerprint,
)
from kit.testing import Harness
from kit.tests.sample_app import Widget

codec = CursorCodec(b"s" * 32)


def test_round_trip() -> None:
    fingerprint = query_fingerprint({"color": "red"})
    assert codec.decode(codec.encode(["abc", 3], fingerprint), fingerprint) == ["abc", 3]


def test_building_pages_does_not_build_a_model_class_each_time() -> None:
    built = page_of([1, 2, 3], limit=2, codec=codec, fingerprint="f", key=lambda n: [n])
    mapped = weakref.ref(type(built.map(str)))
    fetched = weakref.ref(type(built))
    del built
    gc.collect()
    assert mapped() is not None
    assert fetched() is not None


def test_fingerprint_ignores_limit_and_cursor_and_unset_filters() -> None:
    assert query_fingerprint({"color": "red", "limit": 5, "cursor": "x", "tier": None}) == (
        query_fingerprint({"color": "red"})
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: "x" + c,
        lambda c: c.replace(".", ""),
        lambda c: "not-a-cursor",
    ],
)
def test_tampered_cursor_is_rejected(mutate: object) -> None:
    fingerprint = query_fingerprint({})
    cursor = codec.encode(["0001"], fingerprint)
    with pytest.raises(BadRequest):
        codec.decode(mutate(cursor), fingerprint)  # type: ignore[operator]


def test_forged_payload_with_another_secret_is_rejected() -> None:
    fingerprint = query_fingerprint({})
    forged = CursorCodec(b"t" * 32).encode(["zzz"], fingerprint)
    with pytest.raises(BadRequest, match="altered"):
        codec.decode(forged, fingerprint)


def test_cursor_from_another_query_is_rejected() -> None:
    cursor = codec.encode(["0001"], query_fingerprint({"color": "red"}))
    with pytest.raises(BadRequest, match="different query"):
        codec.decode(cursor, query_fingerprint({"color": "blue"}))


async def _create(client, name: str, color: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post("/api/v1/widgets", json={"name": name, "color": color})
    assert response.status_code == 201, response.text


async def test_pages_walk_every_item_once(sample: Harness) -> None:
    client = sample.client()
    for i in range(7):
        await _create(client, f"w{i}", "red" if i % 2 else "blue")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3, "color": "red"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/widgets", params=params)).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["w1", "w3", "w5"]


async def test_pages_in_descending_order_of_two_keys(sample: Harness) -> None:
    client = sample.client()
    for name, color in [("a", "red"), ("b", "red"), ("c", "blue"), ("d", "red"), ("e", "blue")]:
        await _create(client, name, color)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get("/api/v1/widgets-by-name", params=params)).json()
        seen += [f"{item['color']}:{item['name']}" for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["red:d", "red:b", "red:a", "blue:e", "blue:c"]


@pytest.mark.parametrize("path", ["/api/v1/widgets-of-color", "/api/v1/widgets-of-color-on-engine"])
async def test_a_kept_statement_pages_each_request_by_its_own_values(
    sample: Harness, path: str
) -> None:
    """On a read session, and on the engine (`fetch_rows`), which gives the same pages."""
    client = sample.client()
    for i in range(9):
        await _create(client, f"w{i}", ("red", "blue", "green")[i % 3])

    async def walk(color: str) -> list[str]:
        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 2, "color": color}
        while True:
            response = await client.get(path, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert {item["color"] for item in page["items"]} <= {color}
            seen += [item["name"] for item in page["items"]]
            if page["next_cursor"] is None:
                return seen
            params["cursor"] = page["next_cursor"]

    assert sorted(await walk("red")) == ["w0", "w3", "w6"]
    assert sorted(await walk("blue")) == ["w1", "w4", "w7"]
    assert sorted(await walk("red")) == ["w0", "w3", "w6"]
    assert await walk("purple") == []


async def test_a_cursor_is_bound_to_its_path(sample: Harness) -> None:
    client = sample.client()
    for i in range(3):
        await _create(client, f"p{i}", "red")
    cursor = (await client.get("/api/v1/widgets", params={"limit": 1})).json()["next_cursor"]
    other = await client.get("/api/v1/widgets-by-name", params={"limit": 1, "cursor": cursor})
    assert other.status_code == 400
    assert "different query" in other.json()["detail"]


async def test_http_tampered_cursor_is_400_problem(sample: Harness) -> None:
    client = sample.client()
    for i in range(3):
        await _create(client, f"t{i}", "red")
    page = (await client.get("/api/v1/widgets", params={"limit": 1})).json()
    cursor = page["next_cursor"]
    bad = await client.get("/api/v1/widgets", params={"limit": 1, "cursor": cursor[:-3] + "abc"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["field"] == "cursor"
    other = await client.get("/api/v1/widgets", params={"limit": 1, "cursor": cursor, "color": "x"})
    assert other.status_code == 400


@pytest.mark.parametrize("limit", [0, 501, -1])
async def test_limit_bounds(sample: Harness, limit: int) -> None:
    response = await sample.client().get("/api/v1/widgets", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


async def test_default_limit_is_50(sample: Harness) -> None:
    client = sample.client()
    for i in range(52):
        await _create(client, f"d{i:02d}", "red")
    page = (await client.get("/api/v1/widgets")).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"]


async def test_a_cursor_not_shaped_like_one_is_refused_by_its_stated_pattern(
    sample: Harness,
) -> None:
    client = sample.client()
    bad = await client.get("/api/v1/widgets", params={"cursor": "not a cursor"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
    document = (await client.get("/openapi.json")).json()
    parameters = document["paths"]["/api/v1/widgets"]["get"]["parameters"]
    (cursor,) = [p for p in parameters if p["name"] == "cursor"]
    assert {"type": "string", "maxLength": 2048, "pattern": CURSOR_PATTERN} in cursor["schema"][
        "anyOf"
    ]


def test_a_kept_statement_is_ordered_once_per_shape_and_a_fresh_one_is_let_go() -> None:
    from sqlalchemy import column, select, table

    from kit import pagination

    items = table("item", column("id"), column("color"))
    kept = select(items.c.id).where(items.c.color == "red")
    first = pagination._ordered_statement(kept, [items.c.id], descending=False, resumed=False)
    again = pagination._ordered_statement(kept, [items.c.id], descending=False, resumed=False)
    resumed = pagination._ordered_statement(kept, [items.c.id], descending=False, resumed=True)
    assert first is again, "the same shape is built once, so its cache key is worked out once"
    assert resumed is not first
    fresh = select(items.c.id)
    pagination._ordered_statement(fresh, [items.c.id], descending=True, resumed=False)
    gone = weakref.ref(fresh)
    del fresh
    gc.collect()
    assert gone() is None, "a statement built for one request is not kept by pagination"


async def test_paging_on_the_engine_takes_a_kept_statement_of_rows(sample: Harness) -> None:
    """On the engine there is no session to load ORM objects into, and a statement built per
    call would be compiled per call: both are refused rather than served slowly."""
    page = PageParams(limit=5, cursor=None, codec=CursorCodec(b"k" * 32), fingerprint="")
    statement = select(Widget.__table__.c.id)  # type: ignore[attr-defined]
    key = Widget.__table__.c.id  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="kept statement"):
        await paginate(sample.engine, statement, params=page, keys=[key], rows=True)
    with pytest.raises(ValueError, match="kept statement"):
        await paginate(sample.engine, statement, params=page, keys=[key], values={})
    found = await paginate(sample.engine, statement, params=page, keys=[key], values={}, rows=True)
    assert found.items == []
