"""Rules of the certification service: validation, status transitions, verification,
statistics and CSV import/export. Raises the kit's errors; all SQL is in the repository."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from certification import repository
from certification.catalogue import MANAGEMENT_SYSTEM, Catalogue, Kind
from certification.models import Certificate, CertificateHistory
from certification.repository import CertificateQuery, CertificateRow
from certification.schemas import (
    LABELS,
    STATUS_LABELS,
    CertificateCreate,
    CertificateHistoryRead,
    CertificateRead,
    CertificateStats,
    CertificateStatus,
    CertificateUpdate,
    CountyLicenceStats,
    CountyStats,
    LicenceCounts,
    LicenceStats,
    StatsTotals,
    StatusChange,
    Verification,
    VerifyQuery,
    VerifyResponse,
    VerifyResult,
)
from kit.auth import Principal
from kit.concurrency import check_if_match, make_etag
from kit.csvio import RowError, batched, drawn_in_thread
from kit.dates import add_years, business_date_errors
from kit.db import as_utc, dialect_of, plan_each_statement, read_concurrently, values_of
from kit.errors import (
    Conflict,
    FieldError,
    NotFound,
    ProblemError,
    ValidationFailed,
    field_name,
)
from kit.events import NewEvent, PreparedEvents, emit, emit_prepared, prepare_events
from kit.identifiers import county_code_error, new_id
from kit.pagination import Page, PageParams
from kit.xlsxio import Upload

WRITE_SCOPE = "certificates:write"

# Which statuses each recorded status may move to; `expired` and `withdrawn` are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    CertificateStatus.valid: frozenset({CertificateStatus.suspended, CertificateStatus.withdrawn}),
    CertificateStatus.suspended: frozenset({CertificateStatus.valid, CertificateStatus.withdrawn}),
    CertificateStatus.withdrawn: frozenset(),
    CertificateStatus.expired: frozenset(),
}

CSV_COLUMNS = [
    "id",
    "certificate_number",
    "standard",
    "family",
    "certification_body",
    "accreditation_body",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "sites",
    "issued_on",
    "expires_on",
    "original_issued_on",
    "confidential",
    "status",
    "status_since",
    "kind",
    "issuing_authority",
    "product_categories",
]
# `standard` and `certification_body` too for a management-system row (the default kind),
# `issuing_authority` and `product_categories` for a licence: checked row by row.
CSV_REQUIRED = {
    "certificate_number",
    "enterprise_credit_code",
    "enterprise_name",
    "county_code",
    "scope",
    "issued_on",
}
# Written by the export for reading convenience; the import ignores them.
CSV_IGNORED = {"id", "family"}
SITE_SEPARATOR = ";"
CATEGORY_SEPARATOR = ";"
# The fields a PATCH may clear.
NULLABLE_ON_EDIT = {"accreditation_body", "issuing_authority", "product_categories"}
ANALYZE_AFTER_ROWS = 1000


class ImportRejected(ProblemError):
    """A CSV import with bad rows: nothing was stored; the report names each bad row."""

    status, slug = 422, "import-rejected"


def now() -> datetime:
    return datetime.now(UTC)


def months_before(day: date, months: int) -> date:
    """`day` moved back by `months` calendar months, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def etag_of(certificate: Certificate | CertificateRead) -> str:
    """The ETag of a certificate's current version."""
    return make_etag(certificate.id, certificate.version)


EVENT_SOURCE = "certification"


def subject_of(certificate_id: str) -> str:
    """The subject of a certificate's change events."""
    return f"certificates/{certificate_id}"


def can_see_confidential(principal: Principal) -> bool:
    return principal.has(WRITE_SCOPE)


_STORED_FIELDS = tuple(
    name for name in CertificateRead.model_fields if name in Certificate.model_fields
)
"""The fields of the API view read as stored; the rest are worked out by `to_read`."""


def to_read(
    certificate: Certificate | CertificateRow, status: str, *, catalogue: Catalogue, today: date
) -> CertificateRead:
    """The API view of a certificate whose status today is `status`, validated from its
    stored values in one dict (`kit.db.values_of`)."""
    values = values_of(certificate, _STORED_FIELDS)
    standard = catalogue.standards.get(values["standard"] or "")
    family = standard.family if standard else None
    kind = catalogue.kinds.get(values["kind"])
    current = CertificateStatus(status)
    values.update(
        kind_label=kind.label if kind else None,
        standard_name=standard.name if standard else None,
        family=family,
        family_label=catalogue.family_labels.get(family) if family else None,
        product_categories=values["product_categories"] or [],
        sites=values["sites"] or [],
        created_at=as_utc(values["created_at"]),  # SQLite gives back naive UTC times
        updated_at=as_utc(values["updated_at"]),
        status=current,
        status_label=STATUS_LABELS[current],
        suspension_overdue=current == CertificateStatus.suspended
        and values["status_since"] < months_before(today, catalogue.suspension_limit_months),
    )
    return CertificateRead.model_validate(values)


def published_standards(catalogue: Catalogue) -> dict[str, Any]:
    """The standards catalogue as published: families, standards and the counted families."""
    return {
        "counted_families": list(catalogue.counted_families),
        "families": [{"code": c, "label": label} for c, label in catalogue.family_labels.items()],
        "standards": [
            {"code": s.code, "family": s.family, "name": s.name}
            for s in catalogue.standards.values()
        ],
    }


def published_kinds(catalogue: Catalogue) -> dict[str, Any]:
    """The certificate and licence kinds as published: each licence kind's number format,
    default validity, issuing authorities and product categories."""
    return {
        "kinds": [
            {
                "code": kind.code,
                "label": kind.label,
                "licence": kind.licence,
                "number_pattern": kind.number_pattern.pattern if kind.number_pattern else None,
                "number_example": kind.number_example,
                "number_format": kind.number_format,
                "validity_years": catalogue.validity_years_of(kind.code),
                "issuing_authorities": [
                    {"name": name, "number_prefixes": list(prefixes)}
                    for name, prefixes in kind.authorities.items()
                ],
                "product_categories": list(kind.product_categories),
            }
            for kind in catalogue.kinds.values()
        ]
    }


def kind_error(code: str, catalogue: Catalogue) -> FieldError | None:
    """A `kind` (of a body, a row or a filter) not configured."""
    if code in catalogue.kinds:
        return None
    known = ", ".join(catalogue.kinds)
    return FieldError("kind", f"unknown kind {code!r}; known: {known}")


def _certificate_fields_errors(values: dict[str, Any]) -> list[FieldError]:
    """A management-system certificate names its standard and body, and no licence fields."""
    errors = [
        FieldError(name, "is required for a management_system certificate")
        for name in ("standard", "certification_body")
        if not values.get(name)
    ]
    errors += [
        FieldError(name, "only a licence has it; a management_system certificate does not")
        for name in ("issuing_authority", "product_categories")
        if values.get(name)
    ]
    return errors


def _licence_number_errors(number: str, authority: str | None, kind: Kind) -> list[FieldError]:
    assert kind.number_pattern is not None
    if not kind.number_pattern.fullmatch(number):
        shape = kind.number_format or kind.number_pattern.pattern
        example = f", e.g. {kind.number_example}" if kind.number_example else ""
        return [FieldError("certificate_number", f"a {kind.code} number is {shape}{example}")]
    prefixes = kind.authorities.get(authority or "", ())
    if prefixes and not number.startswith(prefixes):
        return [
            FieldError(
                "certificate_number",
                f"a number issued by {authority} starts with {' or '.join(prefixes)}",
            )
        ]
    return []


def _licence_fields_errors(values: dict[str, Any], kind: Kind) -> list[FieldError]:
    """A licence has an issuing authority of its kind, at least one of its kind's product
    categories and a number of its kind's format; no standard or certification body."""
    errors = [
        FieldError(name, f"a {kind.code} has none; it is a management_system field")
        for name in ("standard", "certification_body", "accreditation_body")
        if values.get(name)
    ]
    authority = values.get("issuing_authority")
    if not authority:
        errors.append(FieldError("issuing_authority", f"is required for a {kind.code}"))
    elif authority not in kind.authorities:
        known = ", ".join(kind.authorities)
        errors.append(
            FieldError("issuing_authority", f"{authority!r} does not issue {kind.code}; {known}")
        )
    categories = values.get("product_categories") or []
    if not categories:
        errors.append(
            FieldError("product_categories", f"a {kind.code} covers at least one category")
        )
    for index, category in enumerate(categories):
        if category not in kind.product_categories:
            errors.append(
                FieldError(
                    f"product_categories[{index}]",
                    f"{category!r} is not in the {kind.code} product catalogue "
                    "(GET /api/v1/certificates/kinds)",
                )
            )
    errors += _licence_number_errors(values["certificate_number"], authority, kind)
    return errors


def kind_rule_errors(values: dict[str, Any], catalogue: Catalogue) -> list[FieldError]:
    """What the kind of a certificate or licence (its `values`, every field) rules out."""
    kind = catalogue.kinds.get(values["kind"])
    if kind is None:
        error = kind_error(values["kind"], catalogue)
        return [error] if error else []
    if kind.licence:
        return _licence_fields_errors(values, kind)
    return _certificate_fields_errors(values)


def _standard_error(code: str, catalogue: Catalogue) -> FieldError | None:
    if code in catalogue.standards:
        return None
    return FieldError(
        "standard",
        f"{code!r} is not in the standards catalogue (GET /api/v1/certificates/standards)",
    )


def county_error(code: str, catalogue: Catalogue) -> FieldError | None:
    """What is wrong with a county code (its GB/T 2260 shape, or not a county served), if
    anything: the one check of a body's, an imported row's or a filter's `county_code`."""
    error = county_code_error(code, catalogue.region_codes)
    return FieldError("county_code", error) if error else None


def _clean_sites(sites: Sequence[str]) -> tuple[list[str], FieldError | None]:
    cleaned = [site.strip() for site in sites]
    for index, site in enumerate(cleaned):
        if not site or len(site) > 500:
            return cleaned, FieldError(f"sites[{index}]", "must be 1 to 500 characters")
    return cleaned, None


def _reference_errors(
    catalogue: Catalogue, *, standard: str | None, county_code: str | None
) -> list[FieldError]:
    """The standard and the county checked against the catalogue (None: not given)."""
    errors = [
        _standard_error(standard, catalogue) if standard is not None else None,
        county_error(county_code, catalogue) if county_code is not None else None,
    ]
    return [error for error in errors if error]


# Dates of events that have happened (kit.dates horizon 0); the expiry may lie ahead, up to
# the catalogue's `validity_horizon_years`.
EVENT_DATES = ("issued_on", "original_issued_on", "status_since")


def business_date_problems(
    values: dict[str, Any], *, catalogue: Catalogue, today: date
) -> list[FieldError]:
    """The given dates outside the suite's date policy (kit.dates), each named by its field."""
    events = {name: values.get(name) for name in EVENT_DATES}
    return business_date_errors(events, today=today) + business_date_errors(
        {"expires_on": values.get("expires_on")},
        today=today,
        horizon_years=catalogue.validity_horizon_years,
    )


def _date_errors(
    *, issued_on: date, expires_on: date, original_issued_on: date
) -> list[FieldError]:
    """A certificate expires after its issue, and was first issued on that day or before."""
    errors = []
    if expires_on <= issued_on:
        errors.append(FieldError("expires_on", "must be after issued_on"))
    if original_issued_on > issued_on:
        errors.append(FieldError("original_issued_on", "must be on or before issued_on"))
    return errors


def _initial_status(
    data: CertificateCreate, *, expires_on: date, today: date
) -> tuple[CertificateStatus, date, list[FieldError]]:
    """The status a new certificate records, and since when. `expired` is never recorded (it
    follows from `expires_on`, which must then be past); another status than `valid` dates
    from today by default and never from the future."""
    errors = []
    status = data.status
    if status == CertificateStatus.expired:
        if expires_on >= today:
            errors.append(
                FieldError("status", f"expired contradicts expires_on {expires_on.isoformat()}")
            )
        status = CertificateStatus.valid
    since = data.status_since or (
        data.issued_on if status == CertificateStatus.valid else max(today, data.issued_on)
    )
    if since < data.issued_on:
        errors.append(FieldError("status_since", "must be on or after issued_on"))
    elif status != CertificateStatus.valid and since > today:
        errors.append(FieldError("status_since", "must not be in the future"))
    return status, since, errors


def check_new(
    data: CertificateCreate, *, catalogue: Catalogue, today: date
) -> tuple[dict[str, Any], list[FieldError]]:
    """The column values of a new certificate, with defaults filled, or what is wrong."""
    given = data.model_dump()
    errors = kind_rule_errors(given, catalogue)
    errors += _reference_errors(catalogue, standard=data.standard, county_code=data.county_code)
    dated = business_date_problems(given, catalogue=catalogue, today=today)
    if dated:
        return {}, errors + dated
    sites, site_error = _clean_sites(data.sites)
    if site_error:
        errors.append(site_error)
    expires_on = data.expires_on or add_years(
        data.issued_on, catalogue.validity_years_of(data.kind)
    )
    original = data.original_issued_on or data.issued_on
    errors += _date_errors(
        issued_on=data.issued_on, expires_on=expires_on, original_issued_on=original
    )
    status, since, status_errors = _initial_status(data, expires_on=expires_on, today=today)
    errors += status_errors
    values = {
        "kind": data.kind,
        "certificate_number": data.certificate_number,
        "standard": data.standard,
        "certification_body": data.certification_body,
        "accreditation_body": data.accreditation_body or None,
        "issuing_authority": data.issuing_authority,
        "product_categories": [c.strip() for c in data.product_categories],
        "enterprise_credit_code": data.enterprise_credit_code,
        "enterprise_name": data.enterprise_name,
        "county_code": data.county_code,
        "scope": data.scope,
        "sites": sites,
        "issued_on": data.issued_on,
        "expires_on": expires_on,
        "original_issued_on": original,
        "confidential": data.confidential,
        "status": str(status),
        "status_since": since,
    }
    return values, errors


async def _check_number_free(
    *,
    session: AsyncSession,
    kind: str,
    number: str,
    body: str | None,
    except_id: str | None = None,
) -> None:
    """409 when `body` already issued a certificate numbered `number`, or (a licence, with
    no body) a licence of `kind` has that number (other than this one)."""
    if await repository.number_taken(
        session=session, kind=kind, number=number, body=body, except_id=except_id
    ):
        if body is None:
            raise repository.licence_number_conflict(kind, number)
        raise repository.number_conflict(number, body)


def _history_entry(
    *,
    certificate_id: str,
    action: str,
    actor: Principal,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    effective_on: date | None = None,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> CertificateHistory:
    return CertificateHistory(
        certificate_id=certificate_id,
        action=action,
        actor=actor.client_id,
        actor_name=actor.client_name,
        at=at,
        reason=reason,
        before=before,
        after=after,
        from_status=from_status,
        to_status=to_status,
        effective_on=effective_on,
    )


def history_read(entry: CertificateHistory) -> CertificateHistoryRead:
    """The API view of a history entry: an edit's `before` and `after` as `changes`,
    `{field: [old, new]}`."""
    assert entry.id is not None
    changes = (
        {name: [(entry.before or {}).get(name), value] for name, value in entry.after.items()}
        if entry.after
        else None
    )
    return CertificateHistoryRead(
        id=entry.id,
        kind=entry.action,
        from_status=entry.from_status,
        to_status=entry.to_status,
        effective_on=entry.effective_on,
        reason=entry.reason,
        changes=changes,
        actor_id=entry.actor,
        actor_name=entry.actor_name,
        occurred_at=entry.at,
    )


async def create_certificate(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    data: CertificateCreate,
    actor: Principal,
) -> CertificateRead:
    """Store a new certificate and its creation entry in the history."""
    actor.require_county(data.county_code)
    values, errors = check_new(data, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)
    await _check_number_free(
        session=session,
        kind=data.kind,
        number=data.certificate_number,
        body=data.certification_body,
    )
    at = now()
    certificate = Certificate(id=new_id(), created_at=at, updated_at=at, **values)
    entry = _history_entry(
        certificate_id=certificate.id,
        action="created",
        actor=actor,
        at=at,
        to_status=certificate.status,
        effective_on=certificate.status_since,
    )
    await repository.add_certificate(session=session, certificate=certificate, entry=entry)
    created = await read_certificate(
        session=session, catalogue=catalogue, today=today, certificate_id=certificate.id
    )
    await emit(
        session,
        source=EVENT_SOURCE,
        type="certificate.created",
        subject=subject_of(created.id),
        data={"id": created.id, "kind": created.kind, "item": created.model_dump(mode="json")},
        county_code=created.county_code,
    )
    return created


async def get_visible(
    *, session: AsyncSession, certificate_id: str, principal: Principal, for_write: bool = False
) -> Certificate:
    """The certificate, or 404 when absent, confidential and the caller may not see it, or
    (unless it is to be changed, where the county is the write's 403) of a county outside
    the caller's readable counties."""
    certificate = await repository.get_certificate(session=session, certificate_id=certificate_id)
    if certificate is None or _hidden(certificate, principal, for_write=for_write):
        raise NotFound(f"No certificate with id {certificate_id!r}.")
    return certificate


def _hidden(
    certificate: Certificate | CertificateRow, principal: Principal, *, for_write: bool = False
) -> bool:
    """Whether the caller is told there is no such certificate: a confidential one it may
    not see, or (unless it is to be changed) one of a county outside its readable ones."""
    return (certificate.confidential and not can_see_confidential(principal)) or (
        not for_write and not principal.reads(certificate.county_code)
    )


async def read_visible(
    *,
    engine: AsyncEngine,
    catalogue: Catalogue,
    today: date,
    certificate_id: str,
    principal: Principal,
) -> CertificateRead:
    """A certificate as its GET answers, from one statement; 404 as `get_visible`."""
    found = await repository.row_with_status(engine=engine, certificate_id=certificate_id, on=today)
    if found is None or _hidden(found[0], principal):
        raise NotFound(f"No certificate with id {certificate_id!r}.")
    return to_read(found[0], found[1], catalogue=catalogue, today=today)


async def read_certificate(
    *, session: AsyncSession, catalogue: Catalogue, today: date, certificate_id: str
) -> CertificateRead:
    found = await repository.get_with_status(
        session=session, certificate_id=certificate_id, on=today
    )
    if found is None:
        raise NotFound(f"No certificate with id {certificate_id!r}.")
    return to_read(found[0], found[1], catalogue=catalogue, today=today)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _merge_edit(
    certificate: Certificate, given: dict[str, Any], catalogue: Catalogue, today: date
) -> dict[str, Any]:
    """The editable fields with a PATCH applied, checked as a whole (422 naming each bad
    field). A new `issued_on` without `expires_on` moves the expiry with it."""
    errors = [
        FieldError(name, "cannot be null")
        for name, value in given.items()
        if value is None and name not in NULLABLE_ON_EDIT
    ]
    errors += business_date_problems(given, catalogue=catalogue, today=today)
    if errors:
        raise ValidationFailed(errors)
    merged = {name: getattr(certificate, name) for name in CertificateUpdate.model_fields}
    if "issued_on" in given and "expires_on" not in given:
        merged["expires_on"] = add_years(
            given["issued_on"], catalogue.validity_years_of(certificate.kind)
        )
    merged.update(given)
    if "product_categories" in given:
        merged["product_categories"] = [c.strip() for c in given["product_categories"] or []]
    errors += kind_rule_errors({**merged, "kind": certificate.kind}, catalogue)
    if "sites" in given:
        merged["sites"], site_error = _clean_sites(given["sites"])
        if site_error:
            errors.append(site_error)
    errors += _reference_errors(
        catalogue, standard=given.get("standard"), county_code=given.get("county_code")
    )
    errors += _date_errors(
        issued_on=merged["issued_on"],
        expires_on=merged["expires_on"],
        original_issued_on=merged["original_issued_on"],
    )
    if errors:
        raise ValidationFailed(errors)
    return merged


def _edited_values(
    certificate: Certificate, merged: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The old and the new value (as JSON) of every field the edit changes."""
    changed = [name for name, value in merged.items() if getattr(certificate, name) != value]
    before = {name: _jsonable(getattr(certificate, name)) for name in changed}
    return before, {name: _jsonable(merged[name]) for name in changed}


async def update_certificate(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    certificate: Certificate,
    data: CertificateUpdate,
    if_match: str | None,
    actor: Principal,
) -> CertificateRead:
    """Apply a PATCH under If-Match; the history keeps the old and new value of each field."""
    given = data.model_dump(exclude_unset=True)
    actor.require_county(certificate.county_code)
    if given.get("county_code") is not None:
        actor.require_county(given["county_code"])
    check_if_match(if_match, etag_of(certificate))
    merged = _merge_edit(certificate, given, catalogue, today)
    number, body = merged["certificate_number"], merged["certification_body"]
    if (number, body) != (certificate.certificate_number, certificate.certification_body):
        await _check_number_free(
            session=session,
            kind=certificate.kind,
            number=number,
            body=body,
            except_id=certificate.id,
        )
    before, after = _edited_values(certificate, merged)
    if after:
        at = now()
        for name, value in merged.items():
            setattr(certificate, name, value)
        certificate.updated_at = at
        entry = _history_entry(
            certificate_id=certificate.id,
            action="updated",
            actor=actor,
            at=at,
            before=before,
            after=after,
        )
        await repository.add_history_entry(session=session, entry=entry)
    return await read_certificate(
        session=session, catalogue=catalogue, today=today, certificate_id=certificate.id
    )


def _effective_on(change: StatusChange, certificate: Certificate, today: date) -> date:
    """The day a status change takes effect: today unless back-dated, never in the future
    and never before the current status or the issue."""
    effective_on = change.effective_on or today
    if effective_on > today:
        raise ValidationFailed.single("effective_on", "must not be in the future")
    if effective_on < certificate.status_since or effective_on < certificate.issued_on:
        raise ValidationFailed.single(
            "effective_on",
            f"must be on or after {max(certificate.status_since, certificate.issued_on)}, "
            "the date of the current status",
        )
    return effective_on


def _check_transition(current: str, requested: CertificateStatus) -> None:
    """409 naming both statuses unless `current` may become `requested` (TRANSITIONS)."""
    if requested in TRANSITIONS[current]:
        return
    why = (
        "expired follows from expires_on and cannot be set"
        if requested == CertificateStatus.expired
        else f"a {current} certificate cannot become {requested}"
    )
    raise Conflict(
        f"Illegal status change from {current} to {requested}: {why}.",
        current_status=current,
        requested_status=str(requested),
    )


async def change_status(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    certificate: Certificate,
    change: StatusChange,
    if_match: str | None,
    actor: Principal,
) -> CertificateRead:
    """Move a certificate to another status under If-Match, if the transition is legal."""
    actor.require_county(certificate.county_code)
    check_if_match(if_match, etag_of(certificate))
    effective_on = _effective_on(change, certificate, today)
    # A back-dated change is judged against the status the certificate had on that date.
    found = await repository.get_with_status(
        session=session, certificate_id=certificate.id, on=effective_on
    )
    assert found is not None
    current = found[1]
    _check_transition(current, change.status)
    at = now()
    certificate.status = str(change.status)
    certificate.status_since = effective_on
    certificate.updated_at = at
    entry = _history_entry(
        certificate_id=certificate.id,
        action="status",
        actor=actor,
        at=at,
        from_status=current,
        to_status=str(change.status),
        effective_on=effective_on,
        reason=change.reason,
    )
    await repository.add_history_entry(session=session, entry=entry)
    changed = await read_certificate(
        session=session, catalogue=catalogue, today=today, certificate_id=certificate.id
    )
    await emit(
        session,
        source=EVENT_SOURCE,
        type="certificate.status_changed",
        subject=subject_of(changed.id),
        data={
            "id": changed.id,
            "kind": changed.kind,
            "from": current,
            "to": str(change.status),
            "effective_on": effective_on.isoformat(),
            "reason": change.reason,
            "item": changed.model_dump(mode="json"),
        },
        county_code=changed.county_code,
    )
    return changed


async def list_certificates(
    *,
    engine: AsyncEngine,
    catalogue: Catalogue,
    today: date,
    query: CertificateQuery,
    page: PageParams,
) -> Page[CertificateRead]:
    """One page of certificates, each with its status on the query's date."""
    rows = await repository.list_certificates(engine=engine, query=query, page=page)
    return rows.map(lambda row: to_read(row[0], row[1], catalogue=catalogue, today=today))


async def history(
    *, session: AsyncSession, certificate_id: str, page: PageParams
) -> Page[CertificateHistoryRead]:
    """One page of a certificate's history, oldest first."""
    entries = await repository.history(session=session, certificate_id=certificate_id, page=page)
    return entries.map(history_read)


def _standards_filter(
    standard: str | None, family: str | None, catalogue: Catalogue
) -> tuple[list[str] | None, list[FieldError]]:
    """The standards a list asks for (None: any), from a standard, a family or both."""
    errors = []
    standards: list[str] | None = None
    if standard is not None:
        if error := _standard_error(standard, catalogue):
            errors.append(error)
        standards = [standard]
    if family is not None:
        if family not in catalogue.family_labels:
            known = ", ".join(sorted(catalogue.family_labels))
            errors.append(FieldError("family", f"unknown family {family!r}; known: {known}"))
        in_family = catalogue.standards_of([family])
        standards = [s for s in standards if s in in_family] if standards else in_family
    return standards, errors


def resolve_query(
    *,
    catalogue: Catalogue,
    today: date,
    principal: Principal,
    kind: str | None = None,
    county_code: str | None = None,
    standard: str | None = None,
    family: str | None = None,
    status: CertificateStatus | None = None,
    as_of: date | None = None,
    certification_body: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    enterprise_credit_code: str | None = None,
    enterprise_credit_code_prefix: str | None = None,
    q: str | None = None,
    overdue_suspension: bool | None = None,
    expiring_within_days: int | None = None,
) -> CertificateQuery:
    """Turn list filters into a repository query, rejecting unknown values by name."""
    errors = _reference_errors(catalogue, standard=None, county_code=county_code)
    if kind is not None and (error := kind_error(kind, catalogue)):
        errors.append(error)
    standards, standard_errors = _standards_filter(standard, family, catalogue)
    errors += standard_errors
    if issued_from and issued_to and issued_from > issued_to:
        errors.append(FieldError("issued_to", "must be on or after issued_from"))
    if errors:
        raise ValidationFailed(errors)
    return CertificateQuery(
        on=as_of or today,
        include_confidential=can_see_confidential(principal),
        kind=kind,
        county_code=county_code,
        county_codes=principal.readable_counties(),
        standards=standards,
        status=str(status) if status else None,
        certification_body=certification_body,
        issued_from=issued_from,
        issued_to=issued_to,
        enterprise_credit_code=enterprise_credit_code,
        credit_code_prefix=(
            enterprise_credit_code_prefix.upper() if enterprise_credit_code_prefix else None
        ),
        text=q or None,
        suspended_before=(
            months_before(today, catalogue.suspension_limit_months) if overdue_suspension else None
        ),
        expires_by=days_after(as_of or today, expiring_within_days),
    )


def days_after(day: date, days: int | None) -> date | None:
    """The last day of a window of `days` days from `day` (the calendar's end at most)."""
    if days is None:
        return None
    return date.fromordinal(min(date.max.toordinal(), day.toordinal() + days))


async def export_rows(
    *,
    sessionmaker: Callable[[], AsyncSession],
    catalogue: Catalogue,
    query: CertificateQuery,
    typed: bool = False,
) -> AsyncIterator[list[Any]]:
    """The rows of every matching certificate, read in batches on a session of their own:
    text for CSV, or dates and booleans for a workbook when `typed`."""
    async for certificate, status in repository.stream_certificates(
        sessionmaker=sessionmaker, query=query
    ):
        if typed:
            yield [
                certificate.id,
                certificate.certificate_number,
                certificate.standard,
                catalogue.family_of(certificate.standard),
                certificate.certification_body,
                certificate.accreditation_body,
                certificate.enterprise_credit_code,
                certificate.enterprise_name,
                certificate.county_code,
                certificate.scope,
                f"{SITE_SEPARATOR} ".join(certificate.sites or []),
                certificate.issued_on,
                certificate.expires_on,
                certificate.original_issued_on,
                bool(certificate.confidential),
                status,
                certificate.status_since,
                certificate.kind,
                certificate.issuing_authority,
                f"{CATEGORY_SEPARATOR} ".join(certificate.product_categories or []),
            ]
            continue
        yield [
            certificate.id,
            certificate.certificate_number,
            certificate.standard,
            catalogue.family_of(certificate.standard),
            certificate.certification_body,
            certificate.accreditation_body,
            certificate.enterprise_credit_code,
            certificate.enterprise_name,
            certificate.county_code,
            certificate.scope,
            f"{SITE_SEPARATOR} ".join(certificate.sites or []),
            certificate.issued_on.isoformat(),
            certificate.expires_on.isoformat(),
            certificate.original_issued_on.isoformat(),
            "true" if certificate.confidential else "false",
            status,
            certificate.status_since.isoformat(),
            certificate.kind,
            certificate.issuing_authority,
            f"{CATEGORY_SEPARATOR} ".join(certificate.product_categories or []),
        ]


def _verification(
    certificate: CertificateRow, status: str, on: date, catalogue: Catalogue
) -> Verification:
    standard = catalogue.standards.get(certificate.standard or "")
    issued = certificate.issued_on <= on
    shown = CertificateStatus(status) if issued else None
    return Verification(
        kind=certificate.kind,
        certificate_number=certificate.certificate_number,
        certification_body=certificate.certification_body,
        accreditation_body=certificate.accreditation_body,
        issuing_authority=certificate.issuing_authority,
        product_categories=list(certificate.product_categories or []),
        standard=certificate.standard,
        standard_name=standard.name if standard else None,
        family=standard.family if standard else None,
        scope=certificate.scope,
        sites=list(certificate.sites or []),
        enterprise_credit_code=certificate.enterprise_credit_code,
        enterprise_name=certificate.enterprise_name,
        issued_on=certificate.issued_on,
        expires_on=certificate.expires_on,
        original_issued_on=certificate.original_issued_on,
        as_of=on,
        status=shown,
        status_label=STATUS_LABELS[shown] if shown else None,
        in_force=shown == CertificateStatus.valid,
    )


async def verify_number(
    *,
    engine: AsyncEngine,
    catalogue: Catalogue,
    today: date,
    number: str,
    body: str | None,
    as_of: date | None,
    kind: str | None = None,
) -> Verification:
    """The public check of one certificate or licence number (of `kind`, if given);
    confidential certificates stay hidden."""
    if kind is not None and (error := kind_error(kind, catalogue)):
        raise ValidationFailed([error])
    on = as_of or today
    rows = await repository.number_lookup(engine=engine, on=on, number=number, kind=kind)
    matches = [row for row in rows if body is None or row[0].certification_body == body]
    if not matches:
        issuer = f" by {body}" if body else ""
        raise NotFound(f"No certificate numbered {number!r} was issued{issuer}.", number=number)
    if len(matches) > 1:
        bodies = ", ".join(sorted(row[0].certification_body or row[0].kind for row in matches))
        raise ValidationFailed.single(
            "body", f"several certification bodies issued number {number}: {bodies}; name one"
        )
    certificate, status = matches[0]
    return _verification(certificate, status, on, catalogue)


def _answers(
    query: VerifyQuery,
    *,
    by_number: dict[str, list[tuple[CertificateRow, str]]],
    by_holder: dict[str, list[tuple[CertificateRow, str]]],
) -> list[tuple[CertificateRow, str]]:
    """The certificates one question finds: by number (from the body named, if any), or
    held by the credit code."""
    if query.number is None:
        return by_holder.get(query.enterprise_credit_code or "", [])
    return [
        row
        for row in by_number.get(query.number, [])
        if query.body is None or row[0].certification_body == query.body
    ]


async def verify_many(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    queries: Sequence[VerifyQuery],
    as_of: date | None,
    kind: str | None = None,
) -> VerifyResponse:
    """Answer each of up to 100 numbers or credit codes, in the order asked, in one query
    (only certificates or licences of `kind`, if given)."""
    if kind is not None and (error := kind_error(kind, catalogue)):
        raise ValidationFailed([error])
    on = as_of or today
    rows = await repository.verify_lookup(
        session=session,
        on=on,
        kind=kind,
        numbers=sorted({q.number for q in queries if q.number}),
        credit_codes=sorted(
            {q.enterprise_credit_code for q in queries if q.enterprise_credit_code}
        ),
    )
    by_number: dict[str, list[tuple[CertificateRow, str]]] = {}
    by_holder: dict[str, list[tuple[CertificateRow, str]]] = {}
    for row in rows:
        by_number.setdefault(row[0].certificate_number, []).append(row)
        by_holder.setdefault(row[0].enterprise_credit_code, []).append(row)
    results = []
    for query in queries:
        found = _answers(query, by_number=by_number, by_holder=by_holder)
        results.append(
            VerifyResult(
                number=query.number,
                body=query.body,
                enterprise_credit_code=query.enterprise_credit_code,
                found=bool(found),
                certificates=[_verification(c, s, on, catalogue) for c, s in found],
            )
        )
    return VerifyResponse(as_of=on, items=results)


def parse_families(raw: str | None, catalogue: Catalogue) -> list[str]:
    """The counted families named in `raw` (comma-separated), or the configured default."""
    if raw is None or not raw.strip():
        return list(catalogue.counted_families)
    names = sorted({part.strip() for part in raw.split(",") if part.strip()})
    unknown = [name for name in names if name not in catalogue.family_labels]
    if unknown or not names:
        known = ", ".join(sorted(catalogue.family_labels))
        raise ValidationFailed.single(
            "families", f"unknown families {', '.join(unknown)}; known: {known}"
        )
    return names


async def stats(
    *,
    engine: AsyncEngine,
    catalogue: Catalogue,
    year: int,
    county_code: str | None,
    families: str | None,
    as_of: date | None,
    counties: frozenset[str] | None = None,
    kind: str = MANAGEMENT_SYSTEM,
) -> CertificateStats | LicenceStats:
    """Newly certified enterprises in `year` and certificates in force on `as_of`, per county;
    only `counties` (None: all) for a county-bound reader. A licence `kind` counts its
    licensed enterprises and new licences instead (`licence_stats`)."""
    errors = [kind_error(kind, catalogue)]
    if county_code is not None:
        errors.append(county_error(county_code, catalogue))
    if found := [error for error in errors if error]:
        raise ValidationFailed(found)
    start, end = date(year, 1, 1), date(year, 12, 31)
    on = as_of or end
    if on < start:
        raise ValidationFailed.single("as_of", f"must not be before the start of {year}")
    if catalogue.kinds[kind].licence:
        if families is not None:
            raise ValidationFailed.single("families", "families count management_system only")
        return await licence_stats(
            engine=engine,
            catalogue=catalogue,
            kind=kind,
            year=year,
            on=on,
            county_code=county_code,
            counties=counties,
        )
    counted = parse_families(families, catalogue)
    standards_by_family = {family: catalogue.standards_of([family]) for family in counted}
    standards = [code for codes in standards_by_family.values() for code in codes]
    (new_by_county, new_total), in_force = await read_concurrently(
        engine,
        lambda session: repository.new_certified_by_county(
            session=session,
            standards=standards,
            start=start,
            end=min(on, end),
            on=on,
            county_code=county_code,
            county_codes=counties,
        ),
        lambda session: repository.in_force_by_county_family(
            session=session,
            standards_by_family=standards_by_family,
            on=on,
            county_code=county_code,
            county_codes=counties,
        ),
    )
    shown = {county_code} if county_code else set(catalogue.region_codes)
    if counties is not None:
        shown &= counties
    shown |= set(new_by_county) | {row[0] for row in in_force}
    rows = _county_rows(
        counties=shown, counted=counted, new_by_county=new_by_county, in_force=in_force
    )
    totals_by_family = {f: sum(row.in_force_by_family[f] for row in rows) for f in counted}
    return CertificateStats(
        year=year,
        as_of=on,
        families=counted,
        by_county=rows,
        totals=StatsTotals(
            new_certified_enterprises=new_total,
            in_force=sum(totals_by_family.values()),
            in_force_by_family=totals_by_family,
        ),
    )


async def licence_stats(
    *,
    engine: AsyncEngine,
    catalogue: Catalogue,
    kind: str,
    year: int,
    on: date,
    county_code: str | None,
    counties: frozenset[str] | None,
) -> LicenceStats:
    """Per county, the distinct enterprises holding a licence of `kind` in force on `on` and
    the licences of `kind` issued in `year` up to `on`; the totals count each enterprise once."""
    end = min(on, date(year, 12, 31))
    (licensed, licensed_total), issued = await read_concurrently(
        engine,
        lambda session: repository.licensed_enterprises_by_county(
            session=session, kind=kind, on=on, county_code=county_code, county_codes=counties
        ),
        lambda session: repository.licences_issued_by_county(
            session=session,
            kind=kind,
            start=date(year, 1, 1),
            end=end,
            county_code=county_code,
            county_codes=counties,
        ),
    )
    shown = {county_code} if county_code else set(catalogue.region_codes)
    if counties is not None:
        shown &= counties
    shown |= set(licensed) | set(issued)
    rows = [
        CountyLicenceStats(
            county_code=county,
            licensed_enterprises=licensed.get(county, 0),
            new_licences=issued.get(county, 0),
        )
        for county in sorted(shown)
    ]
    return LicenceStats(
        year=year,
        as_of=on,
        kind=kind,
        by_county=rows,
        totals=LicenceCounts(
            licensed_enterprises=licensed_total, new_licences=sum(issued.values())
        ),
    )


def _county_rows(
    *,
    counties: set[str],
    counted: list[str],
    new_by_county: dict[str, int],
    in_force: list[tuple[str, str, int]],
) -> list[CountyStats]:
    """One row per county, by code, with zeros where nothing was counted."""
    by_family: dict[str, dict[str, int]] = {c: dict.fromkeys(counted, 0) for c in counties}
    for county, family, count in in_force:
        by_family[county][family] = count
    return [
        CountyStats(
            county_code=county,
            new_certified_enterprises=new_by_county.get(county, 0),
            in_force=sum(by_family[county].values()),
            in_force_by_family=by_family[county],
        )
        for county in sorted(counties)
    ]


def _row_to_create(raw: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: value for name, value in raw.items() if value != "" and name not in CSV_IGNORED
    }
    if "sites" in data:
        data["sites"] = [site for site in data["sites"].split(SITE_SEPARATOR) if site.strip()]
    if "product_categories" in data:
        data["product_categories"] = [
            c.strip() for c in data["product_categories"].split(CATEGORY_SEPARATOR) if c.strip()
        ]
    return data


def _parse_row(
    line: int, raw: dict[str, str], catalogue: Catalogue, today: date
) -> tuple[dict[str, Any] | None, list[RowError]]:
    if "__error__" in raw:
        return None, [RowError(line, "row", raw["__error__"])]
    try:
        data = CertificateCreate.model_validate(_row_to_create(raw))
    except ValidationError as exc:
        return None, [
            RowError(line, field_name(error["loc"]), error["msg"]) for error in exc.errors()
        ]
    values, errors = check_new(data, catalogue=catalogue, today=today)
    if errors:
        return None, [RowError(line, e.field, e.message) for e in errors]
    return values, []


def _key_digest(values: dict[str, Any]) -> bytes:
    """A short digest of what makes a number unique: its body, or a licence's kind."""
    issuer = values["certification_body"] or f"\x01{values['kind']}"
    key = f"{issuer}\x00{values['certificate_number']}"
    return hashlib.blake2b(key.encode(), digest_size=12).digest()


def _file_rows(upload: Upload) -> Iterator[tuple[int, dict[str, str]]]:
    return upload.rows(required=CSV_REQUIRED, allowed=set(CSV_COLUMNS), labels=LABELS)


def _repeat_in_file(line: int, values: dict[str, Any], seen: dict[bytes, int]) -> RowError | None:
    """A row whose number and body an earlier row of the file already has; `seen` remembers
    each pair's first line (as a short digest, so a large file stays small in memory)."""
    digest = _key_digest(values)
    if digest in seen:
        return RowError(
            line,
            "certificate_number",
            f"repeats line {seen[digest]}: the same number from the same body or of the same "
            "licence kind",
        )
    seen[digest] = line
    return None


async def _taken_in_database(
    *,
    session: AsyncSession,
    keys: dict[tuple[str, str], int],
    licence_keys: dict[tuple[str, str], int],
) -> list[RowError]:
    """Rows (by the line of each (number, body) in `keys`, or (kind, number) of a licence in
    `licence_keys`) whose number is already stored."""
    taken = [
        RowError(
            keys[(number, body)],
            "certificate_number",
            f"{body} already issued a certificate numbered {number}",
        )
        for number, body in await repository.taken_numbers(session=session, keys=keys)
    ]
    return taken + [
        RowError(
            licence_keys[(kind, number)],
            "certificate_number",
            f"a {kind} numbered {number} already exists",
        )
        for kind, number in await repository.taken_licence_numbers(
            session=session, keys=licence_keys
        )
    ]


def _check_batch(
    batch: Sequence[tuple[int, dict[str, str]]],
    *,
    catalogue: Catalogue,
    today: date,
    actor: Principal,
    seen: dict[bytes, int],
    outside: list[int],
    errors: list[RowError],
) -> tuple[
    list[tuple[int, dict[str, Any]]], dict[tuple[str, str], int], dict[tuple[str, str], int]
]:
    """The rows of `batch` sound on their own and against the earlier rows, with the numbers
    still to look up in the database: (number, body) and a licence's (kind, number), each by
    its line. What is wrong is added to `errors`, and the lines of rows of a county outside
    the actor's binding to `outside`."""
    sound: list[tuple[int, dict[str, Any]]] = []
    keys: dict[tuple[str, str], int] = {}
    licence_keys: dict[tuple[str, str], int] = {}
    for line, raw in batch:
        # A row without a county is refused for its missing field instead.
        county = (raw.get("county_code") or "").strip()
        if county and not actor.covers(county):
            outside.append(line)
        values, row_errors = _parse_row(line, raw, catalogue, today)
        errors.extend(row_errors)
        if values is None:
            continue
        if repeat := _repeat_in_file(line, values, seen):
            errors.append(repeat)
            continue
        if values["certification_body"] is None:
            licence_keys[(values["kind"], values["certificate_number"])] = line
        else:
            keys[(values["certificate_number"], values["certification_body"])] = line
        sound.append((line, values))
    return sound, keys, licence_keys


def _rejection(
    *, upload: Upload, rows: int, errors: list[RowError], dry_run: bool
) -> ImportRejected:
    """The 422 of a file with bad rows, its report naming each by line and field (and a
    workbook's by column letter)."""
    errors = sorted(errors, key=lambda e: e.line)
    report = upload.report(rows=rows, errors=errors, dry_run=dry_run, stored=0)
    return ImportRejected(
        f"{len({e.line for e in errors})} of {rows} rows have errors; nothing was stored.",
        title="Import rejected",
        **report,
    )


def _imported(
    values: dict[str, Any], *, line: int, actor: Principal, at: datetime, kind: str = "csv"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The certificate row of one checked CSV row, and its `imported` entry in the history."""
    certificate_id = new_id()
    certificate = {**values, "id": certificate_id, "created_at": at, "updated_at": at, "version": 1}
    entry = {
        "certificate_id": certificate_id,
        "action": "imported",
        "actor": actor.client_id,
        "actor_name": actor.client_name,
        "at": at,
        "reason": f"{kind.upper()} import, line {line}",
        "before": None,
        "after": None,
        "from_status": None,
        "to_status": values["status"],
        "effective_on": values["status_since"],
    }
    return certificate, entry


def _imported_item(row: dict[str, Any], catalogue: Catalogue, today: date) -> dict[str, Any]:
    """An imported certificate as its GET answers (its history holds only the import)."""
    status = row["status"]
    if status != CertificateStatus.withdrawn and row["expires_on"] < today:
        status = CertificateStatus.expired
    # The row's values read as attributes: an ORM object would cost five times the rest.
    certificate = cast(Certificate, SimpleNamespace(**row))
    return to_read(certificate, str(status), catalogue=catalogue, today=today).model_dump(
        mode="json"
    )


@dataclass
class _CheckedBatch:
    """One batch of an import as checked (and, while the file reads well, made ready to
    store) in a worker thread."""

    rows: int
    errors: list[RowError]
    keys: dict[tuple[str, str], int]
    licence_keys: dict[tuple[str, str], int]
    certificates: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    events: PreparedEvents | None


def _checked_batches(
    upload: Upload,
    *,
    batch_size: int,
    catalogue: Catalogue,
    today: date,
    actor: Principal,
    outside: list[int],
    store: bool,
    dialect: str,
) -> Iterator[_CheckedBatch]:
    """The file's batches, each checked on its own and against the earlier rows; while no
    row so far is bad and `store`, each sound row with its id, its `imported` history entry
    and its `certificate.created` event. Safe to advance from a worker thread: it reads the
    spooled file and the catalogue, nothing of a session."""
    seen: dict[bytes, int] = {}
    at = now()
    bad = False
    for batch in batched(_file_rows(upload), batch_size):
        errors: list[RowError] = []
        sound, keys, licence_keys = _check_batch(
            batch,
            catalogue=catalogue,
            today=today,
            actor=actor,
            seen=seen,
            outside=outside,
            errors=errors,
        )
        bad = bad or bool(errors)
        checked = _CheckedBatch(len(batch), errors, keys, licence_keys, [], [], None)
        if store and not bad:
            events = []
            for line, values in sound:
                certificate, entry = _imported(
                    values, line=line, actor=actor, at=at, kind=upload.kind
                )
                checked.certificates.append(certificate)
                checked.entries.append(entry)
                events.append(
                    NewEvent(
                        type="certificate.created",
                        subject=subject_of(certificate["id"]),
                        data={
                            "id": certificate["id"],
                            "kind": certificate["kind"],
                            "item": _imported_item(certificate, catalogue, today),
                        },
                        county_code=certificate["county_code"],
                    )
                )
            checked.events = prepare_events(EVENT_SOURCE, events, dialect=dialect)
        yield checked


async def import_csv(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    upload: Upload,
    batch_size: int,
    dry_run: bool,
    actor: Principal,
) -> dict[str, Any]:
    """Check every row in file order and store all of them, or none when one is bad; a row
    of a county outside the actor's binding refuses the whole file (403).

    One pass over the spooled file, a batch at a time (memory stays bounded): each batch is
    checked on its own, against the earlier rows and against the database, and stored in the
    request's transaction while no row so far is bad. A bad row stops the storing, the rest
    of the file is still checked for the report, and the 422 rolls the transaction back.
    Batches are read, checked and made ready in a worker thread, the next one while this
    one is looked up and stored (`kit.csvio.drawn_in_thread`).
    """
    await plan_each_statement(session)
    errors: list[RowError] = []
    outside: list[int] = []
    rows = stored = 0
    checked_batches = _checked_batches(
        upload,
        batch_size=batch_size,
        catalogue=catalogue,
        today=today,
        actor=actor,
        outside=outside,
        store=not dry_run,
        dialect=dialect_of(session),
    )
    async with aclosing(drawn_in_thread(checked_batches, ahead=True)) as batches:
        async for batch in batches:
            rows += batch.rows
            errors += batch.errors
            errors += await _taken_in_database(
                session=session, keys=batch.keys, licence_keys=batch.licence_keys
            )
            if errors or outside or batch.events is None:
                continue
            await repository.insert_many(
                session=session, certificates=batch.certificates, entries=batch.entries
            )
            await emit_prepared(session, batch.events)
            stored += len(batch.certificates)
    actor.require_rows_in_binding(outside)
    if rows == 0:
        raise ValidationFailed.single("file", "The file has a header but no data rows.")
    if errors:
        raise _rejection(upload=upload, rows=rows, errors=errors, dry_run=dry_run)
    if dry_run:
        return upload.report(rows=rows, errors=[], dry_run=True, stored=0)
    if stored >= ANALYZE_AFTER_ROWS:
        await repository.refresh_statistics(session=session)
    return upload.report(rows=rows, errors=[], dry_run=False, stored=stored)
