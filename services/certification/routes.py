"""HTTP routes of the certification service."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from certification import service
from certification.dependencies import (
    AnyCaller,
    CatalogueDep,
    CertificateDep,
    Reader,
    SessionmakerDep,
    SettingsDep,
    TodayDep,
    WritableCertificateDep,
    Writer,
)
from certification.schemas import (
    IMPORT_ENUMS,
    IMPORT_EXAMPLE,
    LABELS,
    CertificateCreate,
    CertificateHistoryRead,
    CertificateRead,
    CertificateStats,
    CertificateStatus,
    CertificateUpdate,
    LicenceStats,
    StatusChange,
    Verification,
    VerifyRequest,
    VerifyResponse,
)
from kit.concurrency import IfMatch
from kit.csvio import csv_response
from kit.db import EngineDep, SessionDep
from kit.hotpaths import HotAnswer, HotRequest, HotRoute
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

router = APIRouter(prefix="/api/v1", tags=["certificates"])

EXPORT_COLUMNS = [Column(name, LABELS[name]) for name in service.CSV_COLUMNS]
IMPORT_FIELDS = [name for name in service.CSV_COLUMNS if name not in service.CSV_IGNORED]
IMPORT_COLUMNS = [Column(name, LABELS[name]) for name in IMPORT_FIELDS]

AsOf = Annotated[date | None, Query(description="The date the status refers to (default today).")]
KindQuery = Annotated[
    str | None,
    Query(
        max_length=50,
        description="Only this kind: management_system or a licence kind (default: all).",
    ),
]


class ListFilters:
    """The list and export filters, as query parameters."""

    def __init__(
        self,
        kind: KindQuery = None,
        county_code: CountyCode | None = None,
        standard: str | None = None,
        family: str | None = None,
        status: Annotated[CertificateStatus | None, Query(description="Status on `as_of`.")] = None,
        as_of: AsOf = None,
        certification_body: str | None = None,
        issued_from: date | None = None,
        issued_to: date | None = None,
        enterprise_credit_code: CreditCode | None = None,
        enterprise_credit_code_prefix: Annotated[
            str | None,
            Query(
                min_length=2,
                max_length=18,
                pattern=r"^[0-9A-Za-z]+$",
                description="The start of the enterprise's credit code (either case).",
            ),
        ] = None,
        q: Annotated[
            str | None, Query(max_length=200, description="Text in number, enterprise, scope.")
        ] = None,
        overdue_suspension: Annotated[
            bool | None, Query(description="Only suspensions longer than the configured limit.")
        ] = None,
        expiring_within_days: Annotated[
            int | None,
            Query(
                ge=1,
                le=3650,
                description="Only certificates in force on `as_of` (default today) that"
                " expire within this many days of it.",
            ),
        ] = None,
    ) -> None:
        self.values: dict[str, Any] = {
            "kind": kind,
            "county_code": county_code,
            "standard": standard,
            "family": family,
            "status": status,
            "as_of": as_of,
            "certification_body": certification_body,
            "issued_from": issued_from,
            "issued_to": issued_to,
            "enterprise_credit_code": enterprise_credit_code,
            "enterprise_credit_code_prefix": enterprise_credit_code_prefix,
            "q": q,
            "overdue_suspension": overdue_suspension,
            "expiring_within_days": expiring_within_days,
        }


Filters = Annotated[ListFilters, Depends()]


def _with_etag(response: Response, item: CertificateRead) -> CertificateRead:
    response.headers["ETag"] = service.etag_of(item)
    return item


@router.get("/certificates/standards")
async def list_standards(catalogue: CatalogueDep, _: AnyCaller) -> dict[str, Any]:
    """The standards catalogue, its families and the families counted by default."""
    return service.published_standards(catalogue)


@router.get("/certificates/kinds")
async def list_kinds(catalogue: CatalogueDep, _: AnyCaller) -> dict[str, Any]:
    """The certificate and licence kinds: each licence kind's number format, validity,
    issuing authorities and product catalogue."""
    return service.published_kinds(catalogue)


NUMBER_LENGTH = 100
BODY_LENGTH = 200


@router.get("/certificates/verify")
async def verify_certificate(
    engine: EngineDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    _: AnyCaller,
    number: Annotated[str, Query(min_length=1, max_length=NUMBER_LENGTH)],
    body: Annotated[str | None, Query(min_length=1, max_length=BODY_LENGTH)] = None,
    as_of: AsOf = None,
    kind: KindQuery = None,
) -> Verification:
    """The public check of one certificate or licence: its status today (or on `as_of`)."""
    return await service.verify_number(
        engine=engine,
        catalogue=catalogue,
        today=today,
        number=number.strip(),
        body=body.strip() if body else None,
        as_of=as_of,
        kind=kind,
    )


@router.post("/certificates/verify")
async def verify_certificates(
    request_body: VerifyRequest,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    _: AnyCaller,
) -> VerifyResponse:
    """Check up to 100 certificate numbers or enterprise credit codes at once."""
    return await service.verify_many(
        session=session,
        catalogue=catalogue,
        today=today,
        queries=request_body.items,
        as_of=request_body.as_of,
        kind=request_body.kind,
    )


@router.get("/certificates/stats")
async def certificate_stats(
    engine: EngineDep,
    catalogue: CatalogueDep,
    principal: Reader,
    year: Annotated[int, Query(ge=1949, le=2200)],
    county_code: CountyCode | None = None,
    families: Annotated[
        str | None, Query(description="Comma-separated families (default: the counted ones).")
    ] = None,
    as_of: date | None = None,
    kind: Annotated[
        str,
        Query(
            max_length=50,
            description="management_system (default) or a licence kind, counted as licensed"
            " enterprises and new licences.",
        ),
    ] = "management_system",
) -> CertificateStats | LicenceStats:
    """Newly certified enterprises in `year` and certificates in force, per county; for a
    licence `kind`, enterprises licensed on `as_of` and licences issued in `year`."""
    return await service.stats(
        engine=engine,
        catalogue=catalogue,
        year=year,
        county_code=county_code,
        families=families,
        as_of=as_of,
        counties=principal.readable_counties(),
        kind=kind,
    )


@router.post(
    "/certificates/import",
    summary="Import certificates from CSV or XLSX (all rows or none)",
    **IMPORT_ROUTE_DOCS,
)
async def import_certificates(
    request: Request,
    session: SessionDep,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    today: TodayDep,
    principal: Writer,
    sheet: SheetQuery = None,
    dry_run: bool = False,
) -> JSONResponse:
    """Import a CSV file (UTF-8 or GB18030, header row of field names) or an .xlsx workbook
    (header of field names or their Chinese labels): every row stored, or none."""
    upload = await receive_upload(request, max_bytes=settings.max_upload_bytes, sheet=sheet)
    with upload:
        report = await service.import_csv(
            session=session,
            catalogue=catalogue,
            today=today,
            upload=upload,
            batch_size=settings.import_batch_size,
            dry_run=dry_run,
            actor=principal,
        )
    return JSONResponse(report, status_code=200 if dry_run else 201)


@router.get(
    "/certificates/import/template.xlsx",
    summary="The XLSX import template: labelled header, an example row, enum lists",
    response_class=StreamingResponse,
    responses=TEMPLATE_RESPONSES,
)
async def import_template(principal: Reader, catalogue: CatalogueDep) -> StreamingResponse:
    return template_response(
        "certificates-import-template.xlsx",
        IMPORT_COLUMNS,
        [IMPORT_EXAMPLE[name] for name in IMPORT_FIELDS],
        enums={**IMPORT_ENUMS, "kind": list(catalogue.kinds)},
    )


@router.get(
    "/certificates/export",
    response_class=StreamingResponse,
    responses=XLSX_EXPORT_RESPONSES,
)
async def export_certificates(
    request: Request,
    sessionmaker: SessionmakerDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    principal: Reader,
    filters: Filters,
    format: FormatQuery = None,
) -> StreamingResponse:
    """Stream the filtered certificates as CSV (UTF-8 with BOM) or, with `?format=xlsx` or
    `Accept` the xlsx type, as a workbook (typed cells under Chinese labels)."""
    query = service.resolve_query(
        catalogue=catalogue, today=today, principal=principal, **filters.values
    )
    xlsx = wants_xlsx(request, format)
    rows = service.export_rows(
        sessionmaker=sessionmaker, catalogue=catalogue, query=query, typed=xlsx
    )
    if xlsx:
        return xlsx_response("certificates.xlsx", EXPORT_COLUMNS, rows)
    return csv_response("certificates.csv", service.CSV_COLUMNS, rows)


@router.get("/certificates")
async def list_certificates(
    engine: EngineDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    principal: Reader,
    filters: Filters,
    page: PageParamsDep,
) -> Page[CertificateRead]:
    """Certificates matching the filters, by creation, a page at a time."""
    query = service.resolve_query(
        catalogue=catalogue, today=today, principal=principal, **filters.values
    )
    return await service.list_certificates(
        engine=engine, catalogue=catalogue, today=today, query=query, page=page
    )


@router.post("/certificates", status_code=201)
async def create_certificate(
    body: CertificateCreate,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    principal: Writer,
    response: Response,
) -> CertificateRead:
    """Record a certificate."""
    item = await service.create_certificate(
        session=session, catalogue=catalogue, today=today, data=body, actor=principal
    )
    response.headers["Location"] = f"/api/v1/certificates/{item.id}"
    return _with_etag(response, item)


@router.get("/certificates/{certificate_id}")
async def get_certificate(
    certificate_id: str,
    principal: Reader,
    engine: EngineDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> CertificateRead:
    """One certificate, with its ETag."""
    item = await service.read_visible(
        engine=engine,
        catalogue=catalogue,
        today=today,
        certificate_id=certificate_id,
        principal=principal,
    )
    return _with_etag(response, item)


@router.patch("/certificates/{certificate_id}")
async def update_certificate(
    principal: Writer,
    certificate: WritableCertificateDep,
    body: CertificateUpdate,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> CertificateRead:
    """Change fields of a certificate; needs `If-Match`."""
    item = await service.update_certificate(
        session=session,
        catalogue=catalogue,
        today=today,
        certificate=certificate,
        data=body,
        if_match=if_match,
        actor=principal,
    )
    return _with_etag(response, item)


@router.post("/certificates/{certificate_id}/status")
async def change_status(
    principal: Writer,
    certificate: WritableCertificateDep,
    body: StatusChange,
    session: SessionDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
    if_match: IfMatch = None,
) -> CertificateRead:
    """Suspend, reinstate or withdraw a certificate, with a reason; needs `If-Match`."""
    item = await service.change_status(
        session=session,
        catalogue=catalogue,
        today=today,
        certificate=certificate,
        change=body,
        if_match=if_match,
        actor=principal,
    )
    return _with_etag(response, item)


@router.get("/certificates/{certificate_id}/history")
async def certificate_history(
    _: Reader, certificate: CertificateDep, session: SessionDep, page: PageParamsDep
) -> Page[CertificateHistoryRead]:
    """Every change of a certificate, oldest first: who, when, what and why."""
    return await service.history(session=session, certificate_id=certificate.id, page=page)


_VERIFY_PARAMETERS = frozenset({"number", "body"})


async def _verify_usual(request: HotRequest) -> HotAnswer | None:
    """`GET /certificates/verify` with `number` (and `body`) alone, both of a valid length."""
    query = request.query(_VERIFY_PARAMETERS)
    if query is None:
        return None
    number, body = query.get("number", ""), query.get("body")
    if not 1 <= len(number) <= NUMBER_LENGTH:
        return None
    if body is not None and not 1 <= len(body) <= BODY_LENGTH:
        return None
    if await request.principal() is None:
        return None
    state = request.state
    verification = await service.verify_number(
        engine=state.engine,
        catalogue=state.catalogue,
        today=state.settings.today(),
        number=number.strip(),
        body=body.strip() if body else None,
        as_of=None,
    )
    return HotAnswer.of(verification)


async def _certificate_usual(request: HotRequest) -> HotAnswer | None:
    """`GET /certificates/{certificate_id}`, without parameters, by a caller holding
    `certificates:read`."""
    if request.query(frozenset()) is None or request.path_value is None:
        return None
    principal = await request.principal("certificates:read")
    if principal is None:
        return None
    state = request.state
    item = await service.read_visible(
        engine=state.engine,
        catalogue=state.catalogue,
        today=state.settings.today(),
        certificate_id=request.path_value,
        principal=principal,
    )
    return HotAnswer.of(item, etag=service.etag_of(item))


HOT_ROUTES = [
    HotRoute("/api/v1/certificates/verify", _verify_usual),
    HotRoute("/api/v1/certificates/{certificate_id}", _certificate_usual),
]
"""The public check and the certificate by id, answered before FastAPI in their usual case
(`kit.hotpaths`)."""
