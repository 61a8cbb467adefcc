"""Reading the data services' `/stats` endpoints, and their lists of one enterprise's
records, in parallel, within a deadline.

One long-lived `httpx.AsyncClient` is opened in the app's lifespan and shared by every request.
Each call carries a token minted by this service (issuer `assessment`, audience the callee)
and the ID of the request it serves (`X-Request-ID`, so one standings request can be followed
through every service's access lines), is retried on transport errors and 502/503/504 while
the deadline allows, and ends as either a parsed body or the reason it is missing; the caller
never sees an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from assessment.schemas import Source
from assessment.settings import Settings
from kit.auth import TokenMinter
from kit.observability import current_request_id

logger = structlog.get_logger("assessment.sources")
RETRIED_STATUSES = {502, 503, 504}


@dataclass(frozen=True)
class Endpoint:
    service: str
    path: str
    scope: str


ENDPOINTS = {
    Source.brands: Endpoint("brand_registry", "/api/v1/brands/stats", "brands:read"),
    Source.certificates: Endpoint(
        "certification", "/api/v1/certificates/stats", "certificates:read"
    ),
    Source.spot_checks: Endpoint("inspection", "/api/v1/spot-checks/stats", "spot-checks:read"),
    Source.incidents: Endpoint("inspection", "/api/v1/incidents/stats", "incidents:read"),
    Source.awards: Endpoint("brand_registry", "/api/v1/awards/stats", "brands:read"),
    Source.food_dispositions: Endpoint(
        "certification", "/api/v1/food-dispositions/stats", "certificates:read"
    ),
}


class _Loose(BaseModel):
    model_config = {"extra": "allow"}


class BrandCounts(_Loose):
    new_awards: int = 0
    in_force: int = 0
    in_force_international: int = 0


class BrandGroup(BrandCounts):
    county_code: str
    tier: str


class BrandCounty(BrandCounts):
    county_code: str


class BrandTierRow(BrandCounts):
    tier: str


class BrandStats(_Loose):
    groups: list[BrandGroup]
    by_county: list[BrandCounty]
    by_tier: list[BrandTierRow] = []
    totals: BrandCounts


class CertificateCounty(_Loose):
    county_code: str
    new_certified_enterprises: int = 0


class CertificateTotals(_Loose):
    new_certified_enterprises: int = 0


class CertificateStats(_Loose):
    by_county: list[CertificateCounty]
    totals: CertificateTotals


class PassCounts(_Loose):
    checked: int = 0
    passed: int = 0
    pass_rate: float | None = None


class SpotCheckCounty(PassCounts):
    county_code: str


class SpotCheckStats(_Loose):
    by_county: list[SpotCheckCounty]
    totals: PassCounts


class _CountyRow(_Loose):
    county_code: str


class CountyStats(_Loose):
    """A `/stats` answer of the newer endpoints: rows per county and the totals."""

    by_county: list[_CountyRow]
    totals: dict[str, Any]


class IncidentCounty(_CountyRow):
    confirmed_major: int = 0
    by_kind: dict[str, int] = {}
    confirmed_major_ids: list[str] = []


class IncidentStats(CountyStats):
    by_county: list[IncidentCounty]  # type: ignore[assignment]


INCIDENT_RECORDS = "incident_records"
"""Where the body of the incident stats keeps each confirmed major incident the rows name
(id, kind, occurred_on, ...): from the stats' own `confirmed_major_records`, else read from
`GET /incidents/{id}`, so a veto's explanation names the records and a stored run keeps them."""
INCIDENT_FIELDS = (
    "id",
    "county_code",
    "kind",
    "kind_label",
    "severity",
    "severity_criterion",
    "severity_criterion_label",
    "status",
    "occurred_on",
    "title",
    "source_system",
    "source_reference",
)
MAX_INCIDENT_RECORDS = 200

LISTS = {
    Source.brands: Endpoint("brand_registry", "/api/v1/brands", "brands:read"),
    Source.certificates: Endpoint("certification", "/api/v1/certificates", "certificates:read"),
    Source.spot_checks: Endpoint("inspection", "/api/v1/spot-checks", "spot-checks:read"),
    Source.incidents: Endpoint("inspection", "/api/v1/incidents", "incidents:read"),
}
UNPUBLISHED_SCOPE = "spot-checks:read-unpublished"
"""What the assessment asks of the inspection service for a caller who may see results before
their bulletin (`include_unpublished=true`)."""
PAGE_LIMIT = 500

SHAPES: dict[Source, type[BaseModel]] = {
    Source.brands: BrandStats,
    Source.certificates: CertificateStats,
    Source.spot_checks: SpotCheckStats,
    Source.incidents: IncidentStats,
    Source.awards: CountyStats,
    Source.food_dispositions: CountyStats,
}


@dataclass(frozen=True)
class StatsQuery:
    """One `/stats` call: a source and its extra query parameters (beyond year and as_of)."""

    source: Source
    params: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        extra = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{self.source.value}?{extra}" if extra else self.source.value


@dataclass
class Fetched:
    """What one call produced: the body, or why there is none."""

    key: str
    source: str
    service: str
    query: str
    ok: bool
    body: dict[str, Any] | None
    reason: str | None
    fetched_at: str
    elapsed_ms: float
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fetched:
        return cls(**data)


@dataclass(frozen=True)
class ListQuery:
    """Every page of one list, up to `max_items` records, read as a token bound to
    `county_codes` (none: every county) carrying the list's read scope and `extra_scopes`."""

    key: str
    source: Source
    params: tuple[tuple[str, str], ...]
    max_items: int
    county_codes: frozenset[str] = frozenset()
    extra_scopes: frozenset[str] = frozenset()


@dataclass
class Listed:
    """What one list produced: its records (and whether more were left unread), or why
    there are none."""

    key: str
    source: str
    service: str
    query: str
    ok: bool
    items: list[dict[str, Any]]
    truncated: bool
    reason: str | None
    fetched_at: str
    elapsed_ms: float
    attempts: int
    pages: int


class StatsFetcher:
    """Fans `/stats` calls and list reads out to the data services in parallel."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_urls: dict[Source, str],
        minter: TokenMinter | None,
        minter_problem: str | None,
        timeout: float,
        deadline: float,
        retries: int,
        backoff: float,
    ) -> None:
        self.client = client
        self.base_urls = base_urls
        self.minter = minter
        self.minter_problem = minter_problem
        self.timeout = timeout
        self.deadline = deadline
        self.retries = retries
        self.backoff = backoff

    async def fetch_all(
        self, queries: Iterable[StatsQuery], *, year: int, as_of: date
    ) -> dict[str, Fetched]:
        """Every query's result; those unanswered within the deadline say so."""
        unique = {q.key: q for q in queries}
        started = time.monotonic()
        request_id = current_request_id()
        tasks = {
            key: asyncio.create_task(
                self._fetch(query, year=year, as_of=as_of, started=started, request_id=request_id)
            )
            for key, query in unique.items()
        }
        results: dict[str, Fetched] = {}
        if tasks:
            await asyncio.wait(tasks.values(), timeout=self.deadline)
        for key, task in tasks.items():
            if task.done():
                results[key] = task.result()
                continue
            task.cancel()
            query = unique[key]
            results[key] = self._failure(
                query,
                self._url(query, year, as_of),
                f"timeout: no answer within the deadline of {self.deadline:g} s",
                started,
                attempts=0,
            )
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return results

    def _url(self, query: StatsQuery, year: int, as_of: date) -> str:
        endpoint = ENDPOINTS[query.source]
        params = httpx.QueryParams(
            [("year", str(year)), ("as_of", as_of.isoformat()), *query.params]
        )
        return f"{self.base_urls[query.source].rstrip('/')}{endpoint.path}?{params}"

    async def _fetch(
        self,
        query: StatsQuery,
        *,
        year: int,
        as_of: date,
        started: float,
        request_id: str | None,
    ) -> Fetched:
        endpoint = ENDPOINTS[query.source]
        url = self._url(query, year, as_of)
        if self.minter is None:
            return self._failure(query, url, self.minter_problem or "no service key", started, 0)
        response, reason, attempts = await self._get(
            url, audience=endpoint.service, scopes={endpoint.scope}, request_id=request_id
        )
        if response is None:
            return self._failure(query, url, reason, started, attempts)
        fetched = self._parse(query, url, response, started, attempts)
        if query.source is Source.incidents and fetched.body is not None:
            await self._add_incident_records(fetched.body, request_id)
        return fetched

    async def _add_incident_records(self, body: dict[str, Any], request_id: str | None) -> None:
        """Each confirmed major incident the rows name, under `incident_records`: as the stats
        give it in `confirmed_major_records`, else read from `GET /incidents/{id}` (or its id
        and why it could not be read)."""
        ids = list(
            dict.fromkeys(
                i for row in body["by_county"] for i in row.get("confirmed_major_ids", [])
            )
        )[:MAX_INCIDENT_RECORDS]
        given = {
            str(r["id"]): {k: r[k] for k in INCIDENT_FIELDS if k in r}
            for r in body.get("confirmed_major_records") or []
            if isinstance(r, dict) and "id" in r
        }
        if all(i in given for i in ids):
            body[INCIDENT_RECORDS] = [given[i] for i in ids]
            return
        endpoint = LISTS[Source.incidents]
        base = f"{self.base_urls[Source.incidents].rstrip('/')}{endpoint.path}"

        async def one(incident_id: str) -> dict[str, Any]:
            response, reason, _ = await self._get(
                f"{base}/{quote(incident_id, safe='')}",
                audience=endpoint.service,
                scopes={endpoint.scope},
                request_id=request_id,
            )
            if response is None:
                return {"id": incident_id, "unavailable": reason}
            try:
                record = response.json()
            except ValueError:
                return {"id": incident_id, "unavailable": "unexpected response"}
            kept = {k: record[k] for k in INCIDENT_FIELDS if k in record}
            return {**kept, "id": incident_id}

        body[INCIDENT_RECORDS] = list(await asyncio.gather(*(one(i) for i in ids)))

    async def _get(
        self,
        url: str,
        *,
        audience: str,
        scopes: set[str],
        request_id: str | None,
        county_codes: frozenset[str] = frozenset(),
    ) -> tuple[httpx.Response | None, str, int]:
        """GET `url` with a fresh token each attempt, retried on transport errors and
        502/503/504 while the retries last: the 200 answer (or None and why) and the attempts."""
        assert self.minter is not None
        attempts = 0
        while True:
            attempts += 1
            token = self.minter.mint(
                audience=audience,
                client_id="assessment",
                client_name="Assessment service",
                scopes=scopes,
                county_codes=county_codes,
            )
            headers = {"Authorization": f"Bearer {token}"}
            if request_id:
                headers["X-Request-ID"] = request_id
            try:
                response = await self.client.get(url, headers=headers, timeout=self.timeout)
            except httpx.TimeoutException:
                reason = f"timeout: no answer within {self.timeout:g} s"
            except httpx.TransportError as exc:
                reason = f"unreachable: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    return response, "", attempts
                reason = f"HTTP {response.status_code}: {_problem_detail(response)}"
                if response.status_code not in RETRIED_STATUSES:
                    return None, reason, attempts
            if attempts > self.retries:
                return None, reason, attempts
            await asyncio.sleep(self.backoff * 2 ** (attempts - 1))

    async def list_all(self, queries: Iterable[ListQuery]) -> dict[str, Listed]:
        """Every list's records, all read in parallel within the deadline; a list unread by
        then (or failing on any page) says why and holds no records."""
        unique = {q.key: q for q in queries}
        started = time.monotonic()
        request_id = current_request_id()
        tasks = {
            key: asyncio.create_task(self._list(query, started=started, request_id=request_id))
            for key, query in unique.items()
        }
        if tasks:
            await asyncio.wait(tasks.values(), timeout=self.deadline)
        results: dict[str, Listed] = {}
        for key, task in tasks.items():
            if task.done():
                results[key] = task.result()
                continue
            task.cancel()
            results[key] = _listed(
                unique[key],
                started,
                attempts=0,
                pages=0,
                reason=f"timeout: no answer within the deadline of {self.deadline:g} s",
            )
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return results

    async def _list(self, query: ListQuery, *, started: float, request_id: str | None) -> Listed:
        if self.minter is None:
            reason = self.minter_problem or "no service key"
            return _listed(query, started, attempts=0, pages=0, reason=reason)
        endpoint = LISTS[query.source]
        base = f"{self.base_urls[query.source].rstrip('/')}{endpoint.path}"
        limit = str(min(PAGE_LIMIT, query.max_items + 1))
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        attempts = pages = 0
        while True:
            params = (*query.params, ("limit", limit), *((("cursor", cursor),) if cursor else ()))
            response, reason, tries = await self._get(
                f"{base}?{httpx.QueryParams(params)}",
                audience=endpoint.service,
                scopes={endpoint.scope, *query.extra_scopes},
                request_id=request_id,
                county_codes=query.county_codes,
            )
            attempts += tries
            if response is None:
                return _listed(query, started, attempts=attempts, pages=pages, reason=reason)
            pages += 1
            try:
                page = _ListPage.model_validate(response.json())
                for item in page.items:
                    RECORD_SHAPES[query.source].model_validate(item)
            except (ValueError, ValidationError) as exc:
                reason = f"unexpected response: {str(exc).splitlines()[0][:200]}"
                return _listed(query, started, attempts=attempts, pages=pages, reason=reason)
            items.extend(page.items)
            cursor = page.next_cursor
            if len(items) > query.max_items or (cursor and len(items) == query.max_items):
                return _listed(
                    query,
                    started,
                    attempts=attempts,
                    pages=pages,
                    items=items[: query.max_items],
                    truncated=True,
                )
            if not cursor:
                return _listed(query, started, attempts=attempts, pages=pages, items=items)

    def _parse(
        self, query: StatsQuery, url: str, response: httpx.Response, started: float, attempts: int
    ) -> Fetched:
        try:
            body = response.json()
            SHAPES[query.source].model_validate(body)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0][:200]
            return self._failure(query, url, f"unexpected response: {first}", started, attempts)
        return _fetched(query, url, started, attempts, body=body)

    def _failure(
        self, query: StatsQuery, url: str, reason: str, started: float, attempts: int
    ) -> Fetched:
        logger.warning("stats_unavailable", source=query.source.value, reason=reason)
        return _fetched(query, url, started, attempts, reason=reason)


def _fetched(
    query: StatsQuery,
    url: str,
    started: float,
    attempts: int,
    *,
    body: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Fetched:
    """What one call produced: its parsed `body`, or the `reason` it has none."""
    return Fetched(
        key=query.key,
        source=query.source.value,
        service=ENDPOINTS[query.source].service,
        query=_described(url),
        ok=body is not None,
        body=body,
        reason=reason,
        fetched_at=_now(),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        attempts=attempts,
    )


class _Record(_Loose):
    id: str
    enterprise_credit_code: str
    enterprise_name: str
    county_code: str


class _Listing(_Record):
    product_name: str
    tier: str
    status: str
    awarded_on: date
    valid_until: date


class _Certificate(_Record):
    status: str
    issued_on: date
    expires_on: date


class _SpotCheck(_Record):
    sampled_on: date
    reinspection_of: str | None = None
    final_result: str | None = None


RECORD_SHAPES: dict[Source, type[_Record]] = {
    Source.brands: _Listing,
    Source.certificates: _Certificate,
    Source.spot_checks: _SpotCheck,
}
"""The fields of each list's records the enterprise view relies on."""


class _ListPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


def _listed(
    query: ListQuery,
    started: float,
    *,
    attempts: int,
    pages: int,
    items: list[dict[str, Any]] | None = None,
    truncated: bool = False,
    reason: str | None = None,
) -> Listed:
    """What one list produced: its `items`, or the `reason` it has none."""
    if reason is not None:
        logger.warning("list_unavailable", source=query.source.value, reason=reason)
    endpoint = LISTS[query.source]
    return Listed(
        key=query.key,
        source=query.source.value,
        service=endpoint.service,
        query=f"GET {endpoint.path}?{httpx.QueryParams(query.params)}",
        ok=reason is None,
        items=(items or []) if reason is None else [],
        truncated=truncated,
        reason=reason,
        fetched_at=_now(),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        attempts=attempts,
        pages=pages,
    )


def _problem_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or response.reason_phrase or "error")[:200]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _load_minter(settings: Settings) -> tuple[TokenMinter | None, str | None]:
    path = settings.service_private_key_file
    try:
        pem = path.read_bytes()
    except OSError:
        return None, f"no service key: {path} cannot be read"
    return TokenMinter(
        pem, issuer="assessment", ttl_seconds=settings.service_token_ttl_seconds
    ), None


@asynccontextmanager
async def stats_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the shared client for the app's lifetime; `app.state.stats_transport` may replace
    the network (tests)."""
    settings: Settings = app.state.settings
    minter, problem = _load_minter(settings)
    if problem:
        logger.warning("service_key_missing", reason=problem)
    transport = getattr(app.state, "stats_transport", None)
    limits = httpx.Limits(
        max_connections=settings.stats_max_connections,
        max_keepalive_connections=settings.stats_max_connections,
    )
    async with httpx.AsyncClient(
        transport=transport, timeout=settings.stats_timeout_seconds, limits=limits
    ) as client:
        app.state.stats_fetcher = StatsFetcher(
            client=client,
            base_urls={
                Source.brands: settings.brand_registry_url,
                Source.certificates: settings.certification_url,
                Source.spot_checks: settings.inspection_url,
                Source.incidents: settings.inspection_url,
                Source.awards: settings.brand_registry_url,
                Source.food_dispositions: settings.certification_url,
            },
            minter=minter,
            minter_problem=problem,
            timeout=settings.stats_timeout_seconds,
            deadline=settings.stats_deadline_seconds,
            retries=settings.stats_retries,
            backoff=settings.stats_retry_backoff_seconds,
        )
        yield


def _described(url: str) -> str:
    """The request as provenance shows it: method, path and query, never the internal host."""
    return f"GET {httpx.URL(url).raw_path.decode('ascii')}"
