"""Dates in Hindi as CLDR writes them, for the few patterns pages, embeds and feeds show.

babel gave the same text, but its first date loaded all of CLDR's data for `hi` and its global
tables (parent locales, likely subtags...): 3.7 MiB per gunicorn worker (tracemalloc after the
worker-rss-1m load at 100,000 articles), held for twelve month names and five parts of the day.
These are CLDR 49's, as babel 2.19 ships them: main/hi.xml, months (format, wide) and dayPeriods
(format, abbreviated); supplemental/dayPeriods.xml, the rules of `hi`
(https://unicode.org/reports/tr35/tr35-dates.html#Day_Period_Rule_Sets).
tests/test_hindi_dates.py compares every minute of a day and every month with babel, so a CLDR
change that babel brings shows there.
"""
from __future__ import annotations

import re
from datetime import date

MONTHS = ("जनवरी", "फ़रवरी", "मार्च", "अप्रैल", "मई", "जून", "जुलाई", "अगस्त", "सितंबर", "अक्टूबर", "नवंबर",
          "दिसंबर")
# "midnight" is the instant 00:00:00 only; from a second past it, the night's.
MIDNIGHT = "मध्यरात्रि"
# (hour the part of the day starts at, its name), in order: night1 from 20:00 before 04:00.
PERIODS = ((20, "रात"), (16, "शाम"), (12, "दोपहर"), (4, "सुबह"), (0, "रात"))

_FIELD = re.compile(r"[A-Za-z]+")


def day_period(moment) -> str:
    """The pattern letter B: the part of the day of a time of day (a datetime or a time)."""
    if moment.hour == moment.minute == moment.second == 0:
        return MIDNIGHT
    return next(name for starts, name in PERIODS if moment.hour >= starts)


def _field(moment, letters: str) -> str:
    if letters == "d":
        return str(moment.day)
    if letters == "MMMM":
        return MONTHS[moment.month - 1]
    if letters == "y":
        return str(moment.year)
    if letters == "h":
        return str(moment.hour % 12 or 12)
    if letters == "mm":
        return f"{moment.minute:02d}"
    if letters == "B":
        return day_period(moment)
    raise ValueError(f"pattern field {letters!r} is not one this module writes (d, MMMM, y, h, mm, B)")


def formatted(moment: date, pattern: str) -> str:
    """`moment` (a date, or a datetime in the zone it is to be shown in) written by an LDML `pattern`
    made of the fields d, MMMM, y, h, mm and B and of literal text without quotes: "d MMMM y, h:mm B"."""
    return _FIELD.sub(lambda field: _field(moment, field.group()), pattern)
