"""An RSS item's <pubDate>, written without feedgen's date formatting.

feedgen writes it with util.formatRFC2822: `strftime('%a, %d %b %Y %H:%M:%S %z')` between three
process-wide `locale.setlocale(LC_ALL)` calls (so that day and month names are English), which
took a tenth of writing an RSS feed. rfc822() gives the same text from fixed English names; the
item gets the same element in the same place (the first entry extension, so right after
feedgen's own elements, where feedgen puts pubDate when no <source> follows).
RSS 2.0, https://www.rssboard.org/rss-specification#ltpubdategtSubelementOfLtitemgt: "conforms
to the Date and Time Specification of RFC 822, with the exception that the year may be expressed
with two characters or four characters".
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc822(when: datetime) -> str:
    """`when.strftime('%a, %d %b %Y %H:%M:%S %z')` in the C locale, for an aware datetime: %Y
    unpadded (as glibc writes it) and %z as Python writes it."""
    offset = when.utcoffset()
    if offset is None:
        raise ValueError("an RSS date needs an aware datetime (RFC 822 carries the offset)")
    return (f"{DAYS[when.weekday()]}, {when.day:02d} {MONTHS[when.month - 1]} {when.year} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {_offset(offset)}")


@lru_cache(maxsize=64)   # a site's dates carry one or two offsets
def _offset(offset: timedelta) -> str:
    """%z as CPython's datetime writes it (format_utcoffset): ±HHMM, then the offset's seconds and
    microseconds only when it has them."""
    sign = "-" if offset < timedelta(0) else "+"
    hours, rest = divmod(abs(offset), timedelta(hours=1))
    minutes, rest = divmod(rest, timedelta(minutes=1))
    text = f"{sign}{hours:02d}{minutes:02d}"
    if rest.microseconds:
        return f"{text}{rest.seconds:02d}.{rest.microseconds:06d}"
    return f"{text}{rest.seconds:02d}" if rest.seconds else text


class PubDateExtension(BaseExtension):
    """Declares nothing: pubDate is RSS's own element."""


class PubDateEntryExtension(BaseEntryExtension):
    """<pubDate> of one RSS item."""

    def __init__(self):
        self._when: datetime | None = None

    def when(self, when: datetime) -> None:
        if when.utcoffset() is None:
            raise ValueError("an RSS date needs an aware datetime (RFC 822 carries the offset)")
        self._when = when

    def extend_rss(self, item):
        if self._when is not None:
            etree.SubElement(item, "pubDate").text = rfc822(self._when)
        return item
