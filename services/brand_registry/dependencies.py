"""Dependencies of the brand_registry routes, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brand_registry import service
from brand_registry.catalogue import Catalogue
from brand_registry.models import Award, Brand
from brand_registry.schemas import AwardFilters, ListingFilters
from brand_registry.settings import Settings
from kit.app import app_catalogue
from kit.auth import CurrentPrincipal, Principal, require_scope
from kit.db import SessionDep

Reader = Annotated[Principal, Depends(require_scope("brands:read"))]
Writer = Annotated[Principal, Depends(require_scope("brands:write"))]
Flagger = Annotated[Principal, Depends(require_scope("brands:flag"))]

CatalogueDep = Annotated[Catalogue, Depends(app_catalogue)]


async def today(request: Request) -> date:
    """The bureau's current date, which decides expiry."""
    settings: Settings = request.app.state.settings
    return settings.today()


TodayDep = Annotated[date, Depends(today)]


async def stream_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session that lasts until the response is sent, for a streamed export (its
    server-side cursor needs a transaction, which is rolled back at the end)."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


StreamSession = Annotated[AsyncSession, Depends(stream_session, scope="request")]


async def valid_brand(
    session: SessionDep,
    principal: CurrentPrincipal,
    brand_id: Annotated[str, Path(max_length=36)],
) -> Brand:
    """The listing named in the path; 404 otherwise, and for a listing of a county the
    caller may not read."""
    return await service.get_listing(session=session, brand_id=brand_id, principal=principal)


BrandDep = Annotated[Brand, Depends(valid_brand)]


async def writable_brand(
    session: SessionDep, brand_id: Annotated[str, Path(max_length=36)]
) -> Brand:
    """The listing named in the path for a change; 404 otherwise. A listing of a county the
    caller is not bound to is the service's 403 naming `county_code`, as any write there."""
    return await service.get_listing(session=session, brand_id=brand_id)


WritableBrandDep = Annotated[Brand, Depends(writable_brand)]


Model = TypeVar("Model", bound=BaseModel)


def _validated_query(model: type[Model], request: Request) -> Model:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None


async def listing_filters(request: Request) -> ListingFilters:
    """The filters shared by the list and the export, read from the query string.

    Validated by the model in one pass: FastAPI's per-parameter handling of thirteen optional
    filters costs more than the page's database round trip. `LISTING_QUERY_DOCS` puts the
    parameters back into the OpenAPI document.
    """
    return _validated_query(ListingFilters, request)


async def award_filters(request: Request) -> AwardFilters:
    """The award list's filters, read from the query string like the listings'."""
    return _validated_query(AwardFilters, request)


def _query_docs(model: type[BaseModel] = ListingFilters) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    parameters = []
    for name, field in schema["properties"].items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if "description" in field:
            parameter["description"] = field.pop("description")
        parameter["schema"] = field
        parameters.append(parameter)
    return {"parameters": parameters}


LISTING_QUERY_DOCS = _query_docs()
FiltersDep = Annotated[ListingFilters, Depends(listing_filters)]
AWARD_QUERY_DOCS = _query_docs(AwardFilters)
AwardFiltersDep = Annotated[AwardFilters, Depends(award_filters)]


async def valid_award(
    session: SessionDep,
    principal: CurrentPrincipal,
    award_id: Annotated[str, Path(max_length=36)],
) -> Award:
    """The award named in the path; 404 otherwise, and for an award of a county the caller
    may not read."""
    return await service.get_award(session=session, award_id=award_id, principal=principal)


AwardDep = Annotated[Award, Depends(valid_award)]


async def writable_award(
    session: SessionDep, award_id: Annotated[str, Path(max_length=36)]
) -> Award:
    """The award named in the path for a change; 404 otherwise (a county outside the
    caller's binding is the service's 403 naming `county_code`)."""
    return await service.get_award(session=session, award_id=award_id)


WritableAwardDep = Annotated[Award, Depends(writable_award)]
