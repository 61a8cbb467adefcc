"""HTTP routes of the inspection service."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from inspection import alerts, bulk, service
from inspection.dependencies import (
    CatalogueDep,
    EmbargoDep,
    FiltersDep,
    Reader,
    RequestIdDep,
    SettingsDep,
    SpotCheckDep,
    TodayDep,
    WritableSpotCheckDep,
    Writer,
    embargo_of,
    may_read,
    unpublished_allowed,
)
from inspection.schemas import (
    IMPORT_ENUMS,
    IMPORT_EXAMPLE,
    LABELS,
    Level,
    OverdueEquipment,
    ProgrammeStats,
    RepeatedFailures,
    SpotCheckCreate,
    SpotCheckHistoryList,
    SpotCheckRead,
    SpotCheckUpdate,
)
from kit.concurrency import IfMatch
from kit.csvio import csv_response
from kit.db import EngineDep, SessionDep
from kit.downloads import content_disposition
from kit.hotpaths import HotAnswer, HotRequest, HotRoute
from kit.identifiers import CountyCode
from kit.pagination import Page, PageParamsDep
from kit.schemas import IMPORT_ROUTE_DOCS
from kit.xlsxio import (
    TEMPLATE_RESPONSES,
    XLSX_EXPORT_RESPONSES,
    XLSX_MEDIA_TYPE,
    Column,
    FormatQuery,
    SheetQuery,
    receive_upload,
    template_response,
    wants_xlsx,
    xlsx_response,
)

router = APIRouter(prefix="/api/v1", tags=["spot-checks"])

EXPORT_COLUMNS = [Column(name, LABELS[name]) for name in bulk.EXPORT_COLUMNS]
IMPORT_COLUMNS = [Column(name, LABELS[name]) for name in service.RECORDED_FIELDS]


async def _nudge_outbox(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


@router.post("/spot-checks", status_code=201, summary="Record a spot-check or a re-inspection")
async def create_spot_check(
    body: SpotCheckCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    embargo: EmbargoDep,
    request_id: RequestIdDep,
    background: BackgroundTasks,
    settings: SettingsDep,
) -> SpotCheckRead:
    spot_check = await service.create_spot_check(
        session=session,
        body=body,
        principal=principal,
        catalogue=catalogue,
        today=today,
        request_id=request_id,
        timezone=settings.timezone,
    )
    response.headers["Location"] = f"/api/v1/spot-checks/{spot_check.id}"
    response.headers["ETag"] = service.etag_of(spot_check)
    background.add_task(_nudge_outbox, request)
    return service.to_read(spot_check, catalogue=catalogue, embargo=embargo)


@router.get("/spot-checks", summary="List spot-checks")
async def list_spot_checks(
    engine: EngineDep,
    filters: FiltersDep,
    page: PageParamsDep,
    catalogue: CatalogueDep,
    today: TodayDep,
) -> Page[SpotCheckRead]:
    return await service.list_spot_checks(
        engine=engine, filters=filters, page=page, catalogue=catalogue, today=today
    )


@router.get(
    "/spot-checks/stats",
    summary="A programme's stats: pass rates after re-inspections (product quality, food"
    " safety), instruments checked (metrology), items overdue (special equipment)",
)
async def spot_check_stats(
    engine: EngineDep,
    principal: Reader,
    catalogue: CatalogueDep,
    today: TodayDep,
    year: Annotated[int, Query(ge=1990, le=2100)],
    county_code: CountyCode | None = None,
    levels: Annotated[
        str | None, Query(max_length=100, description="Comma-separated, e.g. national,provincial")
    ] = None,
    as_of: date | None = None,
    include_unpublished: bool = False,
    programme: Annotated[
        str | None, Query(max_length=32, description="One programme; default product_quality")
    ] = None,
) -> ProgrammeStats:
    query = service.StatsQuery(
        year=year,
        as_of=as_of,
        levels=service.parse_levels(levels),
        county_code=county_code,
        include_unpublished=unpublished_allowed(principal, include_unpublished),
        counties=principal.readable_counties(),
    )
    return await service.programme_stats(
        engine=engine,
        programme=service.parse_programme(programme),
        query=query,
        catalogue=catalogue,
        today=today,
    )


@router.post(
    "/spot-checks/import",
    summary="Import spot-checks from CSV or XLSX (all rows or none)",
    **IMPORT_ROUTE_DOCS,
)
async def import_spot_checks(
    request: Request,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    request_id: RequestIdDep,
    background: BackgroundTasks,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> JSONResponse:
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report: dict[str, Any] = await bulk.import_spot_checks(
            session=session,
            upload=upload,
            catalogue=catalogue,
            today=today,
            principal=principal,
            dry_run=dry_run,
            batch_size=settings.import_batch_size,
            request_id=request_id,
            timezone=settings.timezone,
        )
    background.add_task(_nudge_outbox, request)
    return JSONResponse(report, status_code=200 if dry_run else 201, background=background)


@router.get(
    "/spot-checks/import/template.xlsx",
    summary="The XLSX import template: labelled header, an example row, enum lists",
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def import_template(principal: Reader) -> StreamingResponse:
    return template_response(
        "spot-checks-import-template.xlsx",
        IMPORT_COLUMNS,
        [IMPORT_EXAMPLE[name] for name in service.RECORDED_FIELDS],
        enums=IMPORT_ENUMS,
    )


@router.get(
    "/spot-checks/export",
    summary="Stream spot-checks as CSV or XLSX",
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_spot_checks(
    request: Request, filters: FiltersDep, today: TodayDep, format: FormatQuery = None
) -> StreamingResponse:
    xlsx = wants_xlsx(request, format)
    rows = bulk.export_rows(
        sessionmaker=request.app.state.sessionmaker, filters=filters, today=today, typed=xlsx
    )
    if xlsx:
        return xlsx_response("spot-checks.xlsx", EXPORT_COLUMNS, rows)
    return csv_response("spot-checks.csv", bulk.EXPORT_COLUMNS, rows)


def _bulletin_query(
    plan_code: Annotated[str, Query(min_length=1, max_length=64, description="the plan's code")],
    level: Annotated[Level, Query(description="the level of the checks")],
    programme: Annotated[
        str | None,
        Query(max_length=200, description="Comma-separated programmes (default: any)"),
    ] = None,
) -> tuple[str, Level, frozenset[str] | None]:
    return plan_code, level, service.parse_programmes(programme)


BulletinQuery = Annotated[tuple[str, Level, frozenset[str] | None], Depends(_bulletin_query)]


@router.get(
    "/spot-checks/bulletin.pdf",
    summary="The bulletin (抽查結果公告) of a plan and level as an A4 PDF: the checks published"
    " by today, each enterprise, product, result and nonconforming item",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def bulletin_pdf(
    session: SessionDep,
    principal: Reader,
    today: TodayDep,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    query: BulletinQuery,
) -> Response:
    plan_code, level, programmes = query
    checks = await service.bulletin_checks(
        session=session,
        plan_code=plan_code,
        level=level,
        today=today,
        principal=principal,
        programmes=programmes,
    )
    pdf = await service.bulletin_pdf(
        checks, plan_code=plan_code, level=level, catalogue=catalogue, font=settings.report_font
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"抽查結果公告-{plan_code}.pdf")},
    )


@router.get(
    "/spot-checks/bulletin.xlsx",
    summary="The bulletin of a plan and level as a workbook",
    response_class=Response,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def bulletin_xlsx(
    session: SessionDep,
    principal: Reader,
    today: TodayDep,
    catalogue: CatalogueDep,
    query: BulletinQuery,
) -> Response:
    plan_code, level, programmes = query
    checks = await service.bulletin_checks(
        session=session,
        plan_code=plan_code,
        level=level,
        today=today,
        principal=principal,
        programmes=programmes,
    )
    return Response(
        service.bulletin_xlsx(checks, plan_code=plan_code, level=level, catalogue=catalogue),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(f"抽查結果公告-{plan_code}.xlsx")},
    )


@router.get(
    "/spot-checks/overdue-equipment",
    summary="Special-equipment items whose periodic inspection is overdue",
)
async def overdue_equipment(
    session: SessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    today: TodayDep,
    page: PageParamsDep,
    as_of: Annotated[date | None, Query(description="The day asked about (default today).")] = None,
    county_code: CountyCode | None = None,
    include_unpublished: bool = False,
) -> Page[OverdueEquipment]:
    """Each registered item (distinct equipment code) whose latest inspection by `as_of`
    named a next due day before `as_of`, by equipment code, in the county of that inspection."""
    return await alerts.overdue_equipment(
        session=session,
        catalogue=catalogue,
        today=today,
        as_of=as_of,
        page=page,
        county_code=county_code,
        include_unpublished=unpublished_allowed(principal, include_unpublished),
        counties=principal.readable_counties(),
    )


@router.get(
    "/spot-checks/repeated-failures",
    summary="Enterprises with repeated failed spot-checks in a window",
)
async def repeated_failures(
    session: SessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    today: TodayDep,
    page: PageParamsDep,
    as_of: Annotated[
        date | None, Query(description="The window's last day (default today).")
    ] = None,
    months: Annotated[int, Query(ge=1, le=120, description="The window's length.")] = 12,
    min_failures: Annotated[int, Query(ge=1, le=100)] = 2,
    county_code: CountyCode | None = None,
    include_unpublished: bool = False,
) -> Page[RepeatedFailures]:
    """Enterprises with at least `min_failures` failed spot-checks (originals whose failure
    stands after re-inspections) sampled within the `months` ending on `as_of`, by credit
    code, each with its failed checks."""
    window = alerts.failure_window(
        catalogue=catalogue,
        today=today,
        as_of=as_of,
        months=months,
        min_failures=min_failures,
        county_code=county_code,
        include_unpublished=unpublished_allowed(principal, include_unpublished),
        counties=principal.readable_counties(),
    )
    return await alerts.repeated_failures(session=session, window=window, today=today, page=page)


@router.get("/spot-checks/{spot_check_id}", summary="One spot-check")
async def get_spot_check(
    spot_check_id: str,
    engine: EngineDep,
    principal: Reader,
    response: Response,
    catalogue: CatalogueDep,
    embargo: EmbargoDep,
) -> SpotCheckRead:
    spot_check = await service.readable_spot_check(
        engine=engine, spot_check_id=spot_check_id, embargo=embargo, principal=principal
    )
    response.headers["ETag"] = service.etag_of(spot_check)
    return service.to_read(spot_check, catalogue=catalogue, embargo=embargo)


@router.patch("/spot-checks/{spot_check_id}", summary="Correct a spot-check, with a reason")
async def correct_spot_check(
    spot_check: WritableSpotCheckDep,
    body: SpotCheckUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    embargo: EmbargoDep,
    request_id: RequestIdDep,
    background: BackgroundTasks,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> SpotCheckRead:
    corrected = await service.correct_spot_check(
        session=session,
        spot_check=spot_check,
        body=body,
        if_match=if_match,
        principal=principal,
        catalogue=catalogue,
        today=today,
        request_id=request_id,
        timezone=settings.timezone,
    )
    response.headers["ETag"] = service.etag_of(corrected)
    background.add_task(_nudge_outbox, request)
    return service.to_read(corrected, catalogue=catalogue, embargo=embargo)


@router.get("/spot-checks/{spot_check_id}/history", summary="Every change of a spot-check")
async def spot_check_history(spot_check: SpotCheckDep, session: SessionDep) -> SpotCheckHistoryList:
    return await service.spot_check_history(session=session, spot_check=spot_check)


async def _spot_check_usual(request: HotRequest) -> HotAnswer | None:
    """`GET /spot-checks/{spot_check_id}`, without parameters, by a caller who may read
    spot-checks."""
    if request.query(frozenset()) is None or request.path_value is None:
        return None
    principal = await request.principal()
    if principal is None or not may_read(principal):
        return None
    state = request.state
    embargo = embargo_of(principal, state.settings.today())
    spot_check = await service.readable_spot_check(
        engine=state.engine,
        spot_check_id=request.path_value,
        embargo=embargo,
        principal=principal,
    )
    item = service.to_read(spot_check, catalogue=state.catalogue, embargo=embargo)
    return HotAnswer.of(item, etag=service.etag_of(spot_check))


HOT_ROUTES = [HotRoute("/api/v1/spot-checks/{spot_check_id}", _spot_check_usual)]
"""A spot-check by id, answered before FastAPI in its usual case (`kit.hotpaths`)."""
