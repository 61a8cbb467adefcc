"""The one date policy of the suite: business dates within a plausible range, and year
arithmetic that cannot overflow.

A business date is never before the founding of the People's Republic (1949-10-01), the
earliest date any of the bureau's records can carry, and never later than today plus a
horizon: 0 for events that have happened (awards, issue dates, samplings, reports), a few
years for the end of a validity. Each service binds the horizon to its settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from kit.errors import FieldError

EARLIEST_BUSINESS_DATE = date(1949, 10, 1)
DEFAULT_VALIDITY_HORIZON_YEARS = 10


def add_years(day: date, years: int) -> date:
    """`day` moved by whole years (29 February falls back to the 28th); beyond the calendar's
    ends it stops at `date.max` or `date.min` instead of raising."""
    year = day.year + years
    if year > date.max.year:
        return date.max
    if year < date.min.year:
        return date.min
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def latest_business_date(today: date, horizon_years: int = 0) -> date:
    """The latest date a record may carry: today, plus the horizon for validity ends."""
    return add_years(today, horizon_years)


def business_date_error(
    value: date, *, field: str, today: date, horizon_years: int = 0
) -> FieldError | None:
    """Why `value` cannot be a business date of `field` (None when it can)."""
    latest = latest_business_date(today, horizon_years)
    if value < EARLIEST_BUSINESS_DATE:
        return FieldError(field, f"must be on or after {EARLIEST_BUSINESS_DATE.isoformat()}")
    if value > latest:
        if horizon_years == 0:
            return FieldError(field, f"must not be in the future (after {latest.isoformat()})")
        return FieldError(
            field, f"must be on or before {latest.isoformat()} ({horizon_years} years from today)"
        )
    return None


def business_date_errors(
    values: Mapping[str, date | None], *, today: date, horizon_years: int = 0
) -> list[FieldError]:
    """`business_date_error` of each given (non-None) date, named by its field."""
    errors = []
    for name, value in values.items():
        if value is not None and (
            error := business_date_error(
                value, field=name, today=today, horizon_years=horizon_years
            )
        ):
            errors.append(error)
    return errors
