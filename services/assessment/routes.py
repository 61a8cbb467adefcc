"""HTTP routes of the assessment service."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from assessment import enterprises, service
from assessment.dependencies import (
    ActorDep,
    CatalogueDep,
    EnterpriseReader,
    EvidenceStoreDep,
    FetcherDep,
    Publisher,
    Reader,
    ReportedValueDep,
    Reviewer,
    RunDep,
    SettingsDep,
    TodayDep,
    Writer,
    Year,
)
from assessment.schemas import (
    KEY_PATTERN,
    AssessmentHistoryRead,
    County,
    CountyStandingRead,
    EnterpriseRead,
    EnterpriseSearchRead,
    EvidenceRead,
    ReferenceValueCreate,
    ReferenceValueRead,
    Region,
    ReportedValueCreate,
    ReportedValueHistory,
    ReportedValueRead,
    ReviewCreate,
    ReviewState,
    RunCreate,
    RunPublish,
    RunRead,
    RunSummary,
    StandingsRead,
    TargetSetCreate,
    TargetSetRead,
    TargetSetSummary,
    Worklist,
)
from assessment.standings import strip_explanations
from kit.concurrency import IfMatch
from kit.db import SessionDep
from kit.downloads import content_disposition
from kit.identifiers import CreditCode
from kit.pagination import Page, PageParamsDep
from kit.storage import receive_upload
from kit.xlsxio import XLSX_MEDIA_TYPE

router = APIRouter(prefix="/api/v1")
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="`*` on a create-or-replace PUT: create only, 412 when it exists already.",
    ),
]
ReferenceKey = Annotated[str, Path(pattern=KEY_PATTERN)]
FilterYear = Annotated[int | None, Query(ge=1990, le=2100)]
CREATED: dict[int | str, dict[str, Any]] = {201: {"description": "Created"}}


@router.get("/regions", tags=["regions"], summary="The configured counties and districts")
async def list_regions(_: Reader, catalogue: CatalogueDep) -> Page[Region]:
    return Page[Region](items=list(catalogue.regions))


@router.get("/target-sets", tags=["target sets"], summary="Every year's target-set versions")
async def list_target_sets(
    session: SessionDep, _: Reader, page: PageParamsDep, year: FilterYear = None
) -> Page[TargetSetSummary]:
    return await service.list_target_sets(session=session, year=year, page=page)


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
    body: TargetSetCreate,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    catalogue: CatalogueDep,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> TargetSetRead:
    row, created = await service.put_target_set(
        session=session,
        year=year,
        body=body,
        actor=actor,
        catalogue=catalogue,
        if_match=if_match,
        if_none_match=if_none_match,
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
    writer: Writer,
    actor: ActorDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    response: Response,
) -> ReportedValueRead:
    row = await service.report_value(
        session=session,
        body=body,
        actor=actor,
        catalogue=catalogue,
        today=today,
        principal=writer,
    )
    response.headers["Location"] = f"/api/v1/reported-values/{row.id}"
    response.headers["ETag"] = service.reported_value_etag(row)
    return service.reported_value_read(row)


@router.get("/reported-values", tags=["reported values"], summary="Reported values")
async def list_reported_values(
    session: SessionDep,
    reader: Reader,
    catalogue: CatalogueDep,
    page: PageParamsDep,
    county_code: Annotated[County | None, Query()] = None,
    year: FilterYear = None,
    indicator: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    current: Annotated[bool | None, Query(description="only current (or superseded)")] = None,
    state: Annotated[ReviewState | None, Query(description="only values in this state")] = None,
) -> Page[ReportedValueRead]:
    return await service.list_reported_values(
        session=session,
        catalogue=catalogue,
        county_code=county_code,
        year=year,
        indicator=indicator,
        current=current,
        page=page,
        state=state,
        principal=reader,
    )


@router.get("/reported-values/{value_id}", tags=["reported values"], summary="One reported value")
async def get_reported_value(
    _: Reader, row: ReportedValueDep, response: Response
) -> ReportedValueRead:
    response.headers["ETag"] = service.reported_value_etag(row)
    return service.reported_value_read(row)


@router.post(
    "/reported-values/{value_id}/status",
    tags=["reported values"],
    summary="Accept or return a submitted value (assessments:review, never a county-bound "
    "client; If-Match; a return needs a comment)",
)
async def review_reported_value(
    body: ReviewCreate,
    session: SessionDep,
    _: Reviewer,
    row: ReportedValueDep,
    actor: ActorDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReportedValueRead:
    row = await service.review_value(
        session=session, row=row, body=body, actor=actor, if_match=if_match
    )
    response.headers["ETag"] = service.reported_value_etag(row)
    return service.reported_value_read(row)


@router.get(
    "/reported-values/{value_id}/history",
    tags=["reported values"],
    summary="Every report of the value's county and indicator in its year, and each change",
)
async def reported_value_history(
    session: SessionDep, _: Reader, row: ReportedValueDep
) -> ReportedValueHistory:
    return await service.reported_value_history(session=session, row=row)


EVIDENCE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, JPEG, PNG, XLSX, DOCX or OFD (typed from "
                            "its content); at most ASSESSMENT_EVIDENCE_MAX_BYTES",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/reported-values/{value_id}/evidence",
    status_code=201,
    tags=["reported values"],
    summary="Attach an evidence file (multipart field `file`; 415 for another type, 413 over "
    "the limit)",
    openapi_extra=EVIDENCE_FORM,
)
async def attach_evidence(
    request: Request,
    session: SessionDep,
    writer: Writer,
    row: ReportedValueDep,
    actor: ActorDep,
    store: EvidenceStoreDep,
    settings: SettingsDep,
    response: Response,
) -> EvidenceRead:
    value_id = await service.before_upload(session=session, row=row, principal=writer)
    received = await receive_upload(
        request, limit=settings.evidence_max_bytes, directory=settings.evidence_upload_dir
    )
    try:
        evidence = await service.attach_evidence(
            session=session,
            value_id=value_id,
            principal=writer,
            received=received,
            store=store,
            actor=actor,
        )
    finally:
        received.discard()
    response.headers["Location"] = service.evidence_url(evidence)
    return service.evidence_read(evidence)


@router.get(
    "/reported-values/{value_id}/evidence",
    tags=["reported values"],
    summary="The evidence files of a reported value",
)
async def list_evidence(
    session: SessionDep, _: Reader, row: ReportedValueDep, page: PageParamsDep
) -> Page[EvidenceRead]:
    return await service.list_evidence(session=session, row=row, page=page)


@router.get(
    "/reported-values/{value_id}/evidence/{evidence_id}",
    tags=["reported values"],
    summary="Download one evidence file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_evidence(
    evidence_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
    _: Reader,
    row: ReportedValueDep,
    store: EvidenceStoreDep,
) -> StreamingResponse:
    evidence, size = await service.get_evidence(
        session=session, row=row, evidence_id=evidence_id, store=store
    )
    return StreamingResponse(
        store.open(evidence.sha256),
        media_type=evidence.content_type,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": content_disposition(evidence.name),
            "ETag": f'"{evidence.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/assessments/{year}/worklist",
    tags=["reported values"],
    summary="One county's reported indicators of the year: state, figure, comment, due date",
)
async def get_worklist(
    year: Year,
    session: SessionDep,
    reader: Reader,
    catalogue: CatalogueDep,
    county_code: Annotated[
        County | None,
        Query(description="may be left out by a client bound to one county"),
    ] = None,
) -> Worklist:
    return await service.worklist(
        session=session,
        year=year,
        county_code=county_code,
        principal=reader,
        catalogue=catalogue,
    )


@router.get("/reference-values", tags=["reference values"], summary="Reference values")
async def list_reference_values(
    session: SessionDep,
    _: Reader,
    page: PageParamsDep,
    year: FilterYear = None,
    key: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
) -> Page[ReferenceValueRead]:
    return await service.list_reference_values(session=session, year=year, key=key, page=page)


@router.get(
    "/reference-values/{year}/{key}", tags=["reference values"], summary="One reference value"
)
async def get_reference_value(
    year: Year, key: ReferenceKey, session: SessionDep, _: Reader, response: Response
) -> ReferenceValueRead:
    row = await service.get_reference_value(session=session, year=year, key=key)
    response.headers["ETag"] = service.reference_value_etag(row)
    return service.reference_value_read(row)


@router.put(
    "/reference-values/{year}/{key}",
    tags=["reference values"],
    summary="Set a reference value",
    responses=CREATED,
)
async def put_reference_value(
    year: Year,
    key: ReferenceKey,
    body: ReferenceValueCreate,
    session: SessionDep,
    _: Writer,
    actor: ActorDep,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> ReferenceValueRead:
    row, created = await service.put_reference_value(
        session=session,
        year=year,
        key=key,
        body=body,
        actor=actor,
        if_match=if_match,
        if_none_match=if_none_match,
    )
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/api/v1/reference-values/{year}/{key}"
    response.headers["ETag"] = service.reference_value_etag(row)
    return service.reference_value_read(row)


XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
}
ExportFormat = Annotated[
    Literal["json", "xlsx"], Query(description="`xlsx`: the same as a workbook to download")
]


def _workbook(content: bytes, name: str) -> Response:
    return Response(
        content,
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(f"{name}.xlsx")},
    )


@router.get(
    "/assessments/{year}/standings",
    response_model=StandingsRead,
    tags=["standings"],
    summary="Every county's standing and the city roll-up, computed now (`?format=xlsx`: as a"
    " workbook with the explanations)",
    responses=XLSX_RESPONSE,
)
async def get_standings(
    year: Year,
    session: SessionDep,
    _: Reader,
    fetcher: FetcherDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    as_of: Annotated[date | None, Query(description="default: today, or 31 December")] = None,
    format: ExportFormat = "json",
) -> Any:
    result = await service.standings(
        session=session,
        fetcher=fetcher,
        year=year,
        as_of=as_of,
        today=today,
        catalogue=catalogue,
    )
    if format == "xlsx":
        return _workbook(service.standings_xlsx(result), f"{year}年度考核排名")
    return strip_explanations(result)


@router.get(
    "/assessments/{year}/standings/{county_code}",
    response_model=CountyStandingRead,
    tags=["standings"],
    summary="One county's standing with every figure explained",
)
async def get_county_standing(
    year: Year,
    county_code: Annotated[County, Path()],
    session: SessionDep,
    _: Reader,
    fetcher: FetcherDep,
    catalogue: CatalogueDep,
    today: TodayDep,
    as_of: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    return await service.county_standing(
        session=session,
        fetcher=fetcher,
        year=year,
        county_code=county_code,
        as_of=as_of,
        today=today,
        catalogue=catalogue,
    )


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
    catalogue: CatalogueDep,
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
        catalogue=catalogue,
    )
    response.headers["Location"] = f"/api/v1/assessments/{year}/runs/{run.id}"
    response.headers["ETag"] = service.run_etag(run)
    return service.run_read(run)


@router.get("/assessments/{year}/runs", tags=["runs"], summary="The year's runs")
async def list_runs(
    year: Year,
    session: SessionDep,
    _: Reader,
    page: PageParamsDep,
    status: Annotated[str | None, Query(pattern="^(draft|published)$")] = None,
) -> Page[RunSummary]:
    return await service.list_runs(session=session, year=year, status=status, page=page)


@router.get(
    "/assessments/{year}/runs/{run_id}",
    tags=["runs"],
    summary="One run (`?format=xlsx`: its ranking, one sheet per indicator, the explanations)",
    response_model=RunRead,
    responses=XLSX_RESPONSE,
)
async def get_run(_: Reader, run: RunDep, response: Response, format: ExportFormat = "json") -> Any:
    if format == "xlsx":
        workbook = _workbook(service.standings_xlsx(run.standings), f"{run.year}年度考核-{run.id}")
        workbook.headers["ETag"] = service.run_etag(run)
        return workbook
    response.headers["ETag"] = service.run_etag(run)
    return service.run_read(run)


@router.get(
    "/assessments/{year}/runs/{run_id}/report.pdf",
    tags=["runs"],
    summary="The year-end report of a run (考核結果通報) as an A4 PDF; a draft is watermarked",
    response_class=Response,
    responses={
        200: {
            "description": "The report",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def run_report(_: Reader, run: RunDep, settings: SettingsDep) -> Response:
    pdf = await service.run_report_pdf(run, font=settings.report_font)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition(f"{run.year}年度考核結果通報-{run.id}.pdf"),
            "ETag": service.run_etag(run),
        },
    )


@router.post(
    "/assessments/{year}/runs/{run_id}/publish",
    tags=["runs"],
    summary="Freeze a year-end run (refused while a source is incomplete or a county is not "
    "assessed; a year's second publication supersedes the first by name, with a reason)",
)
async def publish_run(
    session: SessionDep,
    _: Publisher,
    run: RunDep,
    actor: ActorDep,
    response: Response,
    if_match: IfMatch = None,
    body: RunPublish | None = None,
) -> RunRead:
    run = await service.publish_run(
        session=session, run=run, actor=actor, if_match=if_match, body=body
    )
    response.headers["ETag"] = service.run_etag(run)
    return service.run_read(run)


@router.get("/audit-entries", tags=["audit"], summary="The append-only log of changes")
async def list_audit_entries(
    session: SessionDep,
    reader: Reader,
    page: PageParamsDep,
    entity: Annotated[
        str | None, Query(pattern="^(target_set|reported_value|reference_value|run)$")
    ] = None,
    entity_id: Annotated[str | None, Query(max_length=80)] = None,
    year: FilterYear = None,
) -> Page[AssessmentHistoryRead]:
    return await service.list_history(
        session=session,
        entity=entity,
        entity_id=entity_id,
        year=year,
        page=page,
        principal=reader,
    )


@router.get(
    "/enterprises",
    tags=["enterprises"],
    summary="Enterprises by name or credit-code prefix, across the three data services",
)
async def search_enterprises(
    principal: EnterpriseReader,
    fetcher: FetcherDep,
    today: TodayDep,
    q: Annotated[
        str,
        Query(max_length=100, description="At least 2 characters: a name's text or a code's start"),
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> EnterpriseSearchRead:
    found = await enterprises.search(
        fetcher=fetcher, principal=principal, q=q, limit=limit, today=today
    )
    return EnterpriseSearchRead.model_validate(found)


@router.get(
    "/enterprises/{credit_code}",
    tags=["enterprises"],
    summary="Every brand listing, certificate and spot-check of one enterprise, with its alerts",
    response_model=EnterpriseRead,
)
async def get_enterprise(
    credit_code: Annotated[CreditCode, Path()],
    principal: EnterpriseReader,
    fetcher: FetcherDep,
    today: TodayDep,
) -> Response:
    view, omitted = await enterprises.enterprise_view(
        fetcher=fetcher, principal=principal, credit_code=credit_code, today=today
    )
    body = EnterpriseRead.model_validate(view).model_dump_json(exclude=omitted)
    return Response(body, media_type="application/json")
