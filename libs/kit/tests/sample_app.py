"""A small service built with the kit, used to test the kit's pieces through HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Response
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, col

from kit.app import ServiceSpec, create_app
from kit.auth import Principal, require_scope
from kit.concurrency import check_if_match, make_etag
from kit.db import EngineDep, ReadSessionDep, SessionDep, fetch_rows, new_registry, version_column
from kit.errors import NotFound
from kit.hotpaths import HotAnswer, HotRequest, HotRoute
from kit.idempotency import idempotency_table
from kit.identifiers import CountyCode, CreditCode, new_id
from kit.pagination import Page, PageParams, PageParamsDep, paginate
from kit.settings import ServiceSettings

registry = new_registry()
metadata = registry.metadata
idempotency_record = idempotency_table(metadata)


class Base(SQLModel, registry=registry):
    pass


_version = version_column()


class Widget(Base, table=True):
    __tablename__ = "widget"

    id: str = SQLField(primary_key=True, max_length=36)
    name: str = SQLField(unique=True, max_length=100)
    color: str = SQLField(max_length=20, index=True)
    version: int = SQLField(default=1, sa_column=_version)

    __mapper_args__: ClassVar = {"version_id_col": _version}


class WidgetCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    color: str = Field(min_length=1, max_length=20)
    county_code: CountyCode | None = None
    enterprise_credit_code: CreditCode | None = None


class WidgetUpdate(BaseModel):
    color: str = Field(min_length=1, max_length=20)


class WidgetRead(BaseModel):
    id: str
    name: str
    color: str
    version: int


class SampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLE_", extra="ignore")
    service_name: ClassVar[str] = "sample"


router = APIRouter(prefix="/api/v1")
Writer = Annotated[Principal, Depends(require_scope("widgets:write"))]
Reader = Annotated[Principal, Depends(require_scope("widgets:read"))]


@router.post("/widgets", status_code=201)
async def create_widget(
    body: WidgetCreate, session: SessionDep, _: Writer, response: Response
) -> WidgetRead:
    widget = Widget(id=new_id(), name=body.name, color=body.color)
    session.add(widget)
    await session.flush()
    response.headers["Location"] = f"/api/v1/widgets/{widget.id}"
    response.headers["ETag"] = make_etag(widget.id, widget.version)
    return WidgetRead.model_validate(widget, from_attributes=True)


@router.get("/widgets")
async def list_widgets(
    session: SessionDep, _: Reader, page: PageParamsDep, color: str | None = None
) -> Page[WidgetRead]:
    query = select(Widget)
    if color:
        query = query.where(col(Widget.color) == color)
    rows = await paginate(session, query, params=page, keys=[col(Widget.id)])
    return rows.map(lambda w: WidgetRead.model_validate(w, from_attributes=True))


@router.get("/widgets-by-name")
async def widgets_by_name(
    session: SessionDep, _: Reader, page: PageParamsDep
) -> Page[dict[str, str]]:
    """Newest name first, two keys, rows as mappings: the other shapes `paginate` serves."""
    query = select(col(Widget.name), col(Widget.color), col(Widget.id))
    rows = await paginate(
        session,
        query,
        params=page,
        keys=[col(Widget.color), col(Widget.name)],
        descending=True,
        mappings=True,
    )
    return rows.map(lambda row: {"name": row["name"], "color": row["color"]})


_widget = Widget.__table__.c  # type: ignore[attr-defined]
_WIDGETS_OF_COLOR = select(_widget.name, _widget.color, _widget.id).where(
    _widget.color == bindparam("color")
)
"""Built once, its filter bound by name: the shape the data services keep their lists in."""


async def _widgets_of_color(
    source: AsyncSession | AsyncEngine, page: PageParams, color: str
) -> Page[dict[str, str]]:
    rows = await paginate(
        source,
        _WIDGETS_OF_COLOR,
        params=page,
        keys=[_widget.id],
        values={"color": color},
        mappings=True,
    )
    return rows.map(lambda row: {"name": row["name"], "color": row["color"]})


@router.get("/widgets-of-color")
async def widgets_of_color(
    session: ReadSessionDep, _: Reader, page: PageParamsDep, color: str
) -> Page[dict[str, str]]:
    return await _widgets_of_color(session, page, color)


@router.get("/widgets-of-color-on-engine")
async def widgets_of_color_on_engine(
    engine: EngineDep, _: Reader, page: PageParamsDep, color: str
) -> Page[dict[str, str]]:
    """The same list paged on the engine (`fetch_rows`)."""
    return await _widgets_of_color(engine, page, color)


@router.get("/widgets-by-version")
async def widgets_by_version(session: SessionDep, _: Reader, version: int) -> list[WidgetRead]:
    query = select(Widget).where(col(Widget.version) == version)
    return [
        WidgetRead.model_validate(w, from_attributes=True)
        for w in (await session.execute(query)).scalars()
    ]


async def _get(session: SessionDep, widget_id: str) -> Widget:
    widget = await session.get(Widget, widget_id)
    if widget is None:
        raise NotFound(f"No widget with id {widget_id!r}.")
    return widget


@router.get("/widgets/{widget_id}")
async def get_widget(
    widget_id: str, session: SessionDep, _: Reader, response: Response
) -> WidgetRead:
    widget = await _get(session, widget_id)
    response.headers["ETag"] = make_etag(widget.id, widget.version)
    return WidgetRead.model_validate(widget, from_attributes=True)


@router.patch("/widgets/{widget_id}")
async def update_widget(
    widget_id: str,
    body: WidgetUpdate,
    session: SessionDep,
    _: Writer,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> WidgetRead:
    widget = await _get(session, widget_id)
    check_if_match(if_match, make_etag(widget.id, widget.version))
    widget.color = body.color
    await session.flush()
    response.headers["ETag"] = make_etag(widget.id, widget.version)
    return WidgetRead.model_validate(widget, from_attributes=True)


_WIDGET_ROW = select(_widget.id, _widget.name, _widget.color, _widget.version).where(
    _widget.id == bindparam("id")
)


async def widget_row(engine: AsyncEngine, widget_id: str) -> WidgetRead:
    rows = await fetch_rows(engine, _WIDGET_ROW, {"id": widget_id})
    if not rows:
        raise NotFound(f"No widget with id {widget_id!r}.")
    return WidgetRead.model_validate(rows[0]._asdict())


_WIDGET_COUNT = select(func.count()).select_from(Widget)


@router.get("/widget-rows/count")
async def count_widget_rows(engine: EngineDep, _: Reader) -> dict[str, int]:
    """A path the hot route's template would match, which FastAPI routes elsewhere."""
    return {"count": (await fetch_rows(engine, _WIDGET_COUNT))[0][0]}


@router.get("/widget-rows/{widget_id}")
async def get_widget_row(
    widget_id: str, engine: EngineDep, _: Reader, response: Response
) -> WidgetRead:
    """A widget by id, read with `fetch_rows`; its usual case is a hot route."""
    item = await widget_row(engine, widget_id)
    response.headers["ETag"] = make_etag(item.id, item.version)
    return item


async def _widget_row_usual(request: HotRequest) -> HotAnswer | None:
    if request.query(frozenset()) is None or request.path_value is None:
        return None
    if await request.principal("widgets:read") is None:
        return None
    item = await widget_row(request.state.engine, request.path_value)
    return HotAnswer.of(item, etag=make_etag(item.id, item.version))


@router.get("/boom")
async def boom(fail: Annotated[str, Query()] = "runtime") -> None:
    raise RuntimeError("SELECT password FROM secrets -- internal detail")


SPEC = ServiceSpec(
    name="sample",
    title="Sample",
    description="Kit test service",
    version="0.0.0",
    routers=[router],
    migrations=Path(__file__).parent / "sample_migrations",
    version_table="sample_alembic_version",
    idempotency_table=idempotency_record,
    hot_routes=[HotRoute("/api/v1/widget-rows/{widget_id}", _widget_row_usual)],
)


def build_app(settings: SampleSettings) -> FastAPI:
    return create_app(SPEC, settings)
