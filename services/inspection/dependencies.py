"""Annotated dependencies of the inspection routes."""

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request

from inspection import service
from inspection.catalogue import Catalogue
from inspection.models import SpotCheck
from inspection.schemas import Level, Result, SpotCheckFilters
from inspection.settings import Settings
from kit.app import app_catalogue, app_settings
from kit.auth import CurrentPrincipal, Principal, require_scope
from kit.db import SessionDep
from kit.errors import FieldError, Forbidden, ValidationFailed, request_id_of
from kit.identifiers import CountyCode, CreditCode

READ_SCOPE = "spot-checks:read"
WRITE_SCOPE = "spot-checks:write"
UNPUBLISHED_SCOPE = "spot-checks:read-unpublished"
"""Lets a reader that writes nothing (the assessment service, for a caller holding the write
scope) ask for results before their bulletin."""


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_today(settings: SettingsDep) -> date:
    """The bureau's calendar day, against which bulletin and sampling dates are compared."""
    return settings.today()


def may_read(principal: Principal) -> bool:
    """Whether the caller may read spot-checks: the read scope, or the write scope."""
    return principal.has(READ_SCOPE) or principal.has(WRITE_SCOPE)


async def reader(principal: CurrentPrincipal) -> Principal:
    """Callers that may read spot-checks (`may_read`)."""
    if not may_read(principal):
        raise Forbidden(
            f"This operation needs the scope {READ_SCOPE!r}.", required_scope=READ_SCOPE
        )
    return principal


async def get_request_id(request: Request) -> str | None:
    """The request's ID, which the notices it causes carry on to the brand registry."""
    return request_id_of(request)


CatalogueDep = Annotated[Catalogue, Depends(app_catalogue)]
RequestIdDep = Annotated[str | None, Depends(get_request_id)]
TodayDep = Annotated[date, Depends(get_today)]
Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]


def unpublished_allowed(principal: Principal, include_unpublished: bool) -> bool:
    """Writers (and holders of the unpublished-read scope) may ask for embargoed results;
    anyone else asking is refused."""
    if include_unpublished and not (principal.has(WRITE_SCOPE) or principal.has(UNPUBLISHED_SCOPE)):
        raise Forbidden(
            "Only clients with 'spot-checks:write' see results before their bulletin.",
            field="include_unpublished",
            required_scope=WRITE_SCOPE,
        )
    return include_unpublished


def embargo_of(principal: Principal, today: date) -> service.Embargo:
    """What the caller may see of one spot-check: a writer everything, anyone else what
    is published."""
    return service.Embargo(today=today, lifted=principal.has(WRITE_SCOPE))


async def caller_embargo(principal: Reader, today: TodayDep) -> service.Embargo:
    """The caller's `embargo_of` today."""
    return embargo_of(principal, today)


EmbargoDep = Annotated[service.Embargo, Depends(caller_embargo)]


async def valid_spot_check(
    spot_check_id: str, session: SessionDep, embargo: EmbargoDep, principal: Reader
) -> SpotCheck:
    """The spot-check named in the path; embargoed results exist only for writers, those of
    a county outside the caller's readable counties for no one."""
    return await service.visible_spot_check(
        session=session, spot_check_id=spot_check_id, embargo=embargo, principal=principal
    )


SpotCheckDep = Annotated[SpotCheck, Depends(valid_spot_check)]


async def writable_spot_check(
    spot_check_id: str, session: SessionDep, embargo: EmbargoDep
) -> SpotCheck:
    """The spot-check named in the path for a correction. One of a county the caller is not
    bound to is the service's 403 naming `county_code`, as any write there."""
    return await service.visible_spot_check(
        session=session, spot_check_id=spot_check_id, embargo=embargo
    )


WritableSpotCheckDep = Annotated[SpotCheck, Depends(writable_spot_check)]


async def spot_check_filters(
    principal: Reader,
    catalogue: CatalogueDep,
    plan_code: Annotated[str | None, Query(max_length=64)] = None,
    level: Level | None = None,
    county_code: CountyCode | None = None,
    product_category: Annotated[str | None, Query(max_length=32)] = None,
    result: Result | None = None,
    sampled_from: date | None = None,
    sampled_to: date | None = None,
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
    q: Annotated[str | None, Query(max_length=100, description="Text search")] = None,
    include_unpublished: bool = False,
    programme: Annotated[
        str | None,
        Query(max_length=200, description="Comma-separated, e.g. metrology,food_safety"),
    ] = None,
    equipment_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> SpotCheckFilters:
    """The list and export filters, each checked as a record's field is."""
    programmes = service.parse_programmes(programme)
    errors: list[FieldError] = []
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        errors.append(FieldError("county_code", error))
    if product_category is not None and (error := catalogue.category_error(product_category)):
        errors.append(FieldError("product_category", error))
    if sampled_from and sampled_to and sampled_from > sampled_to:
        errors.append(FieldError("sampled_to", "must not be before sampled_from"))
    if errors:
        raise ValidationFailed(errors)
    return SpotCheckFilters(
        plan_code=plan_code.strip() if plan_code else None,
        level=level,
        county_code=county_code,
        product_category=product_category,
        result=result,
        sampled_from=sampled_from,
        sampled_to=sampled_to,
        enterprise_credit_code=enterprise_credit_code,
        enterprise_credit_code_prefix=(
            enterprise_credit_code_prefix.upper() if enterprise_credit_code_prefix else None
        ),
        q=q.strip() if q and q.strip() else None,
        include_unpublished=unpublished_allowed(principal, include_unpublished),
        county_codes=principal.readable_counties(),
        programmes=programmes,
        equipment_code=equipment_code.strip() if equipment_code else None,
    )


FiltersDep = Annotated[SpotCheckFilters, Depends(spot_check_filters)]
