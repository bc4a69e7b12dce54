"""RSS <pubDate> written by feedsvc (render/feeds/pubdate.py) exactly as feedgen wrote it."""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import lxml.etree  # noqa: F401 - feedgen.util uses lxml.etree without importing it
import pytest
from feedgen.entry import FeedEntry
from feedgen.util import formatRFC2822
from lxml import etree

from feedsvc.ingest.records import parse_record
from feedsvc.render.feeds import FORMATS
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.model import Feed, Scope, Site
from feedsvc.render.feeds.pubdate import rfc822
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD

ZONES = [ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns"), timezone.utc,
         timezone(timedelta(hours=-3, minutes=-30)), timezone(timedelta(seconds=-37)),
         timezone(timedelta(hours=5, seconds=7, microseconds=12)), timezone(timedelta(microseconds=-5)),
         timezone(timedelta(hours=23, minutes=59))]


def test_rfc822_is_feedgens_date_text():
    rng = random.Random(21)
    for _ in range(3000):
        when = datetime(rng.choice([1, 99, 999, 1000, 1970, 2025, 9999]), rng.randint(1, 12), rng.randint(1, 28),
                        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, 999_999]),
                        tzinfo=rng.choice(ZONES))
        assert rfc822(when) == formatRFC2822(when), when


def test_rfc822_needs_an_offset():
    with pytest.raises(ValueError, match="aware"):
        rfc822(datetime(2025, 8, 2, 12, 0))


def test_an_item_has_one_pubdate_where_feedgen_put_it():
    site = Site(url=SITE_URL, name="समाचार", description="ताज़ा ख़बरें", language="hi",
                logo=f"{SITE_URL}/static/logo.png", icon=f"{SITE_URL}/static/icon.png", copyright="©")
    entry = entry_from_article(parse_record(VALID_RECORD, site_url=SITE_URL), site, full_text=True)
    # A probed image (its byte length known) gives the item an enclosure, the element before pubDate.
    entry = replace(entry, image=replace(entry.image, length=1234, type="image/jpeg"))
    when = entry.published
    feed = Feed(site=site, scope=Scope("site"), id="tag:x,2025:feeds", title=site.name, description=site.description,
                home_url=f"{SITE_URL}/", self_url=f"{SITE_URL}/feeds/x", first_url=f"{SITE_URL}/feeds/x",
                next_url=None, updated=when, entries=[entry])
    item = etree.fromstring(FORMATS["rss"].write(feed)).find("channel/item")
    # feedgen's own item elements, in its order, pubDate last of them; the extensions' follow.
    plain = FeedEntry()
    plain.title(entry.title)
    plain.link(href=entry.url)
    plain.description(entry.summary)
    plain.content(entry.content_html, type="html")
    plain.guid(entry.id)
    plain.category([{"term": c.term, "label": c.label, "scheme": c.scheme} for c in entry.categories])
    plain.enclosure(entry.image.url, str(entry.image.length), entry.image.type)
    plain.published(when)
    expected = [child.tag for child in plain.rss_entry()]
    assert [child.tag for child in item][:len(expected)] == expected
    assert [child.tag for child in item].count("pubDate") == 1
    assert item.findtext("pubDate") == formatRFC2822(when)
