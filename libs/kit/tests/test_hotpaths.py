"""Hot routes answer their usual case exactly as the FastAPI route of the same path would,
and hand everything else to it."""

from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import APIRouter, FastAPI

from kit.hotpaths import HotAnswer, HotRequest, HotRoute, HotRoutesMiddleware
from kit.observability import Metrics
from kit.testing import LEFT_TO_FRAMEWORK, Harness, hot_answers

ROUTE = "/api/v1/widget-rows/{widget_id}"


def _hot_answers(sample: Harness) -> float:
    return hot_answers(sample.app, ROUTE)


def _requests(sample: Harness, status: str) -> float:
    counter = sample.app.state.metrics.requests.labels("GET", ROUTE, status)
    return counter._value.get()  # type: ignore[no-any-return]


async def _widget(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.post("/api/v1/widgets", json={"name": name, "color": "red"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_hot_answer_is_the_answer_of_the_framework_route(sample: Harness) -> None:
    client = sample.client()
    widget = await _widget(client, "hot-1")
    before, counted = _hot_answers(sample), _requests(sample, "200")
    hot = await client.get(f"/api/v1/widget-rows/{widget['id']}")
    assert _hot_answers(sample) == before + 1
    # A parameter the hot route does not read leaves the request to FastAPI, which ignores it.
    framework = await client.get(f"/api/v1/widget-rows/{widget['id']}", params=LEFT_TO_FRAMEWORK)
    assert _hot_answers(sample) == before + 1
    assert hot.status_code == framework.status_code == 200
    assert hot.content == framework.content
    assert hot.json() == widget
    for header in ("content-type", "content-length", "etag"):
        assert hot.headers[header] == framework.headers[header]
    assert hot.headers["x-request-id"] != framework.headers["x-request-id"]
    # Both are counted under the route's template, as every answered request is.
    assert _requests(sample, "200") == counted + 2


async def test_a_problem_a_hot_route_raises_is_the_frameworks_problem(sample: Harness) -> None:
    client = sample.client()
    before = _hot_answers(sample)
    hot = await client.get("/api/v1/widget-rows/missing")
    assert _hot_answers(sample) == before + 1
    framework = await client.get("/api/v1/widget-rows/missing", params=LEFT_TO_FRAMEWORK)
    assert hot.status_code == framework.status_code == 404
    assert hot.content == framework.content
    assert hot.headers["content-type"] == framework.headers["content-type"]
    assert hot.json()["instance"] == "/api/v1/widget-rows/missing"


async def test_a_caller_the_hot_route_does_not_admit_gets_the_frameworks_refusal(
    sample: Harness,
) -> None:
    widget = await _widget(sample.client(), "hot-2")
    before = _hot_answers(sample)
    anonymous = await sample.client(authenticated=False).get(f"/api/v1/widget-rows/{widget['id']}")
    assert anonymous.status_code == 401
    writer_only = await sample.client(["widgets:write"]).get(f"/api/v1/widget-rows/{widget['id']}")
    assert writer_only.status_code == 403
    assert writer_only.json()["required_scope"] == "widgets:read"
    assert _hot_answers(sample) == before


async def test_a_path_the_framework_routes_elsewhere_is_left_to_it(sample: Harness) -> None:
    client = sample.client()
    await _widget(client, "hot-3")
    before = _hot_answers(sample)
    response = await client.get("/api/v1/widget-rows/count")
    assert response.status_code == 200
    assert response.json() == {"count": 1}
    assert _hot_answers(sample) == before


def _app(handler: Any) -> FastAPI:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id, "via": "framework"}

    app = FastAPI()
    app.state.metrics = Metrics()
    app.include_router(router)
    app.add_middleware(
        HotRoutesMiddleware, routes=[HotRoute("/things/{thing_id}", handler)], fastapi=app
    )
    return app


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        return await client.get(path)


@pytest.mark.parametrize("failure", [OSError("connection refused"), ConnectionResetError()])
async def test_a_database_failure_in_a_hot_route_leaves_the_request_to_the_framework(
    failure: Exception,
) -> None:
    async def failing(request: HotRequest) -> HotAnswer | None:
        raise failure

    response = await _get(_app(failing), "/things/7")
    assert response.json() == {"thing": "7", "via": "framework"}


async def test_a_hot_route_answers_only_its_template() -> None:
    async def hot(request: HotRequest) -> HotAnswer | None:
        return HotAnswer(b'{"via":"hot"}')

    app = _app(hot)
    assert (await _get(app, "/things/7")).json() == {"via": "hot"}
    assert (await _get(app, "/things/7/more")).status_code == 404
    assert (await _get(app, "/things/")).status_code == 404


def test_a_hot_route_must_be_a_get_route_of_the_app() -> None:
    async def hot(request: HotRequest) -> HotAnswer | None:
        return None

    app = FastAPI()
    app.state.metrics = Metrics()
    with pytest.raises(ValueError, match="not a GET route"):
        HotRoutesMiddleware(app, routes=[HotRoute("/nowhere/{x}", hot)], fastapi=app)


async def test_a_connection_broken_under_a_hot_read_is_a_503_and_is_replaced(
    sample: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg's protocol state broken under a statement (seen as PostgreSQL shut down while
    reads were under way) is the database outage's 503 with Retry-After, not a 500; the
    connection is dropped, and the next read gets a sound one."""
    if sample.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: elsewhere reads go through SQLAlchemy")
    client = sample.client()
    widget = await _widget(client, "hot-broken")
    fetch = asyncpg.Connection.fetch
    broken: list[int] = []

    async def break_once(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        if not broken:
            broken.append(id(self))
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return await fetch(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", break_once)
    failed = await client.get(f"/api/v1/widget-rows/{widget['id']}")
    assert failed.status_code == 503, failed.text
    assert failed.headers["retry-after"]
    answered = await client.get(f"/api/v1/widget-rows/{widget['id']}")
    assert answered.status_code == 200
    assert answered.json() == widget
