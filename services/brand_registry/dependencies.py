"""Dependencies of the brand_registry routes, as `Annotated` aliases."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from brand_registry import service
from brand_registry.models import Brand
from brand_registry.repository import ListingFilters
from brand_registry.schemas import AwardKind, BrandStatus, Sector, Tier
from brand_registry.service import Rules
from kit.auth import Principal, require_scope
from kit.db import SessionDep
from kit.identifiers import CountyCode, CreditCode

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


async def listing_filters(
    county_code: CountyCode | None = None,
    tier: Tier | None = None,
    sector: Sector | None = None,
    status: Annotated[
        BrandStatus | None, Query(description="Status on `as_of` (default today).")
    ] = None,
    as_of: date | None = None,
    award_kind: AwardKind | None = None,
    awarded_from: date | None = None,
    awarded_to: date | None = None,
    enterprise_credit_code: CreditCode | None = None,
    international_standard: bool | None = None,
    review_required: bool | None = None,
    batch_code: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1, max_length=100, description="Text in product, brand or enterprise name."
        ),
    ] = None,
) -> ListingFilters:
    """The filters shared by the list and the export."""
    return ListingFilters(
        county_code=county_code,
        tier=tier.value if tier else None,
        sector=sector.value if sector else None,
        status=status.value if status else None,
        as_of=as_of,
        award_kind=award_kind.value if award_kind else None,
        awarded_from=awarded_from,
        awarded_to=awarded_to,
        enterprise_credit_code=enterprise_credit_code,
        international_standard=international_standard,
        review_required=review_required,
        batch_code=batch_code,
        q=q,
    )


FiltersDep = Annotated[ListingFilters, Depends(listing_filters)]
