"""Every query of the certification service. Flushes, never commits: the request owns the
transaction."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import col

from certification.models import (
    LICENCE_NUMBER_INDEX,
    NUMBER_CONSTRAINT,
    Certificate,
    CertificateHistory,
)
from kit.db import (
    LIKE_ESCAPE,
    escape_like,
    execute_read,
    fetch_rows,
    insert_rows,
    present_keys,
    violates_unique,
)
from kit.errors import Conflict
from kit.pagination import Page, PageParams, paginate

_certificate_table: Table = Certificate.__table__  # type: ignore[attr-defined]
_history_table: Table = CertificateHistory.__table__  # type: ignore[attr-defined]
_certificate = _certificate_table.c
_history = _history_table.c


@functools.lru_cache(maxsize=64)
def status_on(on: date | BindParameter[date]) -> ColumnElement[str]:
    """The status a certificate had on `on`: its recorded status when that dates from before
    `on`, otherwise the last status recorded in its history by then; `expired` after expiry
    unless withdrawn. Built once per date: the expression is immutable, and building it
    took a tenth of a list's server time."""
    past = (
        select(_history.to_status)
        .where(
            _history.certificate_id == _certificate.id,
            _history.to_status.is_not(None),
            _history.effective_on <= on,
        )
        .order_by(_history.effective_on.desc(), _history.id.desc())
        .limit(1)
        .correlate(_certificate_table)
        .scalar_subquery()
    )
    current = _certificate.status_since <= on
    return case(
        (and_(current, _certificate.status == "withdrawn"), "withdrawn"),
        (and_(current, _certificate.expires_on < on), "expired"),
        (current, _certificate.status),
        (past == "withdrawn", "withdrawn"),
        (_certificate.expires_on < on, "expired"),
        else_=func.coalesce(past, "valid"),
    )


def status_is(on: date | BindParameter[date], status: str) -> ColumnElement[bool]:
    """`status_on(on) == status`, written so that a planner can estimate it and use the
    indexes: a certificate whose recorded status is in force on `on` (nearly every one) is
    decided by its own columns, only the others by their history. On 100,000 certificates
    the county and status list's SQL fell from 10.6 ms to 1.7 ms (`bench/certification_bench.py`
    prints the plan)."""
    c = _certificate
    if status == "withdrawn":
        decided = c.status == "withdrawn"
    elif status == "expired":
        decided = and_(c.status != "withdrawn", or_(c.expires_on < on, c.status == "expired"))
    else:
        decided = and_(c.status == status, c.expires_on >= on)
    return or_(
        and_(c.status_since <= on, decided),
        and_(c.status_since > on, status_on(on) == status),
    )


_ON = bindparam("on", type_=Date)
"""The date a prepared statement reads statuses on."""
_BY_ID = select(Certificate, status_on(_ON)).where(col(Certificate.id) == bindparam("id"))

CertificateRow = Row[Any]
"""A certificate read for an answer: its columns as attributes, and `status_on`."""


def _rows_with_status(on: date | BindParameter[date]) -> Select[Any]:
    """Certificates as rows of their columns, with their status on `on` as `status_on`. A
    read answers from the row: building the ORM object took a fifth of a certificate's GET
    (py-spy, `bench/certification_bench.py`, 2026-12-02)."""
    return select(*_certificate_table.c, status_on(on).label("status_on"))


_ROW_BY_ID = _rows_with_status(_ON).where(_certificate.id == bindparam("id"))


@dataclass(frozen=True)
class CertificateQuery:
    """Resolved list filters: family already turned into its standards, dates fixed."""

    on: date
    include_confidential: bool
    kind: str | None = None
    county_code: str | None = None
    county_codes: Collection[str] | None = None
    standards: Sequence[str] | None = None
    status: str | None = None
    certification_body: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    enterprise_credit_code: str | None = None
    credit_code_prefix: str | None = None
    text: str | None = None
    suspended_before: date | None = None
    expires_by: date | None = None


_SET_FILTERS = (
    "kind",
    "county_code",
    "certification_body",
    "issued_from",
    "issued_to",
    "enterprise_credit_code",
    "credit_code_prefix",
    "text",
    "suspended_before",
    "expires_by",
)
"""The filters that narrow the list when they are set, each bound under its own name."""


def _listing(query: CertificateQuery) -> tuple[Select[Any], dict[str, Any]]:
    """Matching certificates with their status on `query.on`, as rows: the statement kept for
    the query's shape, and the values it is executed with."""
    present = frozenset(name for name in _SET_FILTERS if getattr(query, name))
    statement = _kept_listing(
        present,
        include_confidential=query.include_confidential,
        in_counties=query.county_codes is not None,
        of_standards=query.standards is not None,
        status=query.status or None,
    )
    values: dict[str, Any] = {"on": query.on}
    values.update((name, getattr(query, name)) for name in present)
    if query.county_codes is not None:
        values["county_codes"] = sorted(query.county_codes)
    if query.standards is not None:
        values["standards"] = list(query.standards)
    if query.credit_code_prefix:
        values["credit_code_prefix"] = escape_like(query.credit_code_prefix)
    if query.text:
        values["text"] = escape_like(query.text)
    return statement, values


@functools.cache
def _kept_listing(
    present: frozenset[str],
    *,
    include_confidential: bool,
    in_counties: bool,
    of_standards: bool,
    status: str | None,
) -> Select[Any]:
    """The list's statement for one shape of query, its values bound by name: built per
    request, building it and its SQLAlchemy cache key took about 5 % of a county list's
    samples (py-spy, `bench/certification_bench.py`, 2026-12-03)."""
    c = _certificate
    where: list[ColumnElement[bool]] = []

    def bound(name: str) -> BindParameter[Any]:
        return bindparam(name, type_=getattr(c, name).type)

    if not include_confidential:
        where.append(c.confidential.is_(False))
    for name in ("kind", "county_code", "certification_body", "enterprise_credit_code"):
        if name in present:
            where.append(getattr(c, name) == bound(name))
    if in_counties:
        where.append(c.county_code.in_(bindparam("county_codes", expanding=True)))
    if of_standards:
        where.append(c.standard.in_(bindparam("standards", expanding=True)))
    if status:
        where.append(c.issued_on <= _ON)
        where.append(status_is(_ON, status))
    if "issued_from" in present:
        where.append(c.issued_on >= bindparam("issued_from", type_=Date))
    if "issued_to" in present:
        where.append(c.issued_on <= bindparam("issued_to", type_=Date))
    if "credit_code_prefix" in present:
        where.append(
            c.enterprise_credit_code.startswith(bindparam("credit_code_prefix"), escape=LIKE_ESCAPE)
        )
    if "text" in present:
        pattern = bindparam("text", type_=String)
        where.append(
            or_(
                *(
                    column.icontains(pattern, escape=LIKE_ESCAPE)
                    for column in (
                        c.certificate_number,
                        c.enterprise_name,
                        c.scope,
                        c.certification_body,
                    )
                )
            )
        )
    if "suspended_before" in present:
        where.append(c.status == "suspended")
        where.append(c.status_since < bindparam("suspended_before", type_=Date))
        where.append(c.expires_on >= _ON)
    if "expires_by" in present:
        where.append(c.issued_on <= _ON)
        where.append(c.expires_on.between(_ON, bindparam("expires_by", type_=Date)))
        where.append(status_is(_ON, "valid"))
    return _rows_with_status(_ON).where(*where)


async def list_certificates(
    *, engine: AsyncEngine, query: CertificateQuery, page: PageParams
) -> Page[tuple[CertificateRow, str]]:
    """One page of certificates with their status on `query.on`, by id."""
    statement, values = _listing(query)
    rows = await paginate(
        engine, statement, params=page, keys=[_certificate.id], values=values, rows=True
    )
    return rows.map(lambda row: (row, row.status_on))


async def stream_certificates(
    *,
    sessionmaker: Callable[[], AsyncSession],
    query: CertificateQuery,
    batch_size: int = 1000,
) -> AsyncIterator[tuple[CertificateRow, str]]:
    """Every matching certificate with its status, by id, fetched in keyset batches on a
    session of its own (a streamed response outlives the request's session)."""
    async with sessionmaker() as session:
        listing, values = _listing(query)
        after: str | None = None
        while True:
            statement = listing.order_by(col(Certificate.id)).limit(batch_size)
            if after is not None:
                statement = statement.where(col(Certificate.id) > after)
            rows = (await session.execute(statement, values)).all()
            for row in rows:
                yield row, row.status_on
            if len(rows) < batch_size:
                return
            after = rows[-1].id


async def get_certificate(*, session: AsyncSession, certificate_id: str) -> Certificate | None:
    return await session.get(Certificate, certificate_id)


async def get_with_status(
    *, session: AsyncSession, certificate_id: str, on: date
) -> tuple[Certificate, str] | None:
    """A certificate (the session's object, with any change made to it) and its status on
    `on`."""
    row = (await session.execute(_BY_ID, {"id": certificate_id, "on": on})).first()
    return (row[0], row[1]) if row else None


async def row_with_status(
    *, engine: AsyncEngine, certificate_id: str, on: date
) -> tuple[CertificateRow, str] | None:
    """A certificate as stored, and its status on `on`."""
    rows = await fetch_rows(engine, _ROW_BY_ID, {"id": certificate_id, "on": on})
    return (rows[0], rows[0].status_on) if rows else None


async def number_taken(
    *,
    session: AsyncSession,
    kind: str,
    number: str,
    body: str | None,
    except_id: str | None = None,
) -> bool:
    """Whether `body` already issued a certificate numbered `number`, or (no body: a licence)
    a licence of `kind` has that number (other than `except_id`)."""
    c = _certificate
    issuer = (
        and_(c.kind == kind, c.certification_body.is_(None))
        if body is None
        else c.certification_body == body
    )
    statement = select(c.id).where(c.certificate_number == number, issuer)
    if except_id is not None:
        statement = statement.where(c.id != except_id)
    return (await session.execute(statement.limit(1))).first() is not None


async def taken_licence_numbers(
    *, session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (kind, certificate_number) pairs of licences already exist."""
    c = _certificate
    found = await present_keys(
        session, [c.kind, c.certificate_number], list(keys), c.certification_body.is_(None)
    )
    return {(kind, number) for kind, number in found}


async def taken_numbers(
    *, session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (certificate_number, certification_body) pairs already exist."""
    c = _certificate
    found = await present_keys(session, [c.certificate_number, c.certification_body], list(keys))
    return {(number, body) for number, body in found}


_NUMBER_COLUMNS = ["certificate.certificate_number", "certificate.certification_body"]
_LICENCE_COLUMNS = ["certificate.kind", "certificate.certificate_number"]


def number_conflict(number: str, body: str) -> Conflict:
    """The 409 of a certificate number its body already issued."""
    return Conflict(
        f"{body} already issued a certificate numbered {number}.", field="certificate_number"
    )


def licence_number_conflict(kind: str, number: str) -> Conflict:
    """The 409 of a licence number its kind already has."""
    return Conflict(f"A {kind} numbered {number} already exists.", field="certificate_number")


async def _writing_numbers(
    session: AsyncSession,
    write: Callable[[], Any],
    numbers: Sequence[tuple[str, str]],
    licences: Sequence[tuple[str, str]] = (),
) -> None:
    """Run `write`; when a number constraint refuses it (a concurrent request stored one of
    `numbers` (number, body), or of the licences' (kind, number), first), roll the request
    back and answer the 409 a sequential duplicate gets, naming the first number now taken."""
    try:
        await write()
    except IntegrityError as error:
        if violates_unique(error, LICENCE_NUMBER_INDEX, _LICENCE_COLUMNS) and licences:
            await session.rollback()
            taken_licences = await taken_licence_numbers(session=session, keys=licences)
            kind, number = next((k for k in licences if k in taken_licences), licences[0])
            raise licence_number_conflict(kind, number) from None
        if not violates_unique(error, NUMBER_CONSTRAINT, _NUMBER_COLUMNS) or not numbers:
            raise
        await session.rollback()
        taken = await taken_numbers(session=session, keys=numbers)
        number, body = next((key for key in numbers if key in taken), numbers[0])
        raise number_conflict(number, body) from None


def _number_keys(
    rows: Iterable[tuple[str, str, str | None]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (number, body) pairs of certificates and (kind, number) pairs of licences among
    (kind, number, body) rows."""
    numbers = [(number, body) for _, number, body in rows if body is not None]
    licences = [(kind, number) for kind, number, body in rows if body is None]
    return numbers, licences


async def add_certificate(
    *, session: AsyncSession, certificate: Certificate, entry: CertificateHistory
) -> None:
    """Store a new certificate and its first history entry; 409 when a concurrent request
    stored the same number of the same body first."""
    session.add(certificate)
    numbers, licences = _number_keys(
        [(certificate.kind, certificate.certificate_number, certificate.certification_body)]
    )
    await _writing_numbers(session, session.flush, numbers, licences)
    session.add(entry)
    await session.flush()


async def add_history_entry(*, session: AsyncSession, entry: CertificateHistory) -> None:
    """Store a history entry with the change it records (an edit may renumber the
    certificate: 409 when a concurrent request took the number first)."""
    session.add(entry)
    numbers, licences = _number_keys(
        [
            (o.kind, o.certificate_number, o.certification_body)
            for o in session.dirty
            if isinstance(o, Certificate)
        ]
    )
    await _writing_numbers(session, session.flush, numbers, licences)


async def insert_many(
    *,
    session: AsyncSession,
    certificates: list[dict[str, Any]],
    entries: list[dict[str, Any]],
) -> None:
    """Bulk-insert rows already validated, with their entries in the history; 409 when a
    concurrent request stored one of their numbers first."""
    if not certificates:
        return

    async def write() -> None:
        await insert_rows(session, _certificate_table, certificates)

    numbers, licences = _number_keys(
        [(c["kind"], c["certificate_number"], c["certification_body"]) for c in certificates]
    )
    await _writing_numbers(session, write, numbers, licences)
    await insert_rows(session, _history_table, entries)


async def refresh_statistics(*, session: AsyncSession) -> None:
    """Have PostgreSQL re-sample the tables after a bulk load, so the planner does not keep
    choosing sequential scans from pre-load row estimates until autovacuum gets to them."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ANALYZE certificate, certificate_history"))


async def history(
    *, session: AsyncSession, certificate_id: str, page: PageParams
) -> Page[CertificateHistory]:
    """One page of a certificate's history, oldest first."""
    statement = select(CertificateHistory).where(
        col(CertificateHistory.certificate_id) == certificate_id
    )
    return await paginate(session, statement, params=page, keys=[col(CertificateHistory.id)])


async def verify_lookup(
    *,
    session: AsyncSession,
    on: date,
    numbers: Sequence[str] = (),
    credit_codes: Sequence[str] = (),
    kind: str | None = None,
) -> list[tuple[CertificateRow, str]]:
    """Non-confidential certificates (of `kind`, if given) with any of `numbers` or held by
    any of `credit_codes`."""
    if not numbers and not credit_codes:
        return []
    statement = _verification(bool(numbers), bool(credit_codes), kind is not None)
    values = {"on": on, "numbers": list(numbers), "credit_codes": list(credit_codes), "kind": kind}
    rows = (await execute_read(session, statement, values)).all()
    return [(row, row.status_on) for row in rows]


async def number_lookup(
    *, engine: AsyncEngine, on: date, number: str, kind: str | None = None
) -> list[tuple[CertificateRow, str]]:
    """Non-confidential certificates (of `kind`, if given) numbered `number`, the oldest
    first."""
    statement = _number_lookup(kind is not None)
    rows = await fetch_rows(engine, statement, {"on": on, "number": number, "kind": kind})
    return [(row, row.status_on) for row in rows]


@functools.cache
def _number_lookup(of_kind: bool) -> Select[Any]:
    """The public lookup of one number, with no list of values to expand, so that
    `fetch_rows` runs it as compiled once."""
    return _public(_certificate.certificate_number == bindparam("number"), of_kind)


def _public(key: ColumnElement[bool], of_kind: bool) -> Select[Any]:
    c = _certificate
    statement = (
        _rows_with_status(_ON).where(key, c.confidential.is_(False)).order_by(c.issued_on, c.id)
    )
    return statement.where(c.kind == bindparam("kind")) if of_kind else statement


@functools.cache
def _verification(by_number: bool, by_holder: bool, of_kind: bool) -> Select[Any]:
    """The public lookup, built once for each combination of keys: a statement built per
    call, its status expression and cache key with it, took half of a verification's
    server time (py-spy, `bench/certification_bench.py`, 2026-12-02). Of table columns only,
    so that it runs as Core on the read session's connection (`execute_read`): ordered by the
    mapped class's attributes, it went through the ORM's loading, 5 % of a verification's
    samples (py-spy, 2026-12-03)."""
    c = _certificate
    keys = []
    if by_number:
        keys.append(c.certificate_number.in_(bindparam("numbers", expanding=True)))
    if by_holder:
        keys.append(c.enterprise_credit_code.in_(bindparam("credit_codes", expanding=True)))
    return _public(or_(*keys), of_kind)


def _family_of(standards_by_family: dict[str, list[str]]) -> ColumnElement[str]:
    return case(
        {code: family for family, codes in standards_by_family.items() for code in codes},
        value=_certificate.standard,
        else_="",
    )


async def new_certified_by_county(
    *,
    session: AsyncSession,
    standards: Sequence[str],
    start: date,
    end: date,
    on: date,
    county_code: str | None,
    county_codes: Collection[str] | None = None,
) -> tuple[dict[str, int], int]:
    """Enterprises whose first-ever certificate among `standards` dates from [start, end] and
    that on `on` still hold one of them not withdrawn: per county of that first certificate,
    and distinct across all counties."""
    c = _certificate
    f = _certificate_table.alias("first").c
    e = _certificate_table.alias("earlier").c
    # Each enterprise's first certificates are found from the year's own (an index range),
    # none of its certificates dating from before them, instead of grouping every
    # certificate by enterprise; only theirs are then asked whether one is still held. On
    # 100,000 certificates the statement fell from 79 ms to 26 ms (`bench/certification_bench.py`
    # prints its plan).
    held = (
        exists()
        .where(
            c.enterprise_credit_code == f.enterprise_credit_code,
            c.standard.in_(list(standards)),
            c.issued_on <= on,
            not_(status_is(on, "withdrawn")),
        )
        .correlate_except(_certificate_table)
    )
    before = exists().where(
        e.enterprise_credit_code == f.enterprise_credit_code,
        e.standard.in_(list(standards)),
        e.original_issued_on < f.original_issued_on,
    )
    pairs = (
        select(f.county_code, f.enterprise_credit_code)
        .distinct()
        .where(
            f.standard.in_(list(standards)),
            f.original_issued_on.between(start, end),
            not_(before),
            held,
        )
    )
    if county_code:
        pairs = pairs.where(f.county_code == county_code)
    if county_codes is not None:
        pairs = pairs.where(f.county_code.in_(sorted(county_codes)))
    rows = (await session.execute(pairs)).all()
    counts = dict(Counter(row[0] for row in rows))
    return counts, len({row[1] for row in rows})


async def in_force_by_county_family(
    *,
    session: AsyncSession,
    standards_by_family: dict[str, list[str]],
    on: date,
    county_code: str | None,
    county_codes: Collection[str] | None = None,
) -> list[tuple[str, str, int]]:
    """(county, family, certificates in force on `on`) for every non-empty group."""
    c = _certificate
    family = _family_of(standards_by_family).label("family")
    standards = [code for codes in standards_by_family.values() for code in codes]
    statement = (
        select(c.county_code, family, func.count())
        .where(
            c.standard.in_(standards),
            c.issued_on <= on,
            c.expires_on >= on,
            status_is(on, "valid"),
        )
        .group_by(c.county_code, family)
    )
    if county_code:
        statement = statement.where(c.county_code == county_code)
    if county_codes is not None:
        statement = statement.where(c.county_code.in_(sorted(county_codes)))
    return [(row[0], row[1], int(row[2])) for row in (await session.execute(statement)).all()]


async def certificates_matching(
    *, session: AsyncSession, query: CertificateQuery
) -> list[tuple[CertificateRow, str]]:
    """Every certificate matching `query` with its status on `query.on`, by id (the alert
    sweep's few due certificates)."""
    listing, values = _listing(query)
    statement = listing.order_by(col(Certificate.id))
    return [(row, row.status_on) for row in (await session.execute(statement, values)).all()]


def _in_counties(
    statement: Select[Any], county_code: str | None, county_codes: Collection[str] | None
) -> Select[Any]:
    if county_code:
        statement = statement.where(_certificate.county_code == county_code)
    if county_codes is not None:
        statement = statement.where(_certificate.county_code.in_(sorted(county_codes)))
    return statement


async def licensed_enterprises_by_county(
    *,
    session: AsyncSession,
    kind: str,
    on: date,
    county_code: str | None,
    county_codes: Collection[str] | None = None,
) -> tuple[dict[str, int], int]:
    """Distinct enterprises holding a licence of `kind` in force on `on` (issued by then,
    not expired, valid on that day): per county, and distinct across all counties."""
    c = _certificate
    pairs = (
        select(c.county_code, c.enterprise_credit_code)
        .distinct()
        .where(
            c.kind == kind,
            c.issued_on <= on,
            c.expires_on >= on,
            status_is(on, "valid"),
        )
    )
    held = _in_counties(pairs, county_code, county_codes).subquery()
    per_county = select(held.c.county_code, func.count()).group_by(held.c.county_code)
    counts = {row[0]: int(row[1]) for row in (await session.execute(per_county)).all()}
    distinct = select(func.count(func.distinct(held.c.enterprise_credit_code)))
    total = int((await session.execute(distinct)).scalar_one())
    return counts, total


async def licences_issued_by_county(
    *,
    session: AsyncSession,
    kind: str,
    start: date,
    end: date,
    county_code: str | None,
    county_codes: Collection[str] | None = None,
) -> dict[str, int]:
    """Licences of `kind` issued in [start, end], per county."""
    c = _certificate
    statement = (
        select(c.county_code, func.count())
        .where(c.kind == kind, c.issued_on.between(start, end))
        .group_by(c.county_code)
    )
    statement = _in_counties(statement, county_code, county_codes)
    return {row[0]: int(row[1]) for row in (await session.execute(statement)).all()}
