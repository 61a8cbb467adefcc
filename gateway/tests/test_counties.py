"""Clients bound to counties: the binding is stored, checked, and reaches every backend in the
service token, by API key and by OAuth token alike; a change reaches the next request."""

from typing import Any

import httpx

from gateway.tests.conftest import client_of
from kit.testing import Harness

ECHO = "/api/v1/brands/stub/echo"
CLIENTS = "/api/v1/admin/clients"


async def _create(admin: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await admin.post(CLIENTS, json={"name": "county system", **body})


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


async def test_a_bound_client_is_stored_listed_and_forwarded_with_its_counties(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    response = await _create(
        admin, scopes=["brands:read", "city:read"], county_codes=["320323", "320321", "320323"]
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["county_codes"] == ["320321", "320323"]
    assert (await admin.get(f"{CLIENTS}/{created['id']}")).json()["county_codes"] == [
        "320321",
        "320323",
    ]
    listed = {client["id"]: client for client in (await admin.get(CLIENTS)).json()["items"]}
    assert listed[created["id"]]["county_codes"] == ["320321", "320323"]
    assert listed["bootstrap-admin"]["county_codes"] == []

    async with client_of(service.app, api_key=created["api_key"]) as caller:
        echoed = (await caller.get(ECHO)).json()
    assert echoed["counties"] == ["320321", "320323"]
    # city:read is not a resource of one backend: every backend is told of it.
    assert echoed["scopes"] == ["brands:read", "city:read"]


async def test_a_city_wide_client_sends_no_counties(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = (await _create(admin, scopes=["brands:read"])).json()
    assert created["county_codes"] == []
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        assert (await caller.get(ECHO)).json()["counties"] == []


async def test_unknown_or_malformed_counties_are_422_naming_county_codes(
    admin: httpx.AsyncClient,
) -> None:
    # 320399 has the shape of a county code but is not one of config/regions.json.
    assert _fields(await _create(admin, county_codes=["320323", "320399"])) == ["county_codes[1]"]
    assert _fields(await _create(admin, county_codes=["320300"])) == ["county_codes[0]"]
    assert _fields(await _create(admin, county_codes=["abc"])) == ["county_codes[0]"]
    assert _fields(await _create(admin, county_codes=["320323"] * 65)) == ["county_codes"]
    assert _fields(await _create(admin, county_codes="320323")) == ["county_codes"]


async def test_a_bound_client_never_holds_review_or_admin(admin: httpx.AsyncClient) -> None:
    for scope in ("assessments:review", "admin"):
        response = await _create(admin, scopes=["assessments:read", scope], county_codes=["320323"])
        assert _fields(response) == ["scopes"]
        assert scope in response.json()["errors"][0]["message"]
    reviewer = (await _create(admin, scopes=["assessments:review"])).json()
    # Binding the reviewer, or giving a bound client the scope, is refused the same way.
    bind = await admin.patch(f"{CLIENTS}/{reviewer['id']}", json={"county_codes": ["320323"]})
    assert _fields(bind) == ["scopes"]
    bound = (await _create(admin, scopes=["assessments:read"], county_codes=["320323"])).json()
    grant = await admin.patch(f"{CLIENTS}/{bound['id']}", json={"scopes": ["assessments:review"]})
    assert _fields(grant) == ["scopes"]
    assert (await admin.get(f"{CLIENTS}/{bound['id']}")).json()["scopes"] == ["assessments:read"]


async def test_updating_a_client_changes_the_next_forwarded_token(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = (await _create(admin, scopes=["brands:read"], county_codes=["320323"])).json()
    url = f"{CLIENTS}/{created['id']}"
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        assert (await caller.get(ECHO)).json()["counties"] == ["320323"]

        moved = await admin.patch(url, json={"county_codes": ["320324", "320381"]})
        assert moved.status_code == 200, moved.text
        assert moved.json()["county_codes"] == ["320324", "320381"]
        assert moved.json()["scopes"] == ["brands:read"], "fields left out stay"
        assert (await caller.get(ECHO)).json()["counties"] == ["320324", "320381"]

        widened = await admin.patch(url, json={"county_codes": [], "scopes": ["brands:write"]})
        assert widened.status_code == 200, widened.text
        assert (await caller.get(ECHO)).status_code == 403
        echoed = (await caller.post(ECHO)).json()
        assert echoed["counties"] == []
        assert echoed["scopes"] == ["brands:write"]

    renamed = await admin.patch(url, json={"name": "renamed", "rate_limit": "5/minute"})
    assert renamed.json()["name"] == "renamed"
    assert renamed.json()["rate_limit"] == "5/minute"
    assert _fields(await admin.patch(url, json={"county_code": ["320323"]})) == ["county_code"]
    assert _fields(await admin.patch(url, json={"rate_limit": "often"})) == ["rate_limit"]
    missing = await admin.patch(f"{CLIENTS}/no-such-client", json={"name": "x"})
    assert missing.status_code == 404


async def test_an_oauth_token_of_a_bound_client_carries_its_current_counties(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = (await _create(admin, scopes=["brands:read"], county_codes=["320321"])).json()
    async with client_of(service.app, api_key=None) as anonymous:
        issued = await anonymous.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["id"],
                "client_secret": created["api_key"],
            },
        )
        assert issued.status_code == 200, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await anonymous.get(ECHO, headers=bearer)).json()["counties"] == ["320321"]
        await admin.patch(f"{CLIENTS}/{created['id']}", json={"county_codes": ["320322"]})
        assert (await anonymous.get(ECHO, headers=bearer)).json()["counties"] == ["320322"]
