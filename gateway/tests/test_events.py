"""The merged change feed at `GET /api/v1/events`, in front of four feed stubs serving the
services' contract over real HTTP: merged in order, resumable from the cursor without gaps
or repeats, filtered by the caller's scopes and counties, a service down named in
`meta.completeness` and its position kept, invalid cursors 422 and purged ones 410."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.tests.conftest import client_of
from gateway.tests.event_stubs import FeedStub
from kit.testing import Harness

EVENTS = "/api/v1/events"
READ_ALL = [
    "events:read",
    "brands:read",
    "certificates:read",
    "spot-checks:read",
    "assessments:read",
]
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


async def new_client(app: Any, scopes: list[str], county_codes: list[str] | None = None) -> str:
    async with client_of(app) as admin:
        response = await admin.post(
            "/api/v1/admin/clients",
            json={"name": "reader", "scopes": scopes, "county_codes": county_codes or []},
        )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


async def read_all(
    caller: httpx.AsyncClient, cursor: str | None, *, limit: int, **params: str
) -> tuple[list[dict[str, Any]], str]:
    """Every event after `cursor`, page by page; the events and the last cursor."""
    seen: list[dict[str, Any]] = []
    while True:
        query: dict[str, Any] = {"limit": limit, **params}
        if cursor is not None:
            query["after"] = cursor
        response = await caller.get(EVENTS, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page["meta"]["completeness"].values()) == {"ok"}
        cursor = page["next"]
        if not page["items"]:
            assert cursor is not None
            return seen, cursor
        seen += page["items"]


async def test_a_reader_keeping_its_cursor_sees_every_event_once_in_order(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands, certificates = feed_stubs["brand_registry"], feed_stubs["certification"]
    made = []
    for minute in range(7):
        stub = brands if minute % 3 else certificates
        kind = "brand.created" if stub is brands else "certificate.created"
        made.append(stub.add(kind, time=T0 + timedelta(minutes=minute)))
    key = await new_client(events_gateway.app, READ_ALL)
    async with client_of(events_gateway.app, api_key=key) as caller:
        seen, cursor = await read_all(caller, None, limit=2)
        assert [e["id"] for e in seen] == [e["id"] for e in made]
        assert seen[0]["specversion"] == "1.0"
        assert seen[0]["source"] == "/certification"

        # Later events come after the stored cursor, and nothing before it again.
        later = [brands.add("brand.status_changed", time=T0 + timedelta(hours=1))]
        later.append(feed_stubs["inspection"].add("spot_check.published", county_code="320323"))
        again, cursor = await read_all(caller, cursor, limit=1)
        assert [e["id"] for e in again] == [e["id"] for e in later]
        assert (await read_all(caller, cursor, limit=5))[0] == []


async def test_positions_move_only_past_the_events_returned(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands, runs = feed_stubs["brand_registry"], feed_stubs["assessment"]
    early = runs.add("assessment_run.published", time=T0)
    brand_events = [
        brands.add("brand.created", time=T0 + timedelta(minutes=i + 1)) for i in range(3)
    ]
    late = runs.add("reported_value.submitted", time=T0 + timedelta(hours=2))
    key = await new_client(events_gateway.app, READ_ALL)
    async with client_of(events_gateway.app, api_key=key) as caller:
        first = (await caller.get(EVENTS, params={"limit": 2})).json()
        # The assessment's second event was fetched but not returned: it comes next time.
        assert [e["id"] for e in first["items"]] == [early["id"], brand_events[0]["id"]]
        second = (await caller.get(EVENTS, params={"limit": 10, "after": first["next"]})).json()
        assert [e["id"] for e in second["items"]] == [e["id"] for e in brand_events[1:]] + [
            late["id"]
        ]
    assert runs.requests[-1]["after"] == 1


async def test_the_feed_asks_each_service_with_the_callers_scopes_and_counties(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands, certificates = feed_stubs["brand_registry"], feed_stubs["certification"]
    own = brands.add("brand.created", county_code="320323")
    brands.add("brand.created", county_code="320321")
    citywide = brands.add("brand.review_flagged")
    certificates.add("certificate.created", county_code="320323")
    key = await new_client(events_gateway.app, ["events:read", "brands:read"], ["320323"])
    async with client_of(events_gateway.app, api_key=key) as caller:
        seen, _ = await read_all(caller, None, limit=50)
    assert [e["id"] for e in seen] == [own["id"], citywide["id"]]
    # Only the brand registry was asked, with a token carrying events:read and brands:read.
    assert certificates.requests == []
    assert brands.requests[0]["scopes"] == ["brands:read", "events:read"]


async def test_the_type_filter_goes_to_the_services_it_concerns(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands, checks = feed_stubs["brand_registry"], feed_stubs["inspection"]
    brands.add("brand.created")
    changed = brands.add("brand.status_changed")
    published = checks.add("spot_check.published")
    key = await new_client(events_gateway.app, READ_ALL)
    async with client_of(events_gateway.app, api_key=key) as caller:
        seen, _ = await read_all(caller, None, limit=10, type="brand.status_changed,spot_check.*")
        assert {e["id"] for e in seen} == {changed["id"], published["id"]}
        assert feed_stubs["certification"].requests == []
        assert brands.requests[0]["type"] == "brand.status_changed"
        unknown = await caller.get(EVENTS, params={"type": "brand.nothing"})
        assert unknown.status_code == 422
        assert [e["field"] for e in unknown.json()["errors"]] == ["type"]


async def test_a_service_down_is_named_and_its_position_kept(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands, certificates = feed_stubs["brand_registry"], feed_stubs["certification"]
    brand = brands.add("brand.created", time=T0)
    certificate = certificates.add("certificate.created", time=T0 + timedelta(minutes=1))
    certificates.down = True
    key = await new_client(events_gateway.app, READ_ALL)
    async with client_of(events_gateway.app, api_key=key) as caller:
        page = (await caller.get(EVENTS)).json()
        assert [e["id"] for e in page["items"]] == [brand["id"]]
        completeness = page["meta"]["completeness"]
        assert completeness["certification"].startswith("HTTP 503")
        assert completeness["brand_registry"] == "ok"
        certificates.down = False
        again = (await caller.get(EVENTS, params={"after": page["next"]})).json()
        assert [e["id"] for e in again["items"]] == [certificate["id"]]


async def test_an_unknown_cursor_is_422_and_a_purged_one_410(
    events_gateway: Harness, feed_stubs: dict[str, FeedStub]
) -> None:
    brands = feed_stubs["brand_registry"]
    for _ in range(3):
        brands.add("brand.created")
    key = await new_client(events_gateway.app, READ_ALL)
    async with client_of(events_gateway.app, api_key=key) as caller:
        first = (await caller.get(EVENTS, params={"limit": 1})).json()
        for forged in ("nonsense", first["next"][:-2] + "xx", "a.b"):
            response = await caller.get(EVENTS, params={"after": forged})
            assert response.status_code == 422, forged
            assert [e["field"] for e in response.json()["errors"]] == ["after"]
        brands.purge_to(2)
        gone = await caller.get(EVENTS, params={"after": first["next"]})
        assert gone.status_code == 410
        assert gone.headers["content-type"] == "application/problem+json"
        assert gone.json()["field"] == "after"
        assert gone.json()["backend"] == "brand_registry"
        # A reader starting afresh starts at the oldest event kept.
        fresh = (await caller.get(EVENTS)).json()
        assert [e["sequence"] for e in fresh["items"]] == [str(3).zfill(20)]


async def test_the_feed_needs_events_read(events_gateway: Harness) -> None:
    key = await new_client(events_gateway.app, ["brands:read"])
    async with client_of(events_gateway.app, api_key=key) as caller:
        response = await caller.get(EVENTS)
    assert response.status_code == 403
    assert response.json()["required_scope"] == "events:read"
    async with client_of(events_gateway.app, api_key=None) as anonymous:
        assert (await anonymous.get(EVENTS)).status_code == 401


async def test_the_feed_is_documented_with_its_scope_and_cursor(events_gateway: Harness) -> None:
    async with client_of(events_gateway.app, api_key=None) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/events"]["get"]
    assert operation["x-required-scope"] == "events:read"
    assert "never skipping or repeating" in operation["description"]
    scopes = document["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]
    assert {"events:read", "webhooks:manage", "enterprises:read"} <= set(scopes["scopes"])
    assert document["paths"]["/api/v1/webhooks"]["post"]["x-required-scope"] == "webhooks:manage"


async def test_the_feed_is_charged_to_the_callers_rate_limit(events_gateway: Harness) -> None:
    async with client_of(events_gateway.app) as admin:
        created = await admin.post(
            "/api/v1/admin/clients",
            json={"name": "slow", "scopes": ["events:read"], "rate_limit": "2/minute"},
        )
    async with client_of(events_gateway.app, api_key=created.json()["api_key"]) as caller:
        first = await caller.get(EVENTS)
        assert first.headers["RateLimit-Limit"] == "2"
        await caller.get(EVENTS)
        refused = await caller.get(EVENTS)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
