"""Async engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast
from weakref import WeakKeyDictionary

import asyncpg  # type: ignore[import-untyped]
import orjson
import structlog
from fastapi import Depends, Request
from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Executable,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InvalidRequestError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import registry as orm_registry
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from kit.waitline import WaitLine

logger = structlog.get_logger("kit.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


DATABASE_RETRY_AFTER_SECONDS = 5
"""What a 503 for an unreachable database tells the client to wait before retrying."""

# Driver errors that mean "the database is not there" rather than "this statement failed".
_UNAVAILABLE_CAUSES = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "ConnectionRejectionError",
    "InterfaceError",
    "TooManyConnectionsError",
    "AdminShutdownError",
    "CrashShutdownError",
    # asyncpg's own protocol state broken under a statement, seen as the server shut down
    # while a read was on its way ("another operation is in progress"): the connection is
    # unusable, and a retry on another one is what the 503's Retry-After invites.
    "InternalClientError",
}


def is_database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached (down, restarting, refusing or
    out of connections), as opposed to a statement it refused."""
    if isinstance(error, ConnectionError | PoolTimeoutError):
        return True
    if type(error).__name__ in _UNAVAILABLE_CAUSES:
        return True  # the driver's own error, from a statement made on the bare connection
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        causes = {type(error.orig).__name__, type(getattr(error.orig, "__cause__", None)).__name__}
        return bool(causes & _UNAVAILABLE_CAUSES) or isinstance(
            getattr(error.orig, "__cause__", None), ConnectionError
        )
    return False


class OutageLog:
    """Says once per outage that the database is unreachable (a warning, no traceback), not
    once per failed request; the next committed session ends the outage."""

    def __init__(self) -> None:
        self.down = False

    def report(self, error: BaseException, path: str | None) -> None:
        if not self.down:
            self.down = True
            logger.warning(
                "database_unavailable",
                error=type(error).__name__,
                reason=str(error).splitlines()[0][:200] if str(error) else "",
                path=path,
            )

    def recovered(self) -> None:
        if self.down:
            self.down = False
            logger.warning("database_available_again")


outage_log = OutageLog()


def new_registry() -> orm_registry:
    """A SQLAlchemy registry with its own metadata and the platform's naming convention."""
    return orm_registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def as_utc(value: datetime) -> datetime:
    """A stored timestamp as aware UTC: SQLite hands `DateTime(timezone=True)` back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


class _FirstComeQueue(AsyncAdaptedQueue[Any]):
    """The pool's queue of idle connections, first come first served: a connection given
    back while requests wait goes to the one that has waited longest.

    SQLAlchemy's own queue puts it in the queue and wakes a waiter, but a request arriving
    before that waiter runs takes it, and the waiter goes to the back of the line (see
    sqlalchemy/sqlalchemy#7679): under sustained load some requests waited many seconds
    while others were served at once.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._line: WaitLine[Any] = WaitLine()
        self.give_back: Callable[[Any], None] = self.put_nowait
        """How a connection comes back to the pool (set by `FirstComePool`)."""

    def put_nowait(self, item: Any) -> None:
        if not self._line.hand(item):
            super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block or not self._line.has_waiters:
            try:
                return self.get_nowait()
            except Empty:
                if not block:
                    raise
        return await_(self._line.wait(timeout, Empty, self.give_back))


class FirstComePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool, with requests waiting for a connection served in order.

    Kept for a measured figure: at c=64 on the brand list through the gateway
    (`bench/gateway_bench.py`, case (b), 2026-11-28) the brand registry's own access log showed
    a p99 of 3.9 s and a slowest request of 15.6 s with SQLAlchemy's pool, 0.32 s and 0.42 s
    with this one, at the same requests/s. It relies on three private hooks of SQLAlchemy's
    2.1 line (`_queue_class`, `_pool`, `_do_return_conn`), which is why the dependency is held
    to that line; `libs/kit/tests/test_db.py` fails loudly when they move.
    """

    _queue_class = _FirstComeQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Back through the pool, which closes a connection beyond its size.
        cast(_FirstComeQueue, self._pool).give_back = self._do_return_conn


POSTGRES_SESSION_SETTINGS = {"jit": "off"}
"""Set on every PostgreSQL connection the services open. The suite's queries are short OLTP
statements, yet a filtered certificate list over 100,000 rows passes `jit_above_cost`, and each
call then compiled 47 functions: 71.6 ms of SQL instead of 18.3 ms without JIT (PostgreSQL
15, `EXPLAIN ANALYZE` of the list's statement, 2026-12). JIT pays only for long analytical
queries, which these services do not run; a DBA may still enable it per role or database for
other clients, since this applies to the services' own connections only."""


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine for `url`, its waiting requests served in order (`FirstComePool`);
    SQLite files get WAL, foreign keys and a busy timeout. JSON columns are read with
    orjson: a certificate list page of 50 (two JSON columns a row) in 1,605–1,641 µs against
    1,685–1,709 with the standard library's parser, in the process on PostgreSQL
    (`bench/certification_bench.py`'s data, 2026-12-03)."""
    if is_sqlite(url):
        database = make_url(url).database
        in_file = bool(database) and database != ":memory:"
        if in_file:
            Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(
            url,
            echo=echo,
            json_deserializer=orjson.loads,
            connect_args={"timeout": 15},
            **({"poolclass": FirstComePool} if in_file else {}),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = _create_async_engine(
        url,
        echo=echo,
        poolclass=FirstComePool,
        pool_size=pool_size,
        max_overflow=pool_size,
        json_deserializer=orjson.loads,
        pool_recycle=1800,
        connect_args={"server_settings": POSTGRES_SESSION_SETTINGS},
    )
    event.listen(engine.sync_engine, "connect", _database_answered)
    event.listen(engine.sync_engine, "checkin", _mark_idle)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle for longer is pinged before it is handed out; one in steady use is
not. SQLAlchemy's `pool_pre_ping` pings at every checkout, and its ping on asyncpg is three
round trips (BEGIN, an empty statement, ROLLBACK): 5.6 % of a certificate verification's
server CPU (py-spy, `bench/certification_bench.py`, 2026-12-02). A connection lost while in
steady use fails its statement as a disconnect, which invalidates the pool's connections, and
the request answers 503 with Retry-After like any other outage."""
_IDLE_SINCE = "kit.idle_since"


def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that has been idle (the pool then replaces one that fails)."""
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise DisconnectionError("the idle connection did not answer its ping") from error


def _database_answered(_dbapi_connection: Any, _record: Any) -> None:
    """A new connection was made: whatever outage there was is over, however the process
    uses its sessions (the request's, a read-only one, a worker's)."""
    if outage_log.down:
        outage_log.recovered()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


HANDOVER = "kit.transaction_handover"
"""Where in the request's state a `TransactionHandover` waits for the session."""


class TransactionHandover:
    """Takes the request's session uncommitted, for middleware that commits it together with
    its own writes (the idempotency record) before the response leaves."""

    def __init__(self) -> None:
        self.session: AsyncSession | None = None

    async def discard(self) -> None:
        """Roll the handed-over work back (the request failed after its handler returned)."""
        if self.session is not None:
            session, self.session = self.session, None
            await session.rollback()
            await session.close()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the handler returns, rolled back when it raises
    (or handed over uncommitted to the middleware that asked for it)."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    handover = request.scope.get("state", {}).get(HANDOVER)
    session = sessionmaker()
    try:
        yield session
    except BaseException:
        await session.rollback()
        await session.close()
        raise
    if isinstance(handover, TransactionHandover):
        handover.session = session
        return
    try:
        await session.commit()
    finally:
        await session.close()
    if outage_log.down:
        outage_log.recovered()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@asynccontextmanager
async def read_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on a pooled connection of its own in autocommit, for reads that need no
    transaction (as `get_read_session` gives a route)."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection, autoflush=False) as session:
            yield session


async def read_concurrently(
    engine: AsyncEngine, *reads: Callable[[AsyncSession], Awaitable[Any]]
) -> list[Any]:
    """The answers of independent reads, each given a read session of its own: at once on
    PostgreSQL (each on its own connection, and so its own server process), one after the
    other elsewhere. Each statement sees the data as committed when it starts, as it would
    in a read-committed transaction of several statements. The certificate stats, two
    statements, took 65–68 ms a call with them one after the other on 100,000
    certificates, and 37–41 ms with them together (side by side on
    `bench/certification_bench.py`'s data, 2026-12-03)."""

    async def read(call: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with read_session(engine) as session:
            return await call(session)

    if engine.dialect.name != "postgresql":
        return [await read(call) for call in reads]
    return list(await asyncio.gather(*(read(call) for call in reads)))


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a read made of one statement, on a connection in autocommit: it needs
    no transaction of its own, which saves the BEGIN and COMMIT round trips of every call."""
    async with read_session(request.app.state.engine) as session:
        yield session
    if outage_log.down:
        outage_log.recovered()


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_engine(request: Request) -> AsyncEngine:
    """The app's engine, for reads made with `fetch_rows`."""
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def execute_read(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Result[Any]:
    """`session.execute(statement, params)` for a Core statement (tables and their columns,
    no ORM entities), run straight on the connection when `session` is a read session
    (`get_read_session`): the session's transaction bookkeeping does nothing for a read on an
    autocommit connection, and cost 161 µs of a page of 50 listings' 769 µs in the process
    (`bench/brand_registry_bench.py`'s list on PostgreSQL, 2026-12-03). Other statements and
    sessions go through `session.execute`."""
    bind = session.bind
    if (
        isinstance(bind, AsyncConnection)
        and statement._propagate_attrs.get("compile_state_plugin") != "orm"
    ):
        return await bind.execute(statement, params)
    return await session.execute(statement, params)


class _DriverStatement:
    """A Core SELECT compiled once for asyncpg: its SQL, where each positional value comes
    from (the caller's value of the bound parameter's key, or the parameter's own value),
    how SQLAlchemy would bind each value and read each column, and the named tuple its rows
    come back as."""

    def __init__(self, statement: Executable, dialect: Any) -> None:
        compiled: Any = cast(Any, statement).compile(dialect=dialect)
        self.runs_on_driver = not (compiled.post_compile_params or compiled.literal_execute_params)
        """False for a statement whose SQL depends on its values (a list to expand)."""
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        self.sql: str = compiled.string
        self.binds = []
        for name in compiled.positiontup or ():
            bind = by_name[name]
            value = None if bind.required else bind.effective_value
            self.binds.append((bind.key, value, bind.required, compiled._bind_processors.get(name)))
        columns = compiled._result_columns
        self._dialect = dialect
        self._types = [entry.type for entry in columns]
        self.processors: list[tuple[int, Callable[[Any], Any]]] | None = None
        """Known once the statement was described: a processor may depend on the type
        PostgreSQL gives the column (numeric or float, say), as SQLAlchemy reads it."""
        self.row: Any = namedtuple("Row", [entry.keyname for entry in columns], rename=True)  # type: ignore[misc]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for key, default, required, process in self.binds:
            if key in values:
                value = values[key]
            elif required:  # as SQLAlchemy refuses it, rather than binding NULL
                raise InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = default
            arguments.append(process(value) if process is not None else value)
        return arguments

    async def describe(self, driver: Any) -> None:
        """Find each column's processor from the types PostgreSQL answers it with."""
        attributes = (await driver.prepare(self.sql)).get_attributes()
        self.processors = [
            (i, processor)
            for i, (type_, attribute) in enumerate(zip(self._types, attributes, strict=True))
            if (processor := type_._cached_result_processor(self._dialect, attribute.type.oid))
            is not None
        ]

    def rows(self, records: Sequence[Any]) -> list[Any]:
        row, processors = self.row, self.processors
        if not processors:
            return [row._make(record) for record in records]
        answered = []
        for record in records:
            values = list(record)
            for i, process in processors:
                values[i] = process(values[i])
            answered.append(row._make(values))
        return answered


_driver_statements: WeakKeyDictionary[Executable, _DriverStatement] = WeakKeyDictionary()


async def fetch_rows(
    engine: AsyncEngine, statement: Executable, values: Mapping[str, Any] | None = None
) -> list[Any]:
    """The rows of a Core SELECT kept by its caller (built once, its values bound by name),
    as `connection.execute(statement, values).all()` on an autocommit connection returns
    them: named tuples of the same values, each column read as SQLAlchemy reads it.

    On PostgreSQL it runs on the pooled asyncpg connection itself, compiled once per
    statement: SQLAlchemy's execution (its cache key, parameters, cursor adaptation and
    result) cost about 420 µs of a certificate verification's 860 µs of server CPU
    (`bench/certification_bench.py`'s data, 2026-12-03). A connection whose statement fails
    other than by PostgreSQL refusing it is dropped from the pool. A statement with a list
    of values to expand, and every statement on other databases, runs through SQLAlchemy."""
    values = values or {}
    async with engine.connect() as connection:
        compiled = _on_driver(statement, connection) if engine.dialect.driver == "asyncpg" else None
        if compiled is not None:
            rows = await _fetch_on_driver(connection, compiled, values)
        else:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            rows = list((await connection.execute(statement, values)).all())
    if outage_log.down:
        outage_log.recovered()
    return rows


def _on_driver(statement: Executable, connection: AsyncConnection) -> _DriverStatement | None:
    """The statement compiled for asyncpg, once; None when it cannot run as compiled."""
    compiled = _driver_statements.get(statement)
    if compiled is None:
        compiled = _DriverStatement(statement, connection.dialect)
        _driver_statements[statement] = compiled
    return compiled if compiled.runs_on_driver else None


async def _fetch_on_driver(
    connection: AsyncConnection, compiled: _DriverStatement, values: Mapping[str, Any]
) -> list[Any]:
    driver: Any = (await connection.get_raw_connection()).driver_connection
    try:
        if compiled.processors is None:
            await compiled.describe(driver)
        records = await driver.fetch(compiled.sql, *compiled.arguments(values))
    except BaseException as error:
        if not isinstance(error, asyncpg.PostgresError) or is_database_unavailable(error):
            await connection.invalidate()  # not a refused statement: the connection is suspect
        raise
    return compiled.rows(records)


def values_of(item: Any, names: Sequence[str]) -> dict[str, Any]:
    """The stored values of `item` for an answer: a result row's columns read in one step
    (`Row._asdict`), or an ORM object's attributes `names`. Reading a row column by column
    took 645 µs of a page of 50 certificates' conversion, the dict 389–424 µs
    (`bench/certification_bench.py`'s county list, in the process, 2026-12-03)."""
    as_dict = getattr(item, "_asdict", None)  # A row, like a named tuple.
    if as_dict is not None:
        values: dict[str, Any] = as_dict()
        return values
    return {name: getattr(item, name) for name in names}


LIKE_ESCAPE = "\\"
"""The escape character of the LIKE patterns `escape_like` writes."""


def escape_like(text: str) -> str:
    """`text` matched literally inside a LIKE pattern escaped with `LIKE_ESCAPE`: its `%`,
    `_` and escape characters lose their meaning (pass `escape=LIKE_ESCAPE`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def dialect_of(session: AsyncSession) -> str:
    """The SQLAlchemy dialect name of the session's database ("postgresql", "sqlite")."""
    return session.get_bind().dialect.name


async def plan_each_statement(session: AsyncSession) -> None:
    """For the rest of `session`'s transaction on PostgreSQL, plan each statement for its own
    values. An import writes thousands of rows into a table inside one transaction, where
    neither ANALYZE nor autovacuum sees them; after five runs of a prepared lookup PostgreSQL
    settles on a generic plan chosen while the table was nearly empty (a sequential scan)
    and keeps it as the table grows: 240 ms per batch of 250 listings at 30,000 rows, the
    import falling from 4,038 rows/s at 5,000 rows to 773 at 100,000
    (`bench/brand_registry_bench.py`, 2026-12-02). No effect on SQLite."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


COPY_FROM = 50
"""From how many rows `insert_rows` writes with COPY on PostgreSQL."""


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under `session`, inside the session's transaction (begun
    first if it has not been, so a statement on the bare driver does not commit on its own)."""
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    return driver


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts of one set of columns) into `table` in the session's transaction,
    as `session.execute(insert(table), rows)` would: on PostgreSQL from `COPY_FROM` rows with
    COPY on the session's own connection, the column defaults applied and each value bound
    as SQLAlchemy binds it, so the table's constraints and indexes check every row the
    same way. A refused row raises the `IntegrityError` an INSERT raises. An executemany
    INSERT spent about a fifth of an import's server time building its parameters and
    statements (py-spy of the brand import of 30,000 rows, as `bench/brand_registry_bench.py`
    makes them, 2026-12-02); with COPY the import went from 3,049–3,399 to 4,247–4,892 rows/s
    (two runs each).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    names = list(rows[0])
    defaulted = [c for c in table.columns if c.name not in rows[0] and c.default is not None]
    defaults: list[Any] = [c.default for c in defaulted]
    simple = all(
        isinstance(d, ScalarElementColumnDefault | CallableColumnDefault) for d in defaults
    )
    if dialect.name != "postgresql" or len(rows) < COPY_FROM or not simple:
        await session.execute(insert(table), rows)
        return
    columns = [*names, *(c.name for c in defaulted)]
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    processed = [(i, process) for i, process in enumerate(processors) if process is not None]
    records = []
    for row in rows:
        record = [row[name] for name in names]
        for default in defaults:  # a callable once per row, as an INSERT calls it
            record.append(default.arg(None) if default.is_callable else default.arg)
        for i, process in processed:
            record[i] = process(record[i])
        records.append(record)
    driver = await driver_connection(session)
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=columns, schema_name=table.schema
        )
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(f"COPY {table.name} ({', '.join(columns)})", None, error) from error


async def present_keys(
    session: AsyncSession,
    columns: Sequence[ColumnElement[Any]],
    keys: Sequence[tuple[Any, ...]],
    *where: ColumnElement[bool],
) -> set[tuple[Any, ...]]:
    """Which of `keys` (values of `columns` of one table, in their order) a row of that table
    has, among the rows `where` keeps.

    On PostgreSQL the keys go as one array per column, joined against as `unnest(…)`: one
    statement of the same text whatever their number, planned as an index probe per key.
    A tuple IN of a thousand keys was compiled afresh for each batch and planned for every
    call under `plan_each_statement`: 49 ms per thousand rows of the certificate import on
    100,000 rows (`bench/certification_bench.py --import-only`, 2026-12-03). Elsewhere the
    tuple IN serves.
    """
    if not keys:
        return set()
    table = columns[0].table
    if dialect_of(session) == "postgresql":
        names = [f"key_{index}" for index in range(len(columns))]
        arrays = [
            bindparam(name, [key[index] for key in keys], type_=ARRAY(column.type))
            for index, (name, column) in enumerate(zip(names, columns, strict=True))
        ]
        wanted = func.unnest(*arrays).table_valued(*names).render_derived().alias("wanted")
        matched = and_(
            *(column == wanted.c[name] for name, column in zip(names, columns, strict=True))
        )
        statement = select(*columns).join_from(table, wanted, matched).where(*where)
    else:
        statement = select(*columns).where(tuple_(*columns).in_(list(keys)), *where)
    return {tuple(row) for row in (await session.execute(statement)).all()}


def version_column() -> Column[int]:
    """A row version for optimistic locking: pass it as `sa_column` and as the mapper's
    `version_id_col`, so a concurrent stale update raises `StaleDataError` (a 412)."""
    return Column("version", Integer, nullable=False, default=1)


def violates_unique(error: IntegrityError, name: str, columns: Sequence[str]) -> bool:
    """Whether `error` is the unique index or constraint `name` refusing a row: PostgreSQL
    names it, SQLite lists the `table.column`s it covers."""
    # asyncpg's own error (from `insert_rows`), or the one under SQLAlchemy's adapter.
    for cause in (error.orig, getattr(error.orig, "__cause__", None)):
        if getattr(cause, "constraint_name", None) == name:
            return True
    return f"UNIQUE constraint failed: {', '.join(columns)}" in str(error.orig)
