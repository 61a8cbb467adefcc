"""Forwarding: routing by prefix, headers, retries, the breaker, timeouts, request IDs."""

import asyncio
import json
import uuid

import httpx
import pytest

from gateway.tests.conftest import GatewayFactory, client_of
from gateway.tests.support import SERVICES, Backends
from kit.testing import Harness

STUB = "/api/v1/brands/stub"


async def _calls(backends: Backends) -> dict[str, int]:
    async with httpx.AsyncClient() as direct:
        calls: dict[str, int] = (
            await direct.get(backends.url("stub") + "/stub-control/calls")
        ).json()
        return calls


async def _wait_for_log(backends: Backends, name: str, text: str) -> bool:
    for _ in range(50):
        if text in backends.processes[name].log_text():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_each_prefix_reaches_its_service_with_the_request_id(
    admin: httpx.AsyncClient, backends: Backends, make_gateway: GatewayFactory
) -> None:
    routes = {
        "/api/v1/brands": "brand_registry",
        "/api/v1/certificates": "certification",
        "/api/v1/spot-checks": "inspection",
        "/api/v1/regions": "assessment",
        "/api/v1/target-sets": "assessment",
        "/api/v1/reported-values": "assessment",
        "/api/v1/reference-values": "assessment",
        "/api/v1/assessments/2008/standings": "assessment",
    }
    async with (
        make_gateway(brand_registry_url=backends.url("brand_registry")) as gateway,
        client_of(gateway) as client,
    ):
        for path, service in routes.items():
            request_id = f"gw-route-{uuid.uuid4().hex}"
            response = await client.get(path, headers={"X-Request-ID": request_id})
            assert response.status_code < 500, (path, response.text)
            assert response.headers["x-request-id"] == request_id
            assert await _wait_for_log(backends, service, request_id), (path, service)
            others = [name for name in SERVICES if name != service]
            assert not any(request_id in backends.processes[o].log_text() for o in others)


async def test_a_request_id_is_generated_when_absent_or_invalid(admin: httpx.AsyncClient) -> None:
    response = await admin.get(STUB + "/echo", headers={"X-Request-ID": "bad id with spaces"})
    generated = response.headers["x-request-id"]
    assert generated != "bad id with spaces"
    assert response.json()["headers"]["x-request-id"] == generated


async def test_forwarded_headers_and_body(admin: httpx.AsyncClient) -> None:
    response = await admin.put(
        STUB + "/echo?year=2008&county_code=320323",
        content=b'{"a": 1}',
        headers={
            "Content-Type": "application/json",
            "X-Forwarded-For": "10.1.2.3",
            "Connection": "keep-alive, x-secret-hop",
            "X-Secret-Hop": "for the next hop only",
            "Cookie": "session=abc",
        },
    )
    assert response.status_code == 200
    echoed = response.json()
    headers = echoed["headers"]
    assert echoed["query"] == "year=2008&county_code=320323"
    assert echoed["body"] == '{"a": 1}'
    assert headers["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "testserver"
    assert headers["authorization"].startswith("Bearer ")
    assert "cookie" not in headers
    assert "x-secret-hop" not in headers


async def test_public_verification_needs_no_credentials_and_is_limited_per_ip(
    make_gateway: GatewayFactory,
) -> None:
    async with (
        make_gateway(anonymous_rate_limit="2/minute") as gateway,
        client_of(gateway, api_key=None) as anonymous,
    ):
        first = await anonymous.get("/api/v1/certificates/verify?number=X-1&body=CQC")
        assert first.status_code not in {401, 403, 429}, first.text
        assert first.headers["ratelimit-limit"] == "2"
        await anonymous.get("/api/v1/certificates/verify?number=X-1&body=CQC")
        third = await anonymous.get("/api/v1/certificates/verify?number=X-1&body=CQC")
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) >= 1


async def test_a_non_idempotent_post_is_not_repeated(
    admin: httpx.AsyncClient, backends: Backends
) -> None:
    key = uuid.uuid4().hex
    response = await admin.post(STUB + "/flaky", headers={"X-Test-Key": key}, json={})
    assert response.status_code == 503
    assert (await _calls(backends))[f"flaky:POST:{key}"] == 1


async def test_idempotent_requests_are_retried(
    admin: httpx.AsyncClient, backends: Backends
) -> None:
    key = uuid.uuid4().hex
    response = await admin.get(STUB + "/flaky?fail_first=2", headers={"X-Test-Key": key})
    assert response.status_code == 200
    assert (await _calls(backends))[f"flaky:GET:{key}"] == 3
    keyed = uuid.uuid4().hex
    response = await admin.post(
        STUB + "/flaky?fail_first=1",
        headers={"X-Test-Key": keyed, "Idempotency-Key": keyed},
        json={"same": "body"},
    )
    assert response.status_code == 200
    assert (await _calls(backends))[f"flaky:POST:{keyed}"] == 2


async def test_a_slow_backend_gives_a_504_problem(make_gateway: GatewayFactory) -> None:
    async with make_gateway(read_timeout_seconds=0.3) as gateway, client_of(gateway) as client:
        response = await client.get(STUB + "/slow?seconds=2")
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["backend"] == "brand_registry"


async def test_an_unreachable_backend_gives_a_503_problem_naming_it(
    make_gateway: GatewayFactory,
) -> None:
    async with (
        make_gateway(inspection_url="http://127.0.0.1:9") as gateway,
        client_of(gateway) as client,
    ):
        response = await client.get("/api/v1/spot-checks")
    assert response.status_code == 503
    assert response.json()["backend"] == "inspection"


async def test_the_breaker_opens_and_closes(
    make_gateway: GatewayFactory, backends: Backends
) -> None:
    async with httpx.AsyncClient() as direct:
        await direct.post(backends.url("stub") + "/stub-control/switch?failing=true")
        try:
            async with (
                make_gateway(
                    breaker_failure_threshold=3, breaker_reset_seconds=0.5, retry_attempts=1
                ) as gateway,
                client_of(gateway) as client,
            ):
                for _ in range(3):
                    assert (await client.get(STUB + "/switchable")).status_code == 503
                before = (await _calls(backends))["switchable"]
                fast = await client.get(STUB + "/switchable")
                assert fast.status_code == 503
                assert fast.json()["circuit_open"] is True
                assert fast.json()["backend"] == "brand_registry"
                assert "retry-after" in fast.headers
                assert (await _calls(backends))["switchable"] == before, (
                    "an open breaker calls nobody"
                )

                await asyncio.sleep(0.6)
                probe = await client.get(STUB + "/switchable")
                assert probe.status_code == 503, "a failed probe opens the breaker again"
                assert (await client.get(STUB + "/switchable")).json()["circuit_open"] is True

                await direct.post(backends.url("stub") + "/stub-control/switch?failing=false")
                await asyncio.sleep(0.6)
                assert (await client.get(STUB + "/switchable")).status_code == 200
                assert (await client.get(STUB + "/switchable")).status_code == 200
                assert gateway.state.proxy.backends["brand_registry"].breaker.state == "closed"
        finally:
            await direct.post(backends.url("stub") + "/stub-control/switch?failing=false")


async def test_cors_preflight_for_a_configured_origin(make_gateway: GatewayFactory) -> None:
    origin = "https://ui.example.gov.cn"
    async with (
        make_gateway(cors_origins=[origin]) as gateway,
        client_of(gateway, api_key=None) as client,
    ):
        preflight = await client.options(
            "/api/v1/brands",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        denied = await client.get("/api/v1/brands", headers={"Origin": origin})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == origin
        other = await client.options(
            "/api/v1/brands",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers
        # The gateway's own routes answer the front end too.
        own = await client.post("/oauth/token", headers={"Origin": origin})
        assert own.status_code == 422
        assert own.headers["access-control-allow-origin"] == origin


async def test_metrics_per_backend_and_route(admin: httpx.AsyncClient) -> None:
    await admin.get(STUB + "/echo")
    text = (await admin.get("/metrics")).text
    assert (
        'gateway_backend_requests_total{backend="brand_registry",method="GET",route="/api/v1/brands/stub/echo",status="200"}'
        in text
    )
    assert 'gateway_backend_duration_seconds_bucket{backend="brand_registry"' in text
    assert 'http_requests_total{method="GET",route="/api/v1/brands/stub/echo",status="200"}' in text


async def test_access_lines_written_after_the_answer_belong_to_their_own_request(
    admin: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    known, unknown = await asyncio.gather(
        admin.get(STUB + "/echo", headers={"X-Request-ID": "deferred-known"}),
        admin.get(STUB + "/no-such-thing/42", headers={"X-Request-ID": "deferred-unknown"}),
    )
    assert (known.status_code, unknown.status_code) == (200, 404)
    text = (await admin.get("/metrics")).text  # writes what is still queued
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    access = {line["request_id"]: line for line in lines if line.get("message") == "request"}
    assert access["deferred-known"]["route"] == STUB + "/echo"
    assert access["deferred-known"]["status"] == 200
    assert access["deferred-unknown"]["route"] == "/api/v1/brands/*"
    assert access["deferred-unknown"]["status"] == 404
    for line in (access["deferred-known"], access["deferred-unknown"]):
        assert line["client_id"] == "bootstrap-admin"
        assert line["backend"] == "brand_registry"
    assert 'route="/api/v1/brands/*",status="404"' in text


async def test_suite_health_reports_every_backend(service: Harness) -> None:
    async with client_of(service.app, api_key=None) as client:
        response = await client.get("/health")
    body = response.json()
    assert set(body["backends"]) == set(SERVICES)
    assert body["gateway"]["database"]["status"] == "ok"
    for name in ("certification", "inspection", "assessment"):
        assert body["backends"][name]["status"] == "ok", body
    assert response.status_code == 200, body


async def test_unknown_paths_stay_with_the_gateway(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/v1/brandsmore")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
