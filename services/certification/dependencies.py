"""Annotated dependencies of the certification routes."""

from typing import Annotated

from fastapi import Depends, Request

from certification import service
from certification.catalogue import Config
from certification.models import Certificate
from kit.auth import CurrentPrincipal, Principal, require_scope
from kit.db import SessionDep


def get_config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


ConfigDep = Annotated[Config, Depends(get_config)]
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
