"""The gateway app, built by the kit's factory, with the proxy in front of its FastAPI stack."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import service
from gateway.auth import Authenticator, FailureThrottle, ServiceTokens, load_signing_key
from gateway.delivery import WebhookMetrics, webhooks_lifespan
from gateway.openapi import MergedSpec
from gateway.proxy import Backend, Forwarder, ProxyContext, ProxyMetrics
from gateway.ratelimit import RateLimiter
from gateway.revocations import RevocationBus
from gateway.routes import public, router
from gateway.routing import API_PREFIX, BACKEND_RESOURCES, match_prefix
from gateway.settings import Settings
from gateway.ui import router as ui_router
from gateway.webhook_routes import admin_webhooks, own_webhooks
from kit.app import ServiceSpec, create_app
from kit.auth import TokenMinter

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "gateway_alembic_version"
_FASTAPI_DOC_ROUTES = {
    "/openapi.json",
    "/docs",
    "/docs/openapi.json",
    "/docs/oauth2-redirect",
    "/redoc",
}


@asynccontextmanager
async def proxy_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the backends' pooled sessions and the gateway's stores for the app's lifetime."""
    settings: Settings = app.state.settings
    backends = {name: Backend(name, url, settings) for name, url in settings.backend_urls().items()}
    minter = TokenMinter(
        load_signing_key(settings.token_private_key_file),
        issuer=settings.token_issuer,
        ttl_seconds=settings.service_token_ttl_seconds,
    )
    limiter = RateLimiter(
        redis_url=settings.redis_url,
        prefix=settings.rate_limit_prefix,
        timeout=settings.redis_timeout_seconds,
        retry_seconds=settings.redis_retry_seconds,
        metrics=app.state.proxy_metrics.rate_limit,
    )
    authenticator = Authenticator(
        throttle=FailureThrottle(
            limiter,
            per_address=settings.auth_failures_per_address,
            per_client=settings.auth_failures_per_client,
            metrics=app.state.proxy_metrics.auth,
        ),
        sessionmaker=app.state.sessionmaker,
        cache_seconds=settings.auth_cache_seconds,
        oauth_private_pem=load_signing_key(settings.oauth_private_key_file),
        oauth_issuer=settings.oauth_issuer,
        oauth_audience=settings.oauth_audience,
        oauth_ttl_seconds=settings.oauth_token_ttl_seconds,
    )
    app.state.ready_checks["rate_limits"] = limiter.status
    revocations = RevocationBus(
        redis_url=settings.redis_url,
        prefix=settings.rate_limit_prefix,
        on_revocation=authenticator.forget,
        timeout=settings.redis_timeout_seconds,
    )
    app.state.proxy = ProxyContext(
        settings=settings,
        backends=backends,
        authenticator=authenticator,
        limiter=limiter,
        service_tokens=ServiceTokens(minter, BACKEND_RESOURCES),
        metrics=app.state.proxy_metrics,
        revocations=revocations,
        deferred=app.state.deferred,
        region_codes=settings.region_codes(),
    )
    if settings.bootstrap_admin_key is not None:
        await bootstrap_admin(
            app.state.sessionmaker,
            api_key=settings.bootstrap_admin_key.get_secret_value(),
            rate_limit=settings.bootstrap_admin_rate_limit,
        )
    timeout = httpx.Timeout(settings.health_timeout_seconds, pool=settings.pool_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout) as client:
        app.state.service_client = client
        app.state.merged_spec = MergedSpec(
            gateway_spec=lambda: _own_spec(app),
            backends=settings.backend_urls(),
            client=client,
            ttl_seconds=settings.openapi_cache_seconds,
        )
        for backend in backends.values():
            await backend.open()
        await revocations.start()
        try:
            yield
        finally:
            for backend in backends.values():
                await backend.close()
            await limiter.close()
            await revocations.close()


async def bootstrap_admin(
    sessionmaker: async_sessionmaker[AsyncSession], *, api_key: str, rate_limit: str
) -> None:
    """The bootstrap administrator's key in a transaction of its own (safe on replicas)."""
    async with sessionmaker() as session:
        try:
            await service.ensure_bootstrap_admin(
                session=session, api_key=api_key, rate_limit=rate_limit
            )
            await session.commit()
        except IntegrityError:
            # Another replica bootstrapped the same key at the same moment.
            await session.rollback()


def _own_spec(app: FastAPI) -> dict[str, Any]:
    document: dict[str, Any] = app.openapi()
    return document


class GatewayApp(FastAPI):
    """The gateway's own routes in FastAPI; every backend path goes to the `Forwarder`.

    A forwarded request meets only CORS (when front-end origins are configured) and the
    forwarder; FastAPI's middleware, exception handlers and router serve the gateway's own
    routes. FastAPI's OpenTelemetry hook is off: it looks up the global providers on every
    request, and the gateway reports through its Prometheus metrics and access log.
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("telemetry", {"tracing": False, "metrics": False, "logs": False})
        super().__init__(**options)
        self._forwarded: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            prefix = match_prefix(scope["path"])
            if prefix is not None:
                scope["gateway.prefix"] = prefix
                if self._forwarded is None:
                    forwarder = Forwarder(
                        self.state, metrics=self.state.metrics, deferred=self.state.deferred
                    )
                    self._forwarded = self._with_cors(forwarder)
                await self._forwarded(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        return self._with_cors(super().build_middleware_stack())

    def _with_cors(self, app: ASGIApp) -> ASGIApp:
        settings: Settings = self.state.settings
        if not settings.cors_origins:
            return app
        return CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=[
                "Location",
                "ETag",
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )


SPEC = ServiceSpec(
    name="gateway",
    title="Quality Revitalization Platform gateway",
    description="The public entry point: API clients, keys and scopes in front of the four "
    "services, the merged change feed and webhooks.",
    version="1.0.0",
    routers=[router, admin_webhooks, own_webhooks, public, ui_router],
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    # Idempotency-Key travels on to the services, which keep the records.
    idempotency_table=None,
    lifespan_hooks=[proxy_lifespan, webhooks_lifespan],
    app_class=GatewayApp,
)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (`uvicorn --factory gateway.app:build_app`)."""
    settings = settings or Settings()
    app = create_app(SPEC, settings)
    # The merged document replaces FastAPI's own at /openapi.json and /docs; the kit's
    # Swagger UI assets at /docs/static stay, for the gateway's page.
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if getattr(route, "path", None) not in _FASTAPI_DOC_ROUTES
    ]
    app.state.proxy_metrics = ProxyMetrics(app.state.metrics.registry)
    app.state.webhook_metrics = WebhookMetrics(app.state.metrics.registry)
    return app
