from datetime import date

import pytest

from kit.dates import EARLIEST_BUSINESS_DATE, add_years, business_date_error

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("day", "years", "expected"),
    [
        (date(2020, 2, 29), 1, date(2021, 2, 28)),
        (date(2020, 2, 29), 4, date(2024, 2, 29)),
        (date(9998, 1, 1), 3, date.max),
        (date(9999, 12, 31), 1, date.max),
        (date(2, 1, 1), -5, date.min),
        (date(2007, 6, 30), 0, date(2007, 6, 30)),
    ],
)
def test_add_years_never_raises(day: date, years: int, expected: date) -> None:
    assert add_years(day, years) == expected


def test_events_may_not_be_in_the_future_or_before_1949_10_01() -> None:
    assert business_date_error(TODAY, field="awarded_on", today=TODAY) is None
    assert business_date_error(EARLIEST_BUSINESS_DATE, field="awarded_on", today=TODAY) is None
    future = business_date_error(date(9999, 12, 31), field="awarded_on", today=TODAY)
    assert future is not None
    assert future.field == "awarded_on"
    assert "future" in future.message
    ancient = business_date_error(date(1, 1, 1), field="issued_on", today=TODAY)
    assert ancient is not None
    assert ancient.message == "must be on or after 1949-10-01"


def test_validity_ends_may_reach_the_horizon_and_no_further() -> None:
    assert (
        business_date_error(date(2036, 12, 1), field="expires_on", today=TODAY, horizon_years=10)
        is None
    )
    late = business_date_error(date(2036, 12, 2), field="expires_on", today=TODAY, horizon_years=10)
    assert late is not None
    assert late.message == "must be on or before 2036-12-01 (10 years from today)"
