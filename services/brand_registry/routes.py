"""HTTP routes of the brand_registry service: thin handlers over `service`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from brand_registry import service
from brand_registry.dependencies import (
    LISTING_QUERY_DOCS,
    BrandDep,
    FiltersDep,
    Flagger,
    ReadConnection,
    Reader,
    RulesDep,
    Writer,
)
from brand_registry.models import Brand
from brand_registry.schemas import (
    EXPORT_FIELDS,
    BrandCreate,
    BrandRead,
    BrandStats,
    BrandUpdate,
    HistoryEntry,
    ImportReport,
    ReviewFlagCreate,
    ReviewFlagRead,
    StatusChange,
    TierRead,
)
from kit.concurrency import check_if_match, make_etag
from kit.csvio import CSV_EXPORT_RESPONSES, csv_response, spool_upload
from kit.db import SessionDep
from kit.identifiers import CountyCode
from kit.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/api/v1", tags=["brands"])
IfMatch = Annotated[str | None, Header(description="The listing's current ETag.")]
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _etag(brand: Brand) -> str:
    return make_etag(brand.id, brand.version)


@router.get(
    "/brands",
    summary="List brand listings",
    response_model=Page[BrandRead],
    openapi_extra=LISTING_QUERY_DOCS,
)
async def list_brands(
    request: Request,
    connection: ReadConnection,
    _: Reader,
    rules: RulesDep,
    filters: FiltersDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    page = await service.list_listings(
        session=connection,
        filters=filters,
        rules=rules,
        limit=limit,
        cursor=cursor,
        codec=request.app.state.cursor_codec,
    )
    # The items are validated once when built; serialising directly skips a second pass.
    return Response(page.model_dump_json(), media_type="application/json")


@router.post("/brands", status_code=201, summary="Register a brand listing")
async def create_brand(
    body: BrandCreate, session: SessionDep, principal: Writer, rules: RulesDep, response: Response
) -> BrandRead:
    brand = await service.create_listing(
        session=session, data=body, rules=rules, principal=principal
    )
    response.headers["Location"] = f"/api/v1/brands/{brand.id}"
    response.headers["ETag"] = _etag(brand)
    return service.to_read(brand, rules)


@router.get("/brands/tiers", summary="The tier policy table")
async def list_tiers(request: Request, _: Reader) -> list[TierRead]:
    return [
        TierRead.model_validate(policy, from_attributes=True)
        for policy in request.app.state.tier_policies.values()
    ]


@router.get("/brands/stats", summary="New awards and listings in force by county and tier")
async def brand_stats(
    connection: ReadConnection,
    _: Reader,
    rules: RulesDep,
    year: Annotated[int, Query(ge=1980, le=2100)],
    county_code: CountyCode | None = None,
    as_of: Annotated[date | None, Query(description="Default: 31 December of `year`.")] = None,
) -> BrandStats:
    return await service.stats(
        session=connection, year=year, county_code=county_code, as_of=as_of, rules=rules
    )


@router.post(
    "/brands/import",
    summary="Import listings from CSV, all rows or none",
    openapi_extra=CSV_BODY,
    responses={200: {"description": "Dry run report"}, 201: {"description": "Stored"}},
)
async def import_brands(
    request: Request,
    session: SessionDep,
    principal: Writer,
    rules: RulesDep,
    response: Response,
    dry_run: bool = False,
) -> ImportReport:
    settings = request.app.state.settings
    upload = await spool_upload(request, max_bytes=settings.max_upload_bytes)
    with upload:
        report = await service.import_listings(
            session=session,
            upload=upload,
            dry_run=dry_run,
            rules=rules,
            principal=principal,
            batch_size=settings.import_batch_size,
        )
    response.status_code = 200 if dry_run else 201
    return ImportReport(**report)


@router.get(
    "/brands/export",
    summary="Export the filtered listings as CSV",
    openapi_extra=LISTING_QUERY_DOCS,
    response_class=StreamingResponse,
    responses=CSV_EXPORT_RESPONSES,
)
async def export_brands(request: Request, _: Reader, rules: RulesDep, filters: FiltersDep) -> Any:
    service.check_filters(filters, rules)
    rows = service.export_rows(
        sessionmaker=request.app.state.sessionmaker,
        filters=filters,
        rules=rules,
        fields=EXPORT_FIELDS,
    )
    return csv_response("brands.csv", EXPORT_FIELDS, rows)


@router.post(
    "/brands/review-flags",
    status_code=201,
    summary="Flag an enterprise's listings for review (idempotent on source and reference)",
    responses={200: {"description": "A repeat: the first result, nothing flagged again"}},
)
async def raise_review_flag(
    body: ReviewFlagCreate,
    session: SessionDep,
    principal: Flagger,
    rules: RulesDep,
    response: Response,
) -> ReviewFlagRead:
    result = await service.raise_review_flag(
        session=session, data=body, rules=rules, principal=principal
    )
    if not result.created:
        response.status_code = 200
    return result


@router.get("/brands/{brand_id}", summary="One brand listing")
async def get_brand(brand: BrandDep, _: Reader, rules: RulesDep, response: Response) -> BrandRead:
    response.headers["ETag"] = _etag(brand)
    return service.to_read(brand, rules)


@router.patch("/brands/{brand_id}", summary="Edit a brand listing (If-Match)")
async def update_brand(
    brand: BrandDep,
    body: BrandUpdate,
    session: SessionDep,
    principal: Writer,
    rules: RulesDep,
    response: Response,
    if_match: IfMatch = None,
) -> BrandRead:
    check_if_match(if_match, _etag(brand))
    brand = await service.update_listing(
        session=session, brand=brand, data=body, rules=rules, principal=principal
    )
    response.headers["ETag"] = _etag(brand)
    return service.to_read(brand, rules)


@router.post("/brands/{brand_id}/status", summary="Change a listing's status (If-Match)")
async def change_status(
    brand: BrandDep,
    body: StatusChange,
    session: SessionDep,
    principal: Writer,
    rules: RulesDep,
    response: Response,
    if_match: IfMatch = None,
) -> BrandRead:
    check_if_match(if_match, _etag(brand))
    brand = await service.change_status(
        session=session, brand=brand, change=body, rules=rules, principal=principal
    )
    response.headers["ETag"] = _etag(brand)
    return service.to_read(brand, rules)


@router.get("/brands/{brand_id}/history", summary="Every change to a listing, oldest first")
async def brand_history(
    brand: BrandDep,
    request: Request,
    session: SessionDep,
    _: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[HistoryEntry]:
    return await service.history(
        session=session,
        brand_id=brand.id,
        limit=limit,
        cursor=cursor,
        codec=request.app.state.cursor_codec,
    )
