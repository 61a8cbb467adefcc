"""HTTP routes of the food-processing dispositions (`/api/v1/food-dispositions`)."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from certification import disposition_service as service
from certification.dependencies import (
    CatalogueDep,
    Reader,
    SessionmakerDep,
    SettingsDep,
    TodayDep,
    Writer,
)
from certification.disposition_repository import DispositionQuery
from certification.models import FoodDisposition
from certification.schemas import (
    Disposition,
    DispositionCreate,
    DispositionHistoryRead,
    DispositionRead,
    DispositionStats,
    DispositionUpdate,
)
from kit.auth import CurrentPrincipal
from kit.concurrency import IfMatch
from kit.csvio import csv_response
from kit.db import SessionDep
from kit.identifiers import CountyCode, CreditCode
from kit.pagination import Page, PageParamsDep
from kit.schemas import IMPORT_ROUTE_DOCS
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

router = APIRouter(prefix="/api/v1", tags=["food-dispositions"])

EXPORT_COLUMNS = [Column(name, service.LABELS[name]) for name in service.CSV_COLUMNS]
IMPORT_COLUMNS = [Column(name, service.LABELS[name]) for name in service.IMPORT_FIELDS]


async def visible_disposition(
    disposition_id: str, session: SessionDep, principal: CurrentPrincipal
) -> FoodDisposition:
    return await service.get_visible(
        session=session, disposition_id=disposition_id, principal=principal
    )


async def writable_disposition(
    disposition_id: str, session: SessionDep, principal: CurrentPrincipal
) -> FoodDisposition:
    return await service.get_visible(
        session=session, disposition_id=disposition_id, principal=principal, for_write=True
    )


DispositionDep = Annotated[FoodDisposition, Depends(visible_disposition)]
WritableDispositionDep = Annotated[FoodDisposition, Depends(writable_disposition)]


class Filters:
    """The list and export filters, as query parameters."""

    def __init__(
        self,
        county_code: CountyCode | None = None,
        disposition: Annotated[
            Disposition | None, Query(description="The current disposition.")
        ] = None,
        enterprise_credit_code: CreditCode | None = None,
        q: Annotated[
            str | None, Query(max_length=200, description="Text in name or licence number.")
        ] = None,
    ) -> None:
        self.county_code = county_code
        self.disposition = disposition
        self.enterprise_credit_code = enterprise_credit_code
        self.q = q


FiltersDep = Annotated[Filters, Depends()]


def _with_etag(response: Response, item: DispositionRead) -> DispositionRead:
    response.headers["ETag"] = service.etag_of(item)
    return item


def _query(
    filters: Filters, catalogue: CatalogueDep, principal: CurrentPrincipal
) -> DispositionQuery:
    return service.resolve_query(
        catalogue=catalogue,
        principal=principal,
        county_code=filters.county_code,
        disposition=filters.disposition,
        enterprise_credit_code=filters.enterprise_credit_code,
        q=filters.q,
    )


@router.get("/food-dispositions/stats")
async def disposition_stats(
    session: SessionDep,
    catalogue: CatalogueDep,
    principal: Reader,
    year: Annotated[int, Query(ge=1949, le=2200)],
    county_code: CountyCode | None = None,
    as_of: Annotated[
        date | None, Query(description="The day counted (default the end of `year`).")
    ] = None,
) -> DispositionStats:
    """Enterprises supported, rectifying and closed on `as_of`, per county."""
    return await service.stats(
        session=session,
        catalogue=catalogue,
        year=year,
        as_of=as_of,
        county_code=county_code,
        counties=principal.readable_counties(),
    )


@router.post(
    "/food-dispositions/import",
    summary="Import food dispositions from CSV or XLSX (all rows or none)",
    **IMPORT_ROUTE_DOCS,
)
async def import_dispositions(
    request: Request,
    session: SessionDep,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    today: TodayDep,
    principal: Writer,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> JSONResponse:
    """Import each enterprise's first disposition from a CSV file or an .xlsx workbook (header
    of field names or their Chinese labels): every row stored, or none."""
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report = await service.import_file(
            session=session,
            catalogue=catalogue,
            today=today,
            upload=upload,
            dry_run=dry_run,
            actor=principal,
        )
    return JSONResponse(report, status_code=200 if dry_run else 201)


@router.get(
    "/food-dispositions/import/template.xlsx",
    summary="The XLSX import template of food dispositions",
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def import_template(_: Reader) -> StreamingResponse:
    return template_response(
        "food-dispositions-import-template.xlsx",
        IMPORT_COLUMNS,
        [service.IMPORT_EXAMPLE[name] for name in service.IMPORT_FIELDS],
        enums=service.IMPORT_ENUMS,
    )


@router.get(
    "/food-dispositions/export",
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_dispositions(
    request: Request,
    sessionmaker: SessionmakerDep,
    catalogue: CatalogueDep,
    principal: Reader,
    filters: FiltersDep,
    format: FormatQuery = None,
) -> StreamingResponse:
    """Stream the filtered dispositions as CSV (UTF-8 with BOM) or as a workbook."""
    query = _query(filters, catalogue, principal)
    xlsx = wants_xlsx(request, format)
    rows = service.export_rows(sessionmaker=sessionmaker, query=query, typed=xlsx)
    if xlsx:
        return xlsx_response("food-dispositions.xlsx", EXPORT_COLUMNS, rows)
    return csv_response("food-dispositions.csv", service.CSV_COLUMNS, rows)


@router.get("/food-dispositions")
async def list_dispositions(
    session: SessionDep,
    catalogue: CatalogueDep,
    principal: Reader,
    filters: FiltersDep,
    page: PageParamsDep,
) -> Page[DispositionRead]:
    """Current dispositions matching the filters, a page at a time."""
    query = _query(filters, catalogue, principal)
    return await service.list_dispositions(session=session, query=query, page=page)


@router.post("/food-dispositions", status_code=201)
async def create_disposition(
    body: DispositionCreate,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    principal: Writer,
    response: Response,
) -> DispositionRead:
    """Record an enterprise's disposition (takes `Idempotency-Key`)."""
    item = await service.create(
        session=session, catalogue=catalogue, today=today, data=body, actor=principal
    )
    response.headers["Location"] = f"/api/v1/food-dispositions/{item.id}"
    return _with_etag(response, item)


@router.get("/food-dispositions/{disposition_id}")
async def get_disposition(
    _: Reader, disposition: DispositionDep, response: Response
) -> DispositionRead:
    """One disposition, with its ETag."""
    return _with_etag(response, service.to_read(disposition))


@router.patch("/food-dispositions/{disposition_id}")
async def update_disposition(
    principal: Writer,
    disposition: WritableDispositionDep,
    body: DispositionUpdate,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> DispositionRead:
    """Decide anew (a changed `disposition`) or correct fields; needs `If-Match`."""
    item = await service.update(
        session=session,
        catalogue=catalogue,
        today=today,
        disposition=disposition,
        data=body,
        if_match=if_match,
        actor=principal,
    )
    return _with_etag(response, item)


@router.get("/food-dispositions/{disposition_id}/history")
async def disposition_history(
    _: Reader, disposition: DispositionDep, session: SessionDep, page: PageParamsDep
) -> Page[DispositionHistoryRead]:
    """Every change of a disposition, oldest first: who, when, what and why."""
    return await service.history(session=session, disposition_id=disposition.id, page=page)
