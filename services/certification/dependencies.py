"""Annotated dependencies of the certification routes."""

from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certification import service
from certification.catalogue import Catalogue
from certification.models import Certificate
from certification.settings import Settings
from kit.app import app_catalogue, app_settings
from kit.auth import CurrentPrincipal, Principal, require_scope
from kit.db import SessionDep

CatalogueDep = Annotated[Catalogue, Depends(app_catalogue)]


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_today(settings: SettingsDep) -> date:
    """Today in the bureau's time zone, once per request."""
    return settings.today()


TodayDep = Annotated[date, Depends(get_today)]


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Sessions of their own, for a response streamed after the request's session closed."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]

Reader = Annotated[Principal, Depends(require_scope("certificates:read"))]
Writer = Annotated[Principal, Depends(require_scope("certificates:write"))]
AnyCaller = CurrentPrincipal


async def visible_certificate(
    certificate_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Certificate:
    """The certificate named in the path, or 404 when absent or hidden from the caller."""
    return await service.get_visible(
        session=session, certificate_id=certificate_id, principal=principal
    )


CertificateDep = Annotated[Certificate, Depends(visible_certificate)]


async def writable_certificate(
    certificate_id: str, session: SessionDep, principal: CurrentPrincipal
) -> Certificate:
    """The certificate named in the path for a change; 404 when absent or hidden from the
    caller. One of a county the caller is not bound to is the service's 403 naming
    `county_code`, as any write there."""
    return await service.get_visible(
        session=session, certificate_id=certificate_id, principal=principal, for_write=True
    )


WritableCertificateDep = Annotated[Certificate, Depends(writable_certificate)]
