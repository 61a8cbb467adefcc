"""Dependencies of the brand_registry routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from brand_registry import service
from brand_registry.models import Brand
from brand_registry.repository import ListingFilters
from brand_registry.schemas import ListingQuery
from brand_registry.service import Rules
from kit.auth import Principal, require_scope
from kit.db import SessionDep

Reader = Annotated[Principal, Depends(require_scope("brands:read"))]
Writer = Annotated[Principal, Depends(require_scope("brands:write"))]
Flagger = Annotated[Principal, Depends(require_scope("brands:flag"))]


async def current_rules(request: Request) -> Rules:
    """The tier policy table, the configured regions and today's date."""
    state = request.app.state
    return Rules(
        policies=state.tier_policies, regions=state.region_codes, today=state.settings.today()
    )


RulesDep = Annotated[Rules, Depends(current_rules)]


async def valid_brand(session: SessionDep, brand_id: Annotated[str, Path(max_length=36)]) -> Brand:
    """The listing named in the path; 404 otherwise."""
    return await service.get_listing(session=session, brand_id=brand_id)


BrandDep = Annotated[Brand, Depends(valid_brand)]


async def listing_filters(query: Annotated[ListingQuery, Query()]) -> ListingFilters:
    """The filters shared by the list and the export."""
    return ListingFilters(**query.model_dump())


FiltersDep = Annotated[ListingFilters, Depends(listing_filters)]
