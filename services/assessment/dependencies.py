"""Annotated dependencies of the assessment routes."""

from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Request

from assessment import service
from assessment.catalogue import Catalogue
from assessment.models import AssessmentRun, ReportedValue
from assessment.service import Actor
from assessment.settings import Settings
from assessment.sources import StatsFetcher
from kit.app import app_catalogue, app_settings
from kit.auth import CurrentPrincipal, Principal, require_scope
from kit.db import SessionDep
from kit.errors import Forbidden, request_id_of
from kit.storage import BlobStore

Reader = Annotated[Principal, Depends(require_scope("assessments:read"))]
Writer = Annotated[Principal, Depends(require_scope("assessments:write"))]
Publisher = Annotated[Principal, Depends(require_scope("assessments:publish"))]
EnterpriseReader = Annotated[Principal, Depends(require_scope("enterprises:read"))]
REVIEW_SCOPE = "assessments:review"


async def require_reviewer(
    principal: Annotated[Principal, Depends(require_scope(REVIEW_SCOPE))],
) -> Principal:
    """A reviewer of reported values: the scope, and never a client bound to counties (who
    would review its own figures)."""
    if principal.bound:
        raise Forbidden(
            "A client bound to counties may not review reported values, whatever its scopes.",
            required_scope=REVIEW_SCOPE,
        )
    return principal


Reviewer = Annotated[Principal, Depends(require_reviewer)]
Year = Annotated[int, Path(ge=1990, le=2100, description="The assessed year.")]
CatalogueDep = Annotated[Catalogue, Depends(app_catalogue)]
SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_fetcher(request: Request) -> StatsFetcher:
    """The app's client of the data services' `/stats` endpoints."""
    fetcher: StatsFetcher = request.app.state.stats_fetcher
    return fetcher


def get_today() -> date:
    return date.today()


async def get_actor(request: Request, principal: CurrentPrincipal) -> Actor:
    """The calling client, named in the history."""
    return Actor(name=principal.client_id, request_id=request_id_of(request))


async def run_of_year(year: Year, run_id: str, session: SessionDep) -> AssessmentRun:
    """The run named in the path, or 404 when the year has no such run."""
    return await service.get_run(session=session, year=year, run_id=run_id)


async def reported_value_of(
    value_id: str, session: SessionDep, principal: CurrentPrincipal
) -> ReportedValue:
    """The value named in the path; 404 when there is none or it is of a county the client
    does not read."""
    return await service.get_reported_value(session=session, value_id=value_id, principal=principal)


def get_evidence_store(request: Request) -> BlobStore:
    """The app's store of evidence files."""
    store: BlobStore = request.app.state.evidence_store
    return store


FetcherDep = Annotated[StatsFetcher, Depends(get_fetcher)]
TodayDep = Annotated[date, Depends(get_today)]
ActorDep = Annotated[Actor, Depends(get_actor)]
RunDep = Annotated[AssessmentRun, Depends(run_of_year)]
ReportedValueDep = Annotated[ReportedValue, Depends(reported_value_of)]
EvidenceStoreDep = Annotated[BlobStore, Depends(get_evidence_store)]
