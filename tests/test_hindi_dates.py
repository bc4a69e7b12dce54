"""Hindi dates written without babel at run time (render/hindi_dates.py) must read as babel writes them."""
from datetime import date, datetime, time, timedelta, timezone

import pytest
from babel.dates import format_date, format_datetime, get_period_id

from feedsvc.render import hindi_dates, pages

IST = timezone(timedelta(hours=5, minutes=30))
DAY_MINUTES = [time(hour, minute, second) for hour in range(24) for minute in range(60) for second in (0, 1)]


@pytest.mark.parametrize("pattern", ["d MMMM y, h:mm B", "d MMMM, h:mm B", "d MMMM y"])
def test_every_minute_of_a_day_reads_as_babel_writes_it(pattern):
    day = date(2025, 7, 23)
    for moment in (datetime.combine(day, at, IST) for at in DAY_MINUTES):
        assert hindi_dates.formatted(moment, pattern) == format_datetime(moment, pattern, tzinfo=IST, locale="hi")


def test_the_parts_of_the_day_are_cldrs_five():
    assert {hindi_dates.day_period(at) for at in DAY_MINUTES} == {"मध्यरात्रि", "सुबह", "दोपहर", "शाम", "रात"}
    assert {get_period_id(at, locale="hi") for at in DAY_MINUTES} == {
        "midnight", "morning1", "afternoon1", "evening1", "night1"}


def test_every_month_and_day_of_a_leap_year_and_a_date_alone_read_as_babel_writes_them():
    day = date(2024, 1, 1)
    while day.year == 2024:
        moment = datetime.combine(day, time(9, 5), IST)
        assert hindi_dates.formatted(moment, "d MMMM y, h:mm B") == format_datetime(
            moment, "d MMMM y, h:mm B", tzinfo=IST, locale="hi")
        assert hindi_dates.formatted(day, "d MMMM y") == format_date(day, "d MMMM y", locale="hi")
        day += timedelta(days=1)


@pytest.mark.parametrize("moment", [datetime(2025, 7, 23, 10, 0, tzinfo=timezone.utc),   # 15:30 IST
                                    datetime(2025, 7, 23, 18, 30, tzinfo=timezone.utc),   # IST midnight
                                    datetime(2025, 12, 31, 20, 0, tzinfo=timezone.utc),   # next year in IST
                                    datetime(2025, 7, 23, 10, 0)])                         # naive: UTC
def test_a_pages_date_is_the_newsrooms_local_time_as_babel_wrote_it(moment):
    expected = format_datetime(moment, pages.DATE_PATTERN, tzinfo=pages._zone("Asia/Kolkata"), locale="hi")
    assert pages.hindi_datetime(moment).rsplit(" ", 1)[0] == expected


def test_a_field_it_does_not_write_is_refused_rather_than_left_as_letters():
    with pytest.raises(ValueError, match="EEEE"):
        hindi_dates.formatted(date(2025, 7, 23), "EEEE, d MMMM")
