"""Failed authentication is throttled per client address and, at /oauth/token, per client id:
past the budget a 429 with Retry-After, before the credentials are looked up. The address is
the real peer: X-Forwarded-For counts only from a trusted proxy (kit.serve
--trusted-proxies), for the anonymous limit as for failures."""

import re
import secrets
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.tests.conftest import ADMIN_KEY, GatewayFactory, Served
from gateway.tests.test_ratelimit import REDIS_URL, redis_prefix  # noqa: F401
from kit.testing import Harness

ECHO = "/api/v1/brands/stub/echo"
VERIFY = "/api/v1/certificates/verify?number=X-1&body=CQC"


def peer(app: FastAPI, address: str, **headers: str) -> httpx.AsyncClient:
    """A client on `app` in-process whose connection comes from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


def _metric(text: str, name: str, **labels: str) -> float:
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{re.escape(rendered)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _throttled(response: httpx.Response, by: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["throttled_by"] == by


async def _client(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.post(
        "/api/v1/admin/clients", json={"name": "throttled", "scopes": ["brands:read"]}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_random_keys_are_refused_with_429_past_the_address_budget(
    admin: httpx.AsyncClient, service: Harness
) -> None:
    created = await _client(admin)
    before = (await admin.get("/metrics")).text
    async with peer(service.app, "203.0.113.7") as attacker:
        answers = [
            await attacker.get(ECHO, headers={"X-API-Key": "qrp_" + secrets.token_urlsafe(32)})
            for _ in range(400)
        ]
        # The valid key of a client is throttled too when sent from that address.
        owner = await attacker.get(ECHO, headers={"X-API-Key": created["api_key"]})
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * 20 + [429] * 380
    _throttled(answers[20], "address")
    _throttled(owner, "address")
    assert "failed authentications from this address" in answers[-1].json()["detail"]
    after = (await admin.get("/metrics")).text
    # Only the 20 counted failures were looked up; the 381 others were refused before.
    kinds = {"kind": "api_key"}
    assert _metric(after, "gateway_auth_failures_total", **kinds) - _metric(
        before, "gateway_auth_failures_total", **kinds
    ) == pytest.approx(20)
    assert _metric(after, "gateway_auth_throttled_total", by="address") - _metric(
        before, "gateway_auth_throttled_total", by="address"
    ) == pytest.approx(381)

    async with peer(service.app, "198.51.100.20", **{"X-API-Key": created["api_key"]}) as fresh:
        assert (await fresh.get(ECHO)).status_code == 200
    # That success reset nothing: the attacking address stays throttled, its key unchecked.
    service.app.state.proxy.authenticator.forget()
    async with peer(service.app, "203.0.113.7", **{"X-API-Key": created["api_key"]}) as again:
        _throttled(await again.get(ECHO), "address")
    async with peer(service.app, "198.51.100.21") as other:
        bad_bearer = await other.get(ECHO, headers={"Authorization": "Bearer not-a-token"})
        assert bad_bearer.status_code == 401


async def test_bad_bearers_and_admin_calls_count_as_failures_too(service: Harness) -> None:
    async with peer(service.app, "203.0.113.8") as attacker:
        for _ in range(10):
            assert (
                await attacker.get(ECHO, headers={"Authorization": "Bearer x.y.z"})
            ).status_code == 401
            assert (
                await attacker.get("/api/v1/admin/clients", headers={"X-API-Key": "qrp_nope"})
            ).status_code == 401
        _throttled(
            await attacker.get("/api/v1/admin/clients", headers={"X-API-Key": ADMIN_KEY}), "address"
        )
        _throttled(await attacker.get(ECHO, headers={"Authorization": "Bearer x.y.z"}), "address")
        # Without credentials nothing is looked up, so nothing is throttled: a plain 401.
        assert (await attacker.get(ECHO)).status_code == 401


async def test_two_gateways_on_one_redis_share_the_failures(
    make_gateway: GatewayFactory,
    redis_prefix: str,  # noqa: F811
) -> None:
    settings = {"redis_url": REDIS_URL, "rate_limit_prefix": redis_prefix}
    async with (
        make_gateway(**settings) as one,
        make_gateway(**settings) as two,
        peer(one, "203.0.113.9") as a,
        peer(two, "203.0.113.9") as b,
    ):
        statuses = [
            (
                await (a if i % 2 else b).get(ECHO, headers={"X-API-Key": f"qrp_wrong_{i}"})
            ).status_code
            for i in range(20)
        ]
        assert statuses == [401] * 20
        _throttled(await a.get(ECHO, headers={"X-API-Key": "qrp_wrong_a"}), "address")
        _throttled(await b.get(ECHO, headers={"X-API-Key": "qrp_wrong_b"}), "address")


async def _rotating(client: httpx.AsyncClient, count: int, send: Any) -> list[httpx.Response]:
    return [
        await send(client, {"X-Forwarded-For": f"10.{i // 250}.{i % 250}.{i % 7 + 1}"})
        for i in range(count)
    ]


async def test_the_anonymous_limit_is_keyed_on_the_real_peer(served: Served) -> None:
    async def verify(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await client.get(VERIFY, headers=headers)

    # Not a trusted proxy: the forwarded addresses are ignored, and the 61st call is refused.
    async with served("") as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        answers = await _rotating(client, 65, verify)
        assert [a.status_code for a in answers].count(429) == 5
        assert all(a.status_code != 429 for a in answers[:60])
    # Behind a trusted proxy each forwarded address has a budget of its own.
    async with served("127.0.0.1") as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        answers = await _rotating(client, 65, verify)
        assert all(a.status_code not in {401, 403, 429} for a in answers), answers[-1].text


async def test_wrong_secrets_for_one_client_id_are_throttled_on_the_client_id(
    served: Served, admin: httpx.AsyncClient
) -> None:
    created = await _client(admin)

    async def token(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": created["id"],
            "client_secret": "qrp_" + secrets.token_urlsafe(32),
        }
        return await client.post("/oauth/token", data=form, headers=headers)

    async with served("127.0.0.1") as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        answers = await _rotating(client, 200, token)
        assert [a.status_code for a in answers] == [401] * 10 + [429] * 190
        _throttled(answers[10], "client_id")
        assert answers[0].json()["error"] == "invalid_client"
        # Each address failed once: another client id from one of them is not throttled.
        other = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
            headers={"X-Forwarded-For": "10.0.1.2"},
        )
        assert other.status_code == 401
        # The client's own key, from a fresh address, still works for API calls.
        call = await client.get(
            ECHO, headers={"X-API-Key": created["api_key"], "X-Forwarded-For": "192.0.2.50"}
        )
        assert call.status_code == 200, call.text
        metrics = (await client.get("/metrics")).text
    assert _metric(metrics, "gateway_auth_failures_total", kind="client_secret") == 11
    assert _metric(metrics, "gateway_auth_throttled_total", by="client_id") == 190
