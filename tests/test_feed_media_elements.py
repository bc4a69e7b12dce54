"""Media RSS elements are made once per value and copied into each entry (render/feeds/ext.py): every
entry that shows an image carries its own copy, in any thread, cold or warm, with the same bytes."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from feedsvc.ingest.records import parse_record
from feedsvc.render.feeds import FORMATS
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.ext import MEDIA_NS
from feedsvc.render.feeds.model import Feed, Scope, Site
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD

ATOM_NS = "http://www.w3.org/2005/Atom"
SITE = Site(url=SITE_URL, name="समाचार", description="ताज़ा ख़बरें", language="hi",
            logo=f"{SITE_URL}/static/logo.png", icon=f"{SITE_URL}/static/icon.png", copyright="©")
WHEN = datetime(2025, 8, 2, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
# Two stories with one lead image, and one with an image of its own (credit left out).
IMAGES = [VALID_RECORD["image"], VALID_RECORD["image"],
          {"url": "/media/other.jpg", "width": 800, "height": 450, "caption": "दूसरी तस्वीर"}]


def _feed() -> Feed:
    articles = [parse_record(dict(VALID_RECORD, id=f"media-{n}", slug=f"media-{n}", image=image), site_url=SITE_URL)
                for n, image in enumerate(IMAGES)]
    entries = [entry_from_article(article, SITE, full_text=True) for article in articles]
    return Feed(site=SITE, scope=Scope("site"), id="tag:x,2025:feeds", title=SITE.name, description=SITE.description,
                home_url=f"{SITE_URL}/", self_url=f"{SITE_URL}/feeds/x", first_url=f"{SITE_URL}/feeds/x",
                next_url=None, updated=WHEN, entries=entries)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_every_entry_carries_its_own_image_elements(fmt):
    root = etree.fromstring(FORMATS[fmt].write(_feed()))
    items = root.findall("channel/item") if fmt == "rss" else root.findall(f"{{{ATOM_NS}}}entry")
    assert len(items) == len(IMAGES)
    for item, image in zip(items, IMAGES, strict=True):
        url = SITE_URL + image["url"]
        content = item.find(f"{{{MEDIA_NS}}}content")
        assert content is not None, "an entry that shares its image with another lost its media:content"
        assert (content.get("url"), content.get("medium")) == (url, "image")
        assert (content.get("width"), content.get("height")) == (str(image["width"]), str(image["height"]))
        assert content.findtext(f"{{{MEDIA_NS}}}description") == image["caption"]
        assert content.findtext(f"{{{MEDIA_NS}}}credit") == image.get("credit")
        assert item.find(f"{{{MEDIA_NS}}}thumbnail").get("url") == url


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_threads_write_the_same_bytes_cold_and_warm(fmt):
    feed, write = _feed(), FORMATS[fmt].write
    expected = write(feed)

    def twice(_: int) -> tuple[bytes, bytes]:
        return write(feed), write(feed)   # the thread's first build makes the elements, its second copies them

    with ThreadPoolExecutor(max_workers=4) as pool:
        for cold, warm in pool.map(twice, range(8)):
            assert cold == warm == expected
