"""Dependencies of the brand_registry routes, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection for a read made of one statement, which needs no transaction of its own:
    it saves the BEGIN and COMMIT round trips a session would add to every list page."""
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


ReadConnection = Annotated[AsyncConnection, Depends(read_connection)]


async def valid_brand(session: SessionDep, brand_id: Annotated[str, Path(max_length=36)]) -> Brand:
    """The listing named in the path; 404 otherwise."""
    return await service.get_listing(session=session, brand_id=brand_id)


BrandDep = Annotated[Brand, Depends(valid_brand)]


async def listing_filters(request: Request) -> ListingFilters:
    """The filters shared by the list and the export, read from the query string.

    Validated by the model in one pass: FastAPI's per-parameter handling of thirteen optional
    filters costs more than the page's database round trip. `LISTING_QUERY_DOCS` puts the
    parameters back into the OpenAPI document.
    """
    try:
        query = ListingQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None
    return ListingFilters(**query.model_dump())


def _query_docs() -> dict[str, Any]:
    schema = ListingQuery.model_json_schema(ref_template="#/components/schemas/{model}")
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
