"""HTTP routes of incidents, and the dependencies only they use."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from inspection import incident_service as service
from inspection.catalogue import Catalogue
from inspection.dependencies import CatalogueDep, RequestIdDep, SettingsDep, TodayDep
from inspection.incident_schemas import (
    LABELS,
    IncidentCreate,
    IncidentFilters,
    IncidentHistoryList,
    IncidentKind,
    IncidentRead,
    IncidentStats,
    IncidentStatus,
    IncidentStatusChange,
    IncidentUpdate,
    Severity,
)
from inspection.models import Incident
from kit.auth import Principal, require_scope
from kit.concurrency import IfMatch
from kit.csvio import csv_response
from kit.db import SessionDep
from kit.errors import ValidationFailed
from kit.identifiers import CountyCode
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

router = APIRouter(prefix="/api/v1", tags=["incidents"])

Reader = Annotated[Principal, Depends(require_scope("incidents:read"))]
Writer = Annotated[Principal, Depends(require_scope("incidents:write"))]
EXPORT_COLUMNS = [Column(name, LABELS[name]) for name in service.EXPORT_COLUMNS]
IMPORT_COLUMNS = [Column(name, LABELS[name]) for name in service.RECORDED_FIELDS]


async def readable_incident(incident_id: str, session: SessionDep, principal: Reader) -> Incident:
    """The incident named in the path, of a county the caller may read (404 otherwise)."""
    return await service.visible_incident(
        session=session, incident_id=incident_id, principal=principal
    )


async def writable_incident(incident_id: str, session: SessionDep, _: Writer) -> Incident:
    """The incident named in the path for a change; one of a county the caller is not bound
    to is the service's 403 naming `county_code`, as any write there."""
    return await service.visible_incident(session=session, incident_id=incident_id)


IncidentDep = Annotated[Incident, Depends(readable_incident)]
WritableIncidentDep = Annotated[Incident, Depends(writable_incident)]


async def incident_filters(
    principal: Reader,
    catalogue: CatalogueDep,
    kind: IncidentKind | None = None,
    county_code: CountyCode | None = None,
    status: IncidentStatus | None = None,
    severity: Severity | None = None,
    occurred_from: date | None = None,
    occurred_to: date | None = None,
) -> IncidentFilters:
    """The list and export filters, each checked as a record's field is."""
    errors = service.filter_errors(
        county_code=county_code,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        catalogue=catalogue,
    )
    if errors:
        raise ValidationFailed(errors)
    return IncidentFilters(
        kind=kind,
        county_code=county_code,
        status=status,
        severity=severity,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        county_codes=principal.readable_counties(),
    )


FiltersDep = Annotated[IncidentFilters, Depends(incident_filters)]


async def _nudge_outbox(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def _answer(response: Response, incident: Incident, catalogue: Catalogue) -> IncidentRead:
    response.headers["ETag"] = service.etag_of(incident)
    return service.to_read(incident, catalogue=catalogue)


@router.post("/incidents", status_code=201, summary="Record a reported incident")
async def create_incident(
    body: IncidentCreate,
    response: Response,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
) -> IncidentRead:
    incident = await service.create_incident(
        session=session, body=body, principal=principal, catalogue=catalogue, today=today
    )
    response.headers["Location"] = f"/api/v1/incidents/{incident.id}"
    return _answer(response, incident, catalogue)


@router.get("/incidents", summary="List incidents")
async def list_incidents(
    session: SessionDep, filters: FiltersDep, page: PageParamsDep, catalogue: CatalogueDep
) -> Page[IncidentRead]:
    return await service.list_incidents(
        session=session, filters=filters, page=page, catalogue=catalogue
    )


@router.get("/incidents/stats", summary="Incidents per county by their status on a day")
async def incident_stats(
    session: SessionDep,
    principal: Reader,
    catalogue: CatalogueDep,
    year: Annotated[int, Query(ge=1949, le=2200)],
    as_of: Annotated[
        date | None, Query(description="The day the statuses refer to (default 31 December).")
    ] = None,
    county_code: CountyCode | None = None,
) -> IncidentStats:
    """Incidents that occurred in `year` by `as_of`, per county: reported (not dismissed),
    confirmed (confirmed or closed), confirmed major ones by kind, with their ids."""
    return await service.incident_stats(
        session=session,
        year=year,
        as_of=as_of,
        county_code=county_code,
        catalogue=catalogue,
        counties=principal.readable_counties(),
    )


@router.post(
    "/incidents/import",
    summary="Import reported incidents from CSV or XLSX (all rows or none)",
    **IMPORT_ROUTE_DOCS,
)
async def import_incidents(
    request: Request,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> JSONResponse:
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report = await service.import_incidents(
            session=session,
            upload=upload,
            principal=principal,
            catalogue=catalogue,
            today=today,
            dry_run=dry_run,
        )
    return JSONResponse(report, status_code=200 if dry_run else 201)


@router.get(
    "/incidents/import/template.xlsx",
    summary="The XLSX import template: labelled header, an example row, enum lists",
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def import_template(principal: Reader) -> StreamingResponse:
    return template_response(
        "incidents-import-template.xlsx",
        IMPORT_COLUMNS,
        [service.IMPORT_EXAMPLE[name] for name in service.RECORDED_FIELDS],
        enums=service.IMPORT_ENUMS,
    )


@router.get(
    "/incidents/export",
    summary="Stream incidents as CSV or XLSX",
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_incidents(
    request: Request, filters: FiltersDep, format: FormatQuery = None
) -> StreamingResponse:
    xlsx = wants_xlsx(request, format)
    rows = service.export_rows(
        sessionmaker=request.app.state.sessionmaker, filters=filters, typed=xlsx
    )
    if xlsx:
        return xlsx_response("incidents.xlsx", EXPORT_COLUMNS, rows)
    return csv_response("incidents.csv", service.EXPORT_COLUMNS, rows)


@router.get("/incidents/{incident_id}", summary="One incident")
async def get_incident(
    incident: IncidentDep, response: Response, catalogue: CatalogueDep
) -> IncidentRead:
    return _answer(response, incident, catalogue)


@router.patch("/incidents/{incident_id}", summary="Correct an incident, with a reason")
async def correct_incident(
    incident: WritableIncidentDep,
    body: IncidentUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    request_id: RequestIdDep,
    background: BackgroundTasks,
    if_match: IfMatch = None,
) -> IncidentRead:
    corrected = await service.correct_incident(
        session=session,
        incident=incident,
        body=body,
        if_match=if_match,
        principal=principal,
        catalogue=catalogue,
        today=today,
        request_id=request_id,
    )
    background.add_task(_nudge_outbox, request)
    return _answer(response, corrected, catalogue)


@router.post(
    "/incidents/{incident_id}/status",
    summary="Confirm, close or dismiss an incident",
)
async def change_incident_status(
    incident: WritableIncidentDep,
    body: IncidentStatusChange,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Writer,
    catalogue: CatalogueDep,
    today: TodayDep,
    request_id: RequestIdDep,
    background: BackgroundTasks,
    if_match: IfMatch = None,
) -> IncidentRead:
    """`reported` → `confirmed` | `dismissed`; `confirmed` → `closed` | `dismissed` (a
    dismissal with a reason); any other change is a 409 naming `status`. Needs `If-Match`."""
    changed = await service.change_status(
        session=session,
        incident=incident,
        change=body,
        if_match=if_match,
        principal=principal,
        catalogue=catalogue,
        today=today,
        request_id=request_id,
    )
    background.add_task(_nudge_outbox, request)
    return _answer(response, changed, catalogue)


@router.get("/incidents/{incident_id}/history", summary="Every change of an incident")
async def incident_history(incident: IncidentDep, session: SessionDep) -> IncidentHistoryList:
    return await service.incident_history(session=session, incident=incident)
