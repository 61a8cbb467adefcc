"""HTTP routes of the brand_registry service: thin handlers over `service`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from brand_registry import service
from brand_registry.dependencies import (
    AWARD_QUERY_DOCS,
    LISTING_QUERY_DOCS,
    AwardDep,
    AwardFiltersDep,
    BrandDep,
    CatalogueDep,
    FiltersDep,
    Flagger,
    Reader,
    StreamSession,
    TodayDep,
    WritableAwardDep,
    WritableBrandDep,
    Writer,
)
from brand_registry.schemas import (
    AWARD_EXPORT_FIELDS,
    AWARD_IMPORT_EXAMPLE,
    AWARD_IMPORT_FIELDS,
    AWARD_LABELS,
    EXPORT_FIELDS,
    IMPORT_ENUMS,
    IMPORT_EXAMPLE,
    IMPORT_FIELDS,
    LABELS,
    AwardCreate,
    AwardLevel,
    AwardRead,
    AwardStatsRead,
    AwardStatusUpdate,
    AwardUpdate,
    BrandCreate,
    BrandHistoryRead,
    BrandRead,
    BrandStatsRead,
    BrandStatusUpdate,
    BrandUpdate,
    CounterfeitNoticeCreate,
    CounterfeitNoticeRead,
    ReviewFlagClear,
    ReviewFlagClearRead,
    ReviewFlagCreate,
    ReviewFlagRead,
    TierRead,
)
from kit.concurrency import IfMatch
from kit.csvio import csv_response
from kit.db import EngineDep, ReadSessionDep, SessionDep
from kit.hotpaths import HotAnswer, HotRequest, HotRoute
from kit.identifiers import CountyCode
from kit.pagination import Page, PageParamsDep
from kit.schemas import IMPORT_ROUTE_DOCS, ImportReportRead
from kit.xlsxio import (
    TEMPLATE_RESPONSES,
    XLSX_EXPORT_RESPONSES,
    Column,
    FormatQuery,
    SheetQuery,
    receive_upload,
    template_response,
    wants_xlsx,
    xlsx_response,
)

EXPORT_COLUMNS = [Column(name, LABELS[name]) for name in EXPORT_FIELDS]
IMPORT_COLUMNS = [Column(name, LABELS[name]) for name in IMPORT_FIELDS]
AWARD_EXPORT_COLUMNS = [Column(name, AWARD_LABELS[name]) for name in AWARD_EXPORT_FIELDS]
AWARD_IMPORT_COLUMNS = [Column(name, AWARD_LABELS[name]) for name in AWARD_IMPORT_FIELDS]

router = APIRouter(prefix="/api/v1", tags=["brands"])


@router.get(
    "/brands",
    summary="List brand listings",
    response_model=Page[BrandRead],
    openapi_extra=LISTING_QUERY_DOCS,
)
async def list_brands(
    engine: EngineDep,
    principal: Reader,
    catalogue: CatalogueDep,
    today: TodayDep,
    filters: FiltersDep,
    page: PageParamsDep,
) -> Response:
    listings = await service.list_listings(
        engine=engine,
        filters=filters,
        catalogue=catalogue,
        today=today,
        page=page,
        counties=principal.readable_counties(),
    )
    # The items are validated once when built; serialising directly skips a second pass.
    return Response(listings.model_dump_json(), media_type="application/json")


@router.post("/brands", status_code=201, summary="Register a brand listing")
async def create_brand(
    body: BrandCreate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> BrandRead:
    brand = await service.create_listing(
        session=session, data=body, catalogue=catalogue, principal=principal, today=today
    )
    response.headers["Location"] = f"/api/v1/brands/{brand.id}"
    response.headers["ETag"] = service.etag(brand)
    return service.to_read(brand, catalogue=catalogue, today=today)


@router.get("/brands/tiers", summary="The tier policy table")
async def list_tiers(_: Reader, catalogue: CatalogueDep) -> list[TierRead]:
    return [
        TierRead.model_validate(policy, from_attributes=True)
        for policy in catalogue.policies.values()
    ]


@router.get("/brands/stats", summary="New awards and listings in force by county and tier")
async def brand_stats(
    session: ReadSessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    year: Annotated[int, Query(ge=1980, le=2100)],
    county_code: CountyCode | None = None,
    as_of: Annotated[date | None, Query(description="Default: 31 December of `year`.")] = None,
) -> BrandStatsRead:
    return await service.stats(
        session=session,
        year=year,
        county_code=county_code,
        as_of=as_of,
        catalogue=catalogue,
        counties=principal.readable_counties(),
    )


@router.post(
    "/brands/import",
    summary="Import listings from CSV or XLSX, all rows or none",
    **IMPORT_ROUTE_DOCS,
)
async def import_brands(
    request: Request,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> ImportReportRead:
    settings = request.app.state.settings
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report = await service.import_listings(
            session=session,
            upload=upload,
            dry_run=dry_run,
            catalogue=catalogue,
            principal=principal,
            batch_size=settings.import_batch_size,
            today=today,
        )
    response.status_code = 200 if dry_run else 201
    return ImportReportRead(**report)


@router.get(
    "/brands/import/template.xlsx",
    summary="The XLSX import template: labelled header, an example row, enum lists",
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def import_template(principal: Reader) -> Any:
    return template_response(
        "brands-import-template.xlsx",
        IMPORT_COLUMNS,
        [IMPORT_EXAMPLE[name] for name in IMPORT_FIELDS],
        enums=IMPORT_ENUMS,
    )


@router.get(
    "/brands/export",
    summary="Export the filtered listings as CSV or XLSX",
    openapi_extra=LISTING_QUERY_DOCS,
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_brands(
    request: Request,
    session: StreamSession,
    principal: Reader,
    catalogue: CatalogueDep,
    today: TodayDep,
    filters: FiltersDep,
    format: FormatQuery = None,
) -> Any:
    xlsx = wants_xlsx(request, format)
    rows = service.export_rows(
        session=session,
        filters=filters,
        catalogue=catalogue,
        today=today,
        fields=EXPORT_FIELDS,
        counties=principal.readable_counties(),
        typed=xlsx,
    )
    if xlsx:
        return xlsx_response("brands.xlsx", EXPORT_COLUMNS, rows)
    return csv_response("brands.csv", EXPORT_FIELDS, rows)


@router.post(
    "/brands/review-flags",
    status_code=201,
    summary="Flag an enterprise's listings for review (idempotent on source and reference)",
    responses={
        200: {
            "description": "A repeat: the first result, nothing flagged again",
            "model": ReviewFlagRead,
        }
    },
)
async def raise_review_flag(
    body: ReviewFlagCreate,
    session: SessionDep,
    principal: Flagger,
    today: TodayDep,
    response: Response,
    catalogue: CatalogueDep,
) -> ReviewFlagRead:
    result = await service.raise_review_flag(
        session=session, data=body, today=today, principal=principal, catalogue=catalogue
    )
    if not result.created:
        response.status_code = 200
    return result


@router.post(
    "/brands/review-flags/{source}/{reference:path}/clear",
    summary="Withdraw a review flag (its raiser only; idempotent)",
)
async def clear_review_flag(
    source: Annotated[str, Path(max_length=50)],
    reference: Annotated[str, Path(max_length=200)],
    body: ReviewFlagClear,
    session: SessionDep,
    principal: Flagger,
    catalogue: CatalogueDep,
    today: TodayDep,
) -> ReviewFlagClearRead:
    return await service.clear_review_flag(
        session=session,
        source=source,
        reference=reference,
        data=body,
        principal=principal,
        catalogue=catalogue,
        today=today,
    )


@router.post(
    "/brands/counterfeit-notices",
    status_code=201,
    summary="Notify a counterfeiting case against a listed product (idempotent on source and"
    " reference)",
    responses={
        200: {
            "description": "A repeat: the stored notice, nothing counted again",
            "model": CounterfeitNoticeRead,
        }
    },
)
async def notify_counterfeit(
    body: CounterfeitNoticeCreate,
    session: SessionDep,
    principal: Flagger,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> CounterfeitNoticeRead:
    notice, created = await service.notify_counterfeit(
        session=session, data=body, principal=principal, catalogue=catalogue, today=today
    )
    if not created:
        response.status_code = 200
    return notice


ID_LENGTH = 36


@router.get("/brands/{brand_id}", summary="One brand listing")
async def get_brand(
    brand_id: Annotated[str, Path(max_length=ID_LENGTH)],
    principal: Reader,
    engine: EngineDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> BrandRead:
    item, etag = await service.read_listing(
        engine=engine, brand_id=brand_id, principal=principal, catalogue=catalogue, today=today
    )
    response.headers["ETag"] = etag
    return item


@router.patch("/brands/{brand_id}", summary="Edit a brand listing (If-Match)")
async def update_brand(
    brand: WritableBrandDep,
    body: BrandUpdate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> BrandRead:
    brand = await service.update_listing(
        session=session,
        brand=brand,
        data=body,
        catalogue=catalogue,
        principal=principal,
        if_match=if_match,
        today=today,
    )
    response.headers["ETag"] = service.etag(brand)
    return service.to_read(brand, catalogue=catalogue, today=today)


@router.post("/brands/{brand_id}/status", summary="Change a listing's status (If-Match)")
async def change_status(
    brand: WritableBrandDep,
    body: BrandStatusUpdate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> BrandRead:
    brand = await service.change_status(
        session=session,
        brand=brand,
        change=body,
        today=today,
        principal=principal,
        if_match=if_match,
        catalogue=catalogue,
    )
    response.headers["ETag"] = service.etag(brand)
    return service.to_read(brand, catalogue=catalogue, today=today)


@router.get("/brands/{brand_id}/history", summary="Every change to a listing, oldest first")
async def brand_history(
    brand: BrandDep, session: SessionDep, _: Reader, page: PageParamsDep
) -> Page[BrandHistoryRead]:
    return await service.history(session=session, brand_id=brand.id, page=page)


@router.get(
    "/brands/{brand_id}/counterfeit-notices",
    summary="The counterfeiting cases notified against a listing",
)
async def brand_counterfeit_notices(
    brand: BrandDep, session: SessionDep, _: Reader, page: PageParamsDep
) -> Page[CounterfeitNoticeRead]:
    return await service.counterfeit_notices(session=session, brand_id=brand.id, page=page)


@router.get(
    "/awards",
    summary="List quality awards",
    tags=["awards"],
    response_model=Page[AwardRead],
    openapi_extra=AWARD_QUERY_DOCS,
)
async def list_awards(
    session: ReadSessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    filters: AwardFiltersDep,
    page: PageParamsDep,
) -> Page[AwardRead]:
    return await service.list_awards(
        session=session,
        filters=filters,
        catalogue=catalogue,
        page=page,
        counties=principal.readable_counties(),
    )


@router.post("/awards", status_code=201, summary="Record a quality award", tags=["awards"])
async def create_award(
    body: AwardCreate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> AwardRead:
    award = await service.create_award(
        session=session, data=body, catalogue=catalogue, principal=principal, today=today
    )
    response.headers["Location"] = f"/api/v1/awards/{award.id}"
    response.headers["ETag"] = service.award_etag(award)
    return service.award_read(award, catalogue=catalogue)


@router.get(
    "/awards/stats",
    summary="Awards of a year by county, kind and level",
    tags=["awards"],
)
async def award_stats(
    session: ReadSessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    year: Annotated[int, Query(ge=1980, le=2100)],
    county_code: CountyCode | None = None,
    as_of: Annotated[date | None, Query(description="Default: 31 December of `year`.")] = None,
) -> AwardStatsRead:
    return await service.award_stats(
        session=session,
        year=year,
        county_code=county_code,
        as_of=as_of,
        catalogue=catalogue,
        counties=principal.readable_counties(),
    )


@router.post(
    "/awards/import",
    summary="Import awards from CSV or XLSX, all rows or none",
    tags=["awards"],
    **IMPORT_ROUTE_DOCS,
)
async def import_awards(
    request: Request,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> ImportReportRead:
    settings = request.app.state.settings
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report = await service.import_awards(
            session=session,
            upload=upload,
            dry_run=dry_run,
            catalogue=catalogue,
            principal=principal,
            today=today,
        )
    response.status_code = 200 if dry_run else 201
    return ImportReportRead(**report)


@router.get(
    "/awards/import/template.xlsx",
    summary="The XLSX award import template: labelled header, an example row, enum lists",
    tags=["awards"],
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def award_import_template(principal: Reader, catalogue: CatalogueDep) -> Any:
    return template_response(
        "awards-import-template.xlsx",
        AWARD_IMPORT_COLUMNS,
        [AWARD_IMPORT_EXAMPLE[name] for name in AWARD_IMPORT_FIELDS],
        enums={
            "kind": list(catalogue.award_kinds),
            "level": [str(level) for level in AwardLevel],
        },
    )


@router.get(
    "/awards/export",
    summary="Export the filtered awards as CSV or XLSX",
    tags=["awards"],
    openapi_extra=AWARD_QUERY_DOCS,
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_awards(
    request: Request,
    session: StreamSession,
    principal: Reader,
    catalogue: CatalogueDep,
    filters: AwardFiltersDep,
    format: FormatQuery = None,
) -> Any:
    xlsx = wants_xlsx(request, format)
    rows = service.award_export_rows(
        session=session,
        filters=filters,
        catalogue=catalogue,
        counties=principal.readable_counties(),
        typed=xlsx,
    )
    if xlsx:
        return xlsx_response("awards.xlsx", AWARD_EXPORT_COLUMNS, rows)
    return csv_response("awards.csv", AWARD_EXPORT_FIELDS, rows)


@router.get("/awards/{award_id}", summary="One quality award", tags=["awards"])
async def get_award(
    award: AwardDep, _: Reader, catalogue: CatalogueDep, response: Response
) -> AwardRead:
    response.headers["ETag"] = service.award_etag(award)
    return service.award_read(award, catalogue=catalogue)


@router.patch("/awards/{award_id}", summary="Edit a quality award (If-Match)", tags=["awards"])
async def update_award(
    award: WritableAwardDep,
    body: AwardUpdate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> AwardRead:
    award = await service.update_award(
        session=session,
        award=award,
        data=body,
        catalogue=catalogue,
        principal=principal,
        if_match=if_match,
        today=today,
    )
    response.headers["ETag"] = service.award_etag(award)
    return service.award_read(award, catalogue=catalogue)


@router.post(
    "/awards/{award_id}/status", summary="Revoke a quality award (If-Match)", tags=["awards"]
)
async def change_award_status(
    award: WritableAwardDep,
    body: AwardStatusUpdate,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> AwardRead:
    award = await service.change_award_status(
        session=session,
        award=award,
        change=body,
        catalogue=catalogue,
        principal=principal,
        if_match=if_match,
        today=today,
    )
    response.headers["ETag"] = service.award_etag(award)
    return service.award_read(award, catalogue=catalogue)


@router.get(
    "/awards/{award_id}/history",
    summary="Every change to an award, oldest first",
    tags=["awards"],
)
async def award_history(
    award: AwardDep, session: SessionDep, _: Reader, page: PageParamsDep
) -> Page[BrandHistoryRead]:
    return await service.award_history(session=session, award_id=award.id, page=page)


async def _brand_usual(request: HotRequest) -> HotAnswer | None:
    """`GET /brands/{brand_id}`, without parameters, by a caller holding `brands:read`."""
    brand_id = request.path_value
    if request.query(frozenset()) is None or brand_id is None or len(brand_id) > ID_LENGTH:
        return None
    principal = await request.principal("brands:read")
    if principal is None:
        return None
    state = request.state
    item, etag = await service.read_listing(
        engine=state.engine,
        brand_id=brand_id,
        principal=principal,
        catalogue=state.catalogue,
        today=state.settings.today(),
    )
    return HotAnswer.of(item, etag=etag)


HOT_ROUTES = [HotRoute("/api/v1/brands/{brand_id}", _brand_usual)]
"""A listing by id, answered before FastAPI in its usual case (`kit.hotpaths`)."""
