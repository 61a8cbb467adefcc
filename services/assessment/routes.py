"""HTTP routes of the assessment service."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from assessment import repository, service
from assessment.dependencies import (
    ActorDep,
    DefaultsDep,
    FetcherDep,
    Publisher,
    Reader,
    RegionsDep,
    TodayDep,
    Writer,
    Year,
)
from assessment.schemas import (
    KEY_PATTERN,
    AuditEntryRead,
    CountyStandingRead,
    ReferenceValueRead,
    ReferenceValueWrite,
    Region,
    ReportedValueCreate,
    ReportedValueRead,
    RunCreate,
    RunRead,
    RunSummary,
    StandingsRead,
    TargetSetRead,
    TargetSetSummary,
    TargetSetWrite,
)
from assessment.standings import explain, strip_explanations
from kit.db import SessionDep
from kit.errors import NotFound, ValidationFailed
from kit.identifiers import county_code_error
from kit.pagination import Cursor, CursorCodec, Limit, Page, page_of, query_fingerprint

router = APIRouter(prefix="/api/v1")
IfMatch = Annotated[str | None, Header(alias="If-Match")]
ReferenceKey = Annotated[str, Path(pattern=KEY_PATTERN)]
FilterYear = Annotated[int | None, Query(ge=1990, le=2100)]


def _codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.app.state.cursor_codec
    return codec


def _after(request: Request, cursor: str | None, fingerprint: str) -> list[Any] | None:
    return _codec(request).decode(cursor, fingerprint) if cursor else None


@router.get("/regions", tags=["regions"], summary="The configured counties and districts")
async def list_regions(_: Reader, regions: RegionsDep) -> Page[Region]:
    return Page[Region](items=[Region(**r) for r in regions])


@router.get("/target-sets", tags=["target sets"], summary="Every year's target-set versions")
async def list_target_sets(
    request: Request,
    session: SessionDep,
    _: Reader,
    year: FilterYear = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TargetSetSummary]:
    fingerprint = query_fingerprint({"year": year})
    after = _after(request, cursor, fingerprint)
    rows = await repository.list_target_sets(
        session=session,
        year=year,
        after=(int(after[0]), int(after[1])) if after else None,
        limit=limit + 1,
    )
    latest = await repository.latest_versions(session=session, years=list({r.year for r in rows}))
    frozen = await repository.frozen_target_set_ids(session=session, ids=[r.id for r in rows])
    items = [
        TargetSetSummary(
            year=r.year,
            version=r.version,
            reason=r.reason,
            current=latest.get(r.year) == r.version,
            frozen=r.id in frozen,
            indicator_count=len(r.document.get("indicators", [])),
            created_at=r.created_at,
            created_by=r.created_by,
        )
        for r in rows
    ]
    return page_of(
        items,
        limit=limit,
        codec=_codec(request),
        fingerprint=fingerprint,
        key=lambda s: [s.year, s.version],
    )


@router.get("/target-sets/{year}", tags=["target sets"], summary="A year's target set")
async def get_target_set(
    year: Year,
    session: SessionDep,
    _: Reader,
    response: Response,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the current one")
    ] = None,
) -> TargetSetRead:
    row, frozen = await service.get_target_set(session=session, year=year, version=version)
    response.headers["ETag"] = service.target_set_etag(row)
    return service.target_set_read(row, frozen=frozen)


@router.put(
    "/target-sets/{year}",
    tags=["target sets"],
    summary="Create or change a year's target set (a new version once frozen)",
    responses={201: {"description": "A new version was created"}},
)
async def put_target_set(
    year: Year,
    body: TargetSetWrite,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    regions: RegionsDep,
    response: Response,
    if_match: IfMatch = None,
) -> TargetSetRead:
    row, created = await service.put_target_set(
        session=session,
        year=year,
        body=body,
        actor=actor,
        known_counties={r["code"] for r in regions},
        if_match=if_match,
    )
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/api/v1/target-sets/{year}?version={row.version}"
    response.headers["ETag"] = service.target_set_etag(row)
    return service.target_set_read(row, frozen=False)


@router.post(
    "/reported-values", status_code=201, tags=["reported values"], summary="Report a value"
)
async def create_reported_value(
    body: ReportedValueCreate,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    regions: RegionsDep,
    today: TodayDep,
    response: Response,
) -> ReportedValueRead:
    row = await service.report_value(
        session=session,
        body=body,
        actor=actor,
        known_counties={r["code"] for r in regions},
        today=today,
    )
    response.headers["Location"] = f"/api/v1/reported-values/{row.id}"
    return ReportedValueRead.model_validate(service.reported_value_dict(row))


@router.get("/reported-values", tags=["reported values"], summary="Reported values")
async def list_reported_values(
    request: Request,
    session: SessionDep,
    _: Reader,
    county_code: Annotated[str | None, Query(max_length=6)] = None,
    year: FilterYear = None,
    indicator: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    current: Annotated[bool | None, Query(description="only current (or superseded)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReportedValueRead]:
    if county_code is not None and (problem := county_code_error(county_code)):
        raise ValidationFailed.single("county_code", problem)
    filters = {"county_code": county_code, "year": year, "indicator": indicator, "current": current}
    fingerprint = query_fingerprint(filters)
    after = _after(request, cursor, fingerprint)
    rows = await repository.list_reported_values(
        session=session,
        county_code=county_code,
        year=year,
        indicator=indicator,
        current=current,
        after=str(after[0]) if after else None,
        limit=limit + 1,
    )
    items = [ReportedValueRead.model_validate(service.reported_value_dict(r)) for r in rows]
    return page_of(
        items, limit=limit, codec=_codec(request), fingerprint=fingerprint, key=lambda v: [v.id]
    )


@router.get("/reported-values/{value_id}", tags=["reported values"], summary="One reported value")
async def get_reported_value(value_id: str, session: SessionDep, _: Reader) -> ReportedValueRead:
    row = await service.get_reported_value(session=session, value_id=value_id)
    return ReportedValueRead.model_validate(service.reported_value_dict(row))


@router.get("/reference-values", tags=["reference values"], summary="Reference values")
async def list_reference_values(
    request: Request,
    session: SessionDep,
    _: Reader,
    year: FilterYear = None,
    key: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReferenceValueRead]:
    fingerprint = query_fingerprint({"year": year, "key": key})
    after = _after(request, cursor, fingerprint)
    rows = await repository.list_reference_values(
        session=session,
        year=year,
        key=key,
        after=str(after[0]) if after else None,
        limit=limit + 1,
    )
    items = [ReferenceValueRead.model_validate(service.reference_value_dict(r)) for r in rows]
    return page_of(
        items, limit=limit, codec=_codec(request), fingerprint=fingerprint, key=lambda v: [v.id]
    )


@router.get(
    "/reference-values/{year}/{key}", tags=["reference values"], summary="One reference value"
)
async def get_reference_value(
    year: Year, key: ReferenceKey, session: SessionDep, _: Reader
) -> ReferenceValueRead:
    row = await service.get_reference_value(session=session, year=year, key=key)
    return ReferenceValueRead.model_validate(service.reference_value_dict(row))


@router.put(
    "/reference-values/{year}/{key}",
    tags=["reference values"],
    summary="Set a reference value",
    responses={201: {"description": "Created"}},
)
async def put_reference_value(
    year: Year,
    key: ReferenceKey,
    body: ReferenceValueWrite,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    response: Response,
) -> ReferenceValueRead:
    row, created = await service.put_reference_value(
        session=session, year=year, key=key, body=body, actor=actor
    )
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/api/v1/reference-values/{year}/{key}"
    return ReferenceValueRead.model_validate(service.reference_value_dict(row))


@router.get(
    "/assessments/{year}/standings",
    response_model=StandingsRead,
    tags=["standings"],
    summary="Every county's standing and the city roll-up, computed now",
)
async def get_standings(
    year: Year,
    session: SessionDep,
    _: Reader,
    fetcher: FetcherDep,
    regions: RegionsDep,
    defaults: DefaultsDep,
    today: TodayDep,
    as_of: Annotated[date | None, Query(description="default: today, or 31 December")] = None,
) -> dict[str, Any]:
    result = await service.standings(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        regions=regions,
        defaults=defaults,
    )
    return strip_explanations(result)


@router.get(
    "/assessments/{year}/standings/{county_code}",
    response_model=CountyStandingRead,
    tags=["standings"],
    summary="One county's standing with every figure explained",
)
async def get_county_standing(
    year: Year,
    county_code: str,
    session: SessionDep,
    _: Reader,
    fetcher: FetcherDep,
    regions: RegionsDep,
    defaults: DefaultsDep,
    today: TodayDep,
    as_of: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    if problem := county_code_error(county_code):
        raise ValidationFailed.single("county_code", problem)
    if county_code not in {r["code"] for r in regions}:
        raise NotFound(f"{county_code} is not one of the configured counties and districts.")
    result = await service.standings(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        regions=regions,
        defaults=defaults,
    )
    explained = explain(result, county_code)
    assert explained is not None
    return explained


def _run_read(run: Any) -> RunRead:
    return RunRead(**service.run_summary(run), standings=run.standings, inputs=run.inputs)


@router.post(
    "/assessments/{year}/runs",
    status_code=201,
    tags=["runs"],
    summary="Compute and store the standings with their inputs",
)
async def create_run(
    year: Year,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    fetcher: FetcherDep,
    regions: RegionsDep,
    defaults: DefaultsDep,
    today: TodayDep,
    response: Response,
    body: RunCreate | None = None,
) -> RunRead:
    run = await service.create_run(
        session=session,
        fetcher=fetcher,
        year=year,
        body=body or RunCreate(),
        actor=actor,
        today=today,
        regions=regions,
        defaults=defaults,
    )
    response.headers["Location"] = f"/api/v1/assessments/{year}/runs/{run.id}"
    response.headers["ETag"] = service.run_etag(run)
    return _run_read(run)


@router.get("/assessments/{year}/runs", tags=["runs"], summary="The year's runs")
async def list_runs(
    year: Year,
    request: Request,
    session: SessionDep,
    _: Reader,
    status: Annotated[str | None, Query(pattern="^(draft|published)$")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunSummary]:
    fingerprint = query_fingerprint({"year": year, "status": status})
    after = _after(request, cursor, fingerprint)
    rows = await repository.list_runs(
        session=session,
        year=year,
        status=status,
        after=str(after[0]) if after else None,
        limit=limit + 1,
    )
    items = [RunSummary(**service.run_summary(r)) for r in rows]
    return page_of(
        items, limit=limit, codec=_codec(request), fingerprint=fingerprint, key=lambda r: [r.id]
    )


@router.get("/assessments/{year}/runs/{run_id}", tags=["runs"], summary="One run")
async def get_run(
    year: Year, run_id: str, session: SessionDep, _: Reader, response: Response
) -> RunRead:
    run = await service.get_run(session=session, year=year, run_id=run_id)
    response.headers["ETag"] = service.run_etag(run)
    return _run_read(run)


@router.post(
    "/assessments/{year}/runs/{run_id}/publish",
    tags=["runs"],
    summary="Freeze a run (refused while any source is incomplete)",
)
async def publish_run(
    year: Year,
    run_id: str,
    session: SessionDep,
    _: Publisher,
    actor: ActorDep,
    response: Response,
    if_match: IfMatch = None,
) -> RunRead:
    run = await service.get_run(session=session, year=year, run_id=run_id)
    run = await service.publish_run(session=session, run=run, actor=actor, if_match=if_match)
    response.headers["ETag"] = service.run_etag(run)
    return _run_read(run)


@router.get("/audit-entries", tags=["audit"], summary="The append-only log of changes")
async def list_audit_entries(
    request: Request,
    session: SessionDep,
    _: Reader,
    entity: Annotated[
        str | None, Query(pattern="^(target_set|reported_value|reference_value|run)$")
    ] = None,
    entity_id: Annotated[str | None, Query(max_length=80)] = None,
    year: FilterYear = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEntryRead]:
    fingerprint = query_fingerprint({"entity": entity, "entity_id": entity_id, "year": year})
    after = _after(request, cursor, fingerprint)
    rows = await repository.list_audit_entries(
        session=session,
        entity=entity,
        entity_id=entity_id,
        year=year,
        after=str(after[0]) if after else None,
        limit=limit + 1,
    )
    items = [AuditEntryRead.model_validate(r, from_attributes=True) for r in rows]
    return page_of(
        items, limit=limit, codec=_codec(request), fingerprint=fingerprint, key=lambda e: [e.id]
    )
