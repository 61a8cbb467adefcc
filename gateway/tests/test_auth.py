"""Who may call: API keys, OAuth2 tokens and scopes, each failure a problem response."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import event

from gateway import auth
from gateway.models import ApiClient
from gateway.tests.conftest import GatewayFactory, client_of
from gateway.tests.support import Backends
from kit.testing import Harness

ECHO = "/api/v1/brands/stub/echo"


async def _new_client(admin: httpx.AsyncClient, scopes: list[str], **extra: str) -> dict[str, Any]:
    response = await admin.post(
        "/api/v1/admin/clients",
        json={"name": f"system {uuid.uuid4().hex[:6]}", "scopes": scopes, **extra},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _oauth_token(keys: Path, **claims: object) -> str:
    key = serialization.load_pem_private_key((keys / "gateway-oauth.pem").read_bytes(), None)
    now = int(time.time())
    body = {
        "iss": "qrp-gateway-oauth",
        "aud": "qrp-api",
        "sub": "bootstrap-admin",
        "scope": "brands:read",
        "iat": now,
        "exp": now + 60,
        **claims,
    }
    return jwt.encode(body, key, algorithm="EdDSA")  # type: ignore[arg-type]


async def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_no_credentials_is_401(service: Harness) -> None:
    async with client_of(service.app, api_key=None) as anonymous:
        body = await _problem(await anonymous.get(ECHO), 401)
    assert "X-API-Key" in body["detail"]


async def test_unknown_key_is_401(service: Harness) -> None:
    async with client_of(service.app, api_key="qrp_not-a-key") as caller:
        body = await _problem(await caller.get(ECHO), 401)
    assert "unknown or has been revoked" in body["detail"]


async def test_a_key_forwards_the_client_and_its_scopes(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read"])
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        response = await caller.get(ECHO)
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["client_id"] == created["id"]
    assert echoed["scopes"] == ["brands:read"]
    assert "x-api-key" not in echoed["headers"], "the client's key must stay at the gateway"


async def test_a_backend_learns_only_the_scopes_on_its_own_resources(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(
        admin, ["brands:read", "brands:flag", "certificates:write", "assessments:publish", "admin"]
    )
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        response = await caller.get(ECHO)
    assert response.status_code == 200
    assert response.json()["scopes"] == ["brands:flag", "brands:read"]


async def test_missing_scope_is_403_naming_it(admin: httpx.AsyncClient, service: Harness) -> None:
    created = await _new_client(admin, ["brands:read"])
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        body = await _problem(await caller.post(ECHO, json={}), 403)
        assert body["required_scope"] == "brands:write"
        body = await _problem(await caller.get("/api/v1/certificates"), 403)
        assert body["required_scope"] == "certificates:read"
        body = await _problem(await caller.get("/api/v1/admin/clients"), 403)
        assert body["required_scope"] == "admin"


async def test_revoked_key_stops_working_at_once(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read"])
    async with client_of(service.app, api_key=created["api_key"]) as caller:
        assert (await caller.get(ECHO)).status_code == 200
        revoked = await admin.post(f"/api/v1/admin/clients/{created['id']}/revoke")
        assert revoked.json()["status"] == "revoked"
        await _problem(await caller.get(ECHO), 401)


async def test_rotation_replaces_the_key(admin: httpx.AsyncClient, service: Harness) -> None:
    created = await _new_client(admin, ["brands:read"])
    rotated = (await admin.post(f"/api/v1/admin/clients/{created['id']}/rotate")).json()
    assert rotated["revoked_key_ids"] == [created["keys"][0]["id"]]
    async with client_of(service.app, api_key=created["api_key"]) as old:
        await _problem(await old.get(ECHO), 401)
    async with client_of(service.app, api_key=rotated["api_key"]) as new:
        assert (await new.get(ECHO)).status_code == 200


async def test_keys_are_never_stored_or_listed_in_plain_text(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read"])
    listed = (await admin.get("/api/v1/admin/clients")).text
    assert created["api_key"] not in listed
    async with service.engine.connect() as connection:
        from sqlalchemy import text

        stored = (await connection.execute(text("SELECT key_hash, key_prefix FROM api_key"))).all()
    assert all(created["api_key"] not in (h, p) for h, p in stored)


async def test_oauth_client_credentials_give_a_working_token(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read", "certificates:read"])
    async with client_of(service.app, api_key=None) as anonymous:
        issued = await anonymous.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["id"],
                "client_secret": created["api_key"],
                "scope": "brands:read",
            },
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "brands:read"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        response = await anonymous.get(ECHO, headers=bearer)
        assert response.status_code == 200
        assert response.json()["scopes"] == ["brands:read"]
        await _problem(await anonymous.get("/api/v1/certificates", headers=bearer), 403)


async def test_oauth_rejects_bad_client_credentials(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read"])
    async with client_of(service.app, api_key=None) as anonymous:
        wrong = await anonymous.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["id"],
                "client_secret": "nope",
            },
        )
        assert (await _problem(wrong, 401))["error"] == "invalid_client"
        grant = await anonymous.post("/oauth/token", data={"grant_type": "password"})
        assert (await _problem(grant, 400))["error"] == "unsupported_grant_type"
        greedy = await anonymous.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["id"],
                "client_secret": created["api_key"],
                "scope": "brands:write",
            },
        )
        assert (await _problem(greedy, 400))["error"] == "invalid_scope"


async def test_expired_token_is_401(service: Harness, keys: Path) -> None:
    token = _oauth_token(keys, iat=int(time.time()) - 120, exp=int(time.time()) - 60)
    async with client_of(service.app, api_key=None, Authorization=f"Bearer {token}") as caller:
        body = await _problem(await caller.get(ECHO), 401)
    assert "expired" in body["detail"]


async def test_a_token_accepted_before_is_refused_once_it_expires(
    make_gateway: GatewayFactory, keys: Path
) -> None:
    expires = int(time.time()) + 2
    token = _oauth_token(keys, exp=expires)
    async with (
        # Verified tokens are remembered far longer than this one lives.
        make_gateway(auth_cache_seconds=60) as gateway,
        client_of(gateway, api_key=None, Authorization=f"Bearer {token}") as caller,
    ):
        assert (await caller.get(ECHO)).status_code == 200
        await asyncio.sleep(max(expires - time.time(), 0) + 0.1)
        body = await _problem(await caller.get(ECHO), 401)
    assert "expired" in body["detail"]


async def test_token_for_another_audience_is_401(service: Harness, keys: Path) -> None:
    token = _oauth_token(keys, aud="some-other-api")
    async with client_of(service.app, api_key=None, Authorization=f"Bearer {token}") as caller:
        body = await _problem(await caller.get(ECHO), 401)
    assert "audience" in body["detail"]


async def test_token_signed_with_another_key_is_401(service: Harness, tmp_path: Path) -> None:
    from kit.auth import write_keypair

    write_keypair(tmp_path, "gateway-oauth")
    token = _oauth_token(tmp_path)
    async with client_of(service.app, api_key=None, Authorization=f"Bearer {token}") as caller:
        await _problem(await caller.get(ECHO), 401)


async def test_token_of_a_revoked_client_is_401(
    admin: httpx.AsyncClient, service: Harness, keys: Path
) -> None:
    created = await _new_client(admin, ["brands:read"])
    token = _oauth_token(keys, sub=created["id"])
    async with client_of(service.app, api_key=None, Authorization=f"Bearer {token}") as caller:
        assert (await caller.get(ECHO)).status_code == 200
        await admin.post(f"/api/v1/admin/clients/{created['id']}/revoke")
        await _problem(await caller.get(ECHO), 401)


async def test_a_service_reached_directly_without_gateway_token_is_401(backends: Backends) -> None:
    async with httpx.AsyncClient() as direct:
        for name in ("stub", "brand_registry", "certification", "inspection", "assessment"):
            spec = (await direct.get(backends.url(name) + "/openapi.json")).json()
            paths = [
                path
                for path, item in spec["paths"].items()
                if path.startswith("/api/v1/")
                and "{" not in path
                and "get" in item
                and "verify" not in path
            ]
            for path in paths[:1]:
                response = await direct.get(backends.url(name) + path)
                assert response.status_code == 401, (name, path, response.text)
        response = await direct.get(backends.url("stub") + ECHO)
        assert response.status_code == 401


async def test_admin_validation_names_the_field(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/admin/clients", json={"name": "x", "scopes": ["brands:read"], "rate_limit": "lots"}
    )
    body = await _problem(response, 422)
    assert body["errors"][0]["field"] == "rate_limit"
    response = await admin.post(
        "/api/v1/admin/clients", json={"name": "x", "scopes": ["brands:fly"]}
    )
    assert (await _problem(response, 422))["errors"][0]["field"] == "scopes"
    assert (await admin.get("/api/v1/admin/clients")).json()["items"][0]["id"] == "bootstrap-admin"
    assert len((await admin.get("/api/v1/admin/clients")).json()["items"]) == 1


async def test_admin_clients_are_listed_page_by_page(admin: httpx.AsyncClient) -> None:
    created = {(await _new_client(admin, ["brands:read"]))["id"] for _ in range(2)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await admin.get("/api/v1/admin/clients", params=params)).json()
        assert len(page["items"]) == 1
        seen.append(page["items"][0]["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(created | {"bootstrap-admin"})
    stale = await admin.get("/api/v1/admin/clients", params={"cursor": "forged.cursor"})
    await _problem(stale, 400)


async def test_cached_answers_expire_and_the_least_recently_used_goes_first() -> None:
    cache: auth.Answers[str, str | None] = auth.Answers(0.2, size=2)
    loads: list[str] = []

    def loader(key: str, value: str | None) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            loads.append(key)
            return value

        return load

    assert await cache.get("a", loader("a", "A")) == "A"
    assert await cache.get("refused", loader("refused", None)) is None
    assert await cache.get("refused", loader("refused", "late")) is None
    assert cache.fresh("a") == "A"
    cache.keep("b", "B")
    assert cache.fresh("refused") is None, "the least recently used went first"
    assert (cache.fresh("a"), cache.fresh("b")) == ("A", "B")
    await asyncio.sleep(0.25)
    assert cache.fresh("a") is None
    assert await cache.get("a", loader("a", "A2")) == "A2"
    assert loads == ["a", "refused", "a"]


async def test_callers_missing_together_share_one_load_and_its_failure() -> None:
    cache: auth.Answers[str, str] = auth.Answers(60)
    release = asyncio.Event()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        if loads == 1:
            raise ConnectionRefusedError("the database is down")
        return f"answer {loads}"

    waiting = [asyncio.create_task(cache.get("k", load)) for _ in range(8)]
    await asyncio.sleep(0.01)
    waiting[0].cancel()
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, ConnectionRefusedError) for o in outcomes[1:]), outcomes
    assert loads == 1, "one load for all who missed, and a caller gone does not cancel it"
    assert await asyncio.gather(*(cache.get("k", load) for _ in range(4))) == ["answer 2"] * 4
    assert loads == 2, "a failure is not kept: the next miss loads again, once"


async def test_a_load_under_way_when_answers_are_forgotten_is_not_kept() -> None:
    cache: auth.Answers[str, str] = auth.Answers(60)
    release = asyncio.Event()

    async def stale() -> str:
        await release.wait()
        return "before the revocation"

    async def current() -> str:
        return "after the revocation"

    pending = asyncio.create_task(cache.get("k", stale))
    await asyncio.sleep(0)
    cache.clear()
    assert await cache.get("k", current) == "after the revocation"
    release.set()
    assert await pending == "before the revocation"
    assert cache.fresh("k") == "after the revocation"


async def test_requests_arriving_together_with_a_key_look_it_up_once(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _new_client(admin, ["brands:read"])
    engine = service.app.state.sessionmaker.kw["bind"].sync_engine
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_key" in statement:
            lookups.append(statement)

    service.app.state.proxy.authenticator.forget()
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with client_of(service.app, api_key=created["api_key"]) as caller:
            answers = await asyncio.gather(*(caller.get(ECHO) for _ in range(16)))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [a.status_code for a in answers] == [200] * 16
    assert len(lookups) == 1, lookups


async def test_a_revocation_is_announced_once_committed_and_never_when_refused(
    admin: httpx.AsyncClient, service: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await _new_client(admin, ["brands:read"])
    seen: list[str] = []

    async def publish() -> None:
        async with service.app.state.sessionmaker() as session:
            stored = await session.get(ApiClient, created["id"])
            seen.append(stored.status if stored else "missing")

    monkeypatch.setattr(service.app.state.proxy.revocations, "publish", publish)
    assert (await admin.post(f"/api/v1/admin/clients/{created['id']}/revoke")).status_code == 200
    assert seen == ["revoked"], "announced only after the revocation was committed"
    await _problem(await admin.post("/api/v1/admin/clients/no-such-client/revoke"), 404)
    assert seen == ["revoked"]
