"""Enterprises failing spot-checks repeatedly: the list, and the daily sweep emitting
`spot_check.repeated_failures`.

A failure is counted as the stats count it: an original check (not a re-inspection) whose
failure stands after its re-inspections; for readers without the write scope, only results
whose bulletin day has come, an overturning re-inspection counting from its own bulletin day.
The window is the `months` calendar months ending on `as_of` (sampled after the same day
`months` months earlier, and by `as_of`).

The sweep counts as the public does (the feed shows events to readers) and emits through
`kit.events.emit_once` under the key

    spot_check.repeated_failures:<credit code>:<id of the latest failure in the window>

so an enterprise is announced once for each failure that brings (or keeps) it at the
minimum, however often the sweep runs, restarts included; the same failures seen again the
next day announce nothing. The sweep counts each county's checks apart (an event reaches the
readers of its county, and shows them that county's checks only).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date
from itertools import groupby
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from inspection import repository
from inspection.catalogue import Catalogue
from inspection.models import SpotCheck
from inspection.schemas import (
    FailedCheck,
    FailureWindow,
    Level,
    OverdueEquipment,
    RepeatedFailures,
)
from inspection.settings import Settings
from kit import sweeps
from kit.app import LifespanHook
from kit.errors import ValidationFailed
from kit.pagination import Page, PageParams
from kit.sweeps import DueAlert

SOURCE = "inspection"
REPEATED_FAILURES = "spot_check.repeated_failures"
EQUIPMENT_OVERDUE = "spot_check.equipment_overdue"
logger = structlog.get_logger("inspection.alerts")


def window_start(as_of: date, months: int) -> date:
    """The first day of the `months` calendar months ending on `as_of`: the day after the
    same day `months` months earlier (clamped to that month's end; the calendar's start at
    most)."""
    index = as_of.year * 12 + as_of.month - 1 - months
    if index < 12:
        return date.min
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date.fromordinal(date(year, month + 1, min(as_of.day, last)).toordinal() + 1)


def failure_window(
    *,
    catalogue: Catalogue,
    today: date,
    as_of: date | None,
    months: int,
    min_failures: int,
    county_code: str | None = None,
    include_unpublished: bool = False,
    counties: frozenset[str] | None = None,
) -> FailureWindow:
    """The checked window of a repeated-failures question; 422 naming a county not served."""
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        raise ValidationFailed.single("county_code", error)
    end = as_of or today
    return FailureWindow(
        start=window_start(end, months),
        end=end,
        min_failures=min_failures,
        county_code=county_code,
        include_unpublished=include_unpublished,
        county_codes=counties,
    )


def _entries(window: FailureWindow, checks: Sequence[SpotCheck]) -> list[RepeatedFailures]:
    entries = []
    for credit_code, group in groupby(checks, key=lambda check: check.enterprise_credit_code):
        failed = list(group)
        latest = max(failed, key=lambda check: (check.sampled_on, check.id))
        entries.append(
            RepeatedFailures(
                enterprise_credit_code=credit_code,
                enterprise_name=latest.enterprise_name,
                county_code=latest.county_code,
                failures=len(failed),
                window_from=window.start,
                window_to=window.end,
                checks=[
                    FailedCheck(
                        id=check.id,
                        plan_code=check.plan_code,
                        level=Level(check.level),
                        product_name=check.product_name,
                        county_code=check.county_code,
                        sampled_on=check.sampled_on,
                        published_on=check.published_on,
                    )
                    for check in failed
                ],
            )
        )
    return entries


async def repeated_failures(
    *, session: AsyncSession, window: FailureWindow, today: date, page: PageParams
) -> Page[RepeatedFailures]:
    """One page of the enterprises failing at least `window.min_failures` times, by credit
    code, each with its failed checks."""
    found = await repository.repeated_failures(
        session=session, window=window, today=today, page=page
    )
    codes = [row["enterprise_credit_code"] for row in found.items]
    checks = await repository.failed_checks(
        session=session, window=window, today=today, credit_codes=codes
    )
    return Page[RepeatedFailures](items=_entries(window, checks), next_cursor=found.next_cursor)


async def overdue_equipment(
    *,
    session: AsyncSession,
    catalogue: Catalogue,
    today: date,
    as_of: date | None,
    page: PageParams,
    county_code: str | None = None,
    include_unpublished: bool = False,
    counties: frozenset[str] | None = None,
) -> Page[OverdueEquipment]:
    """One page, by equipment code, of the special-equipment items overdue on `as_of`
    (default today); 422 naming a county not served."""
    if county_code is not None and (error := catalogue.county_code_error(county_code)):
        raise ValidationFailed.single("county_code", error)
    on = as_of or today
    found = await repository.overdue_equipment(
        session=session,
        as_of=on,
        county_code=county_code,
        counties=counties,
        include_unpublished=include_unpublished,
        today=today,
        page=page,
    )
    return found.map(lambda row: _overdue(row, on))


def _overdue(row: Any, as_of: date) -> OverdueEquipment:
    return OverdueEquipment(
        equipment_code=row["equipment_code"],
        equipment_kind=row["equipment_kind"],
        county_code=row["county_code"],
        enterprise_credit_code=row["enterprise_credit_code"],
        enterprise_name=row["enterprise_name"],
        last_inspection_id=row["id"],
        inspected_on=row["sampled_on"],
        next_due_on=row["next_due_on"],
        days_overdue=(as_of - row["next_due_on"]).days,
        major_hazard_source=bool(row["major_hazard_source"]),
    )


async def _equipment_alerts(*, session: AsyncSession, today: date) -> list[DueAlert]:
    """An alert for every item overdue today, as the public knows its inspections, keyed by
    the item and the due day it missed (a later inspection with a new due day may raise
    another)."""
    alerts = []
    for row in await repository.all_overdue_equipment(session=session, as_of=today, today=today):
        item = _overdue(row, today)
        alerts.append(
            DueAlert(
                key=f"{EQUIPMENT_OVERDUE}:{item.equipment_code}:{item.next_due_on.isoformat()}",
                type=EQUIPMENT_OVERDUE,
                subject=f"equipment/{item.equipment_code}",
                county_code=item.county_code,
                data={"equipment_code": item.equipment_code, "item": item.model_dump(mode="json")},
            )
        )
    return alerts


async def due_alerts(
    *, session: AsyncSession, today: date, months: int, min_failures: int
) -> list[DueAlert]:
    """An alert for every enterprise failing at least `min_failures` times in one county in
    the `months` ending today, as the public knows the results; emitted before or not.

    Counted per county, as a reader bound to that county counts them: the event goes to the
    county's readers, and its checks are that county's only."""
    window = FailureWindow(start=window_start(today, months), end=today, min_failures=min_failures)
    codes = await repository.all_repeated_failures(session=session, window=window, today=today)
    checks = await repository.failed_checks(
        session=session, window=window, today=today, credit_codes=codes
    )
    checks.sort(key=lambda check: (check.enterprise_credit_code, check.county_code))
    entries = [
        entry
        for _, group in groupby(
            checks, key=lambda check: (check.enterprise_credit_code, check.county_code)
        )
        for entry in _entries(window, sorted(group, key=lambda check: (check.sampled_on, check.id)))
        if entry.failures >= min_failures
    ]
    alerts = []
    for entry in entries:
        latest = entry.checks[-1]
        alerts.append(
            DueAlert(
                key=f"{REPEATED_FAILURES}:{entry.enterprise_credit_code}:{latest.id}",
                type=REPEATED_FAILURES,
                subject=f"enterprises/{entry.enterprise_credit_code}",
                county_code=entry.county_code,
                data={
                    "enterprise_credit_code": entry.enterprise_credit_code,
                    "item": entry.model_dump(mode="json"),
                    "months": months,
                    "min_failures": min_failures,
                    "latest_failure_id": latest.id,
                },
            )
        )
    return alerts + await _equipment_alerts(session=session, today=today)


async def sweep(
    *,
    sessionmaker: Callable[[], AsyncSession],
    today: date,
    months: int,
    min_failures: int,
) -> int:
    """Emit every alert due on `today` that was never emitted; how many were."""
    return await sweeps.emit_due(
        sessionmaker,
        source=SOURCE,
        due=lambda session: due_alerts(
            session=session, today=today, months=months, min_failures=min_failures
        ),
    )


def alerts_lifespan() -> LifespanHook:
    """The lifespan hook running the sweep while the app runs (when enabled)."""

    async def due(app: FastAPI, session: AsyncSession) -> list[DueAlert]:
        settings: Settings = app.state.settings
        return await due_alerts(
            session=session,
            today=settings.today(),
            months=settings.alert_repeated_failure_months,
            min_failures=settings.alert_repeated_failure_min,
        )

    return sweeps.sweep_lifespan(source=SOURCE, due=due)
