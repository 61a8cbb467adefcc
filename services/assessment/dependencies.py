"""Annotated dependencies of the assessment routes."""

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from assessment.service import Actor
from assessment.settings import Settings
from assessment.sources import StatsFetcher
from kit.auth import CurrentPrincipal, Principal, require_scope

Reader = Annotated[Principal, Depends(require_scope("assessments:read"))]
Writer = Annotated[Principal, Depends(require_scope("assessments:write"))]
Publisher = Annotated[Principal, Depends(require_scope("assessments:publish"))]
Year = Annotated[int, Path(ge=1990, le=2100, description="The assessed year.")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_fetcher(request: Request) -> StatsFetcher:
    fetcher: StatsFetcher = request.app.state.stats_fetcher
    return fetcher


def get_regions(request: Request) -> list[dict[str, str]]:
    """The configured counties and districts."""
    return get_settings(request).regions()


def get_defaults(request: Request) -> dict[str, Any]:
    """Grade bands and thresholds from configuration."""
    return get_settings(request).assessment_rules()


def get_today() -> date:
    return date.today()


async def get_actor(request: Request, principal: CurrentPrincipal) -> Actor:
    """The calling client, named in the audit log."""
    request_id = request.scope.get("state", {}).get("request_id")
    return Actor(name=principal.client_id, request_id=request_id)


SettingsDep = Annotated[Settings, Depends(get_settings)]
FetcherDep = Annotated[StatsFetcher, Depends(get_fetcher)]
RegionsDep = Annotated[list[dict[str, str]], Depends(get_regions)]
DefaultsDep = Annotated[dict[str, Any], Depends(get_defaults)]
TodayDep = Annotated[date, Depends(get_today)]
ActorDep = Annotated[Actor, Depends(get_actor)]
