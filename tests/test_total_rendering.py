"""Rendering is total (issue 15): a stored record that cannot be rendered never makes a document fail.

The broken records are written past ingest's checks (the stored article rewritten in place, as a
record stored before those checks would be): each is left out of every document of several articles,
logged once and counted in /metrics; a document that is the article answers 503; the static mirror
keeps its last good copy whenever the app fails for a document.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

import feedparser
import lxml.html
import orjson
import pytest
from lxml import etree
from sqlalchemy import update

from feedsvc import store
from feedsvc.ingest.write import commit_write, withdraw
from feedsvc.publish import mirror as export
from feedsvc.render import oembed, skips
from feedsvc.render.feeds import FORMATS, Scope
from feedsvc.render.feeds.urls import feed_path
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.metrics import scrape, value
from tests.support.records import write

GOOD_IDS = ("good-one", "good-two")
BROKEN_ID = "broken-one"
SCOPES = [Scope("site"), Scope("section", "national"), Scope("tag", "parliament"), Scope("author", "test-reporter")]
LISTINGS = ["/", "/section/national", "/tag/parliament", "/author/test-reporter"]


def _set_image_url(article: dict) -> None:
    article["image"]["url"] = "https://[::1/photo.jpg"   # urlsplit: "Invalid IPv6 URL"


def _set_title_control_char(article: dict) -> None:
    article["title"] += "\x01"    # lxml: not XML-compatible text; JSON may carry it


def _set_published_year_1(article: dict) -> None:
    article["published"] = "0001-01-01T00:00:00+05:30"   # IST cannot show it: OverflowError


# How the broken record was spoiled, and in which feed formats its writer then refuses it.
FEED_BREAKS = {"image-url": (_set_image_url, set(FORMATS)), "title-control-char": (_set_title_control_char,
                                                                                    {"rss", "atom"})}


@pytest.fixture(autouse=True)
def fresh_log_memory():
    skips.logged_once.clear()
    yield
    skips.logged_once.clear()



def store_articles(app, make_record, spoil=None) -> None:
    """Two good articles and a third, newer one whose stored article `spoil(article_dict)` rewrites."""
    for number, article_id in enumerate((*GOOD_IDS, BROKEN_ID)):
        stamp = f"2025-08-01T0{number + 7}:15:00+05:30"
        write(app, make_record(id=article_id, slug=article_id, title=f"ख़बर {article_id}", published=stamp,
                               updated=stamp))
    if spoil is not None:
        with db.engine(app).begin() as conn:
            stored = orjson.loads(store.article_row(conn, BROKEN_ID).article)
            spoil(stored)
            conn.execute(update(store.articles).where(store.articles.c.id == BROKEN_ID)
                         .values(article=orjson.dumps(stored).decode()))


def feed_ids(fmt: str, body: bytes) -> set[str]:
    """The article ids of a feed's entries, read with the real parsers (and checked well-formed)."""
    if fmt == "json":
        ids = [item["id"] for item in json.loads(body)["items"]]
    else:
        etree.fromstring(body)
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.bozo_exception
        ids = [entry.id for entry in parsed.entries]
    return {entry_id.rsplit("/", 1)[-1] for entry_id in ids}


def article_links(body: bytes) -> set[str]:
    """Slugs of the article pages an HTML page links to."""
    hrefs = lxml.html.fromstring(body).xpath("//a/@href")
    return {href.rsplit("/articles/", 1)[-1] for href in hrefs if "/articles/" in href}


@pytest.mark.parametrize("spoiled", FEED_BREAKS)
def test_every_feed_of_every_scope_leaves_out_the_broken_article(app, client, make_record, spoiled):
    spoil, refused_by = FEED_BREAKS[spoiled]
    store_articles(app, make_record, spoil)
    for scope in SCOPES:
        for fmt in FORMATS:
            response = client.get(feed_path(scope, fmt))
            assert response.status_code == 200, (scope, fmt)
            ids = feed_ids(fmt, response.get_data())
            assert set(GOOD_IDS) <= ids, (scope, fmt)
            assert (BROKEN_ID in ids) == (fmt not in refused_by), (scope, fmt)


def test_a_tombstone_the_writer_refuses_is_left_out(app, client, make_record):
    store_articles(app, make_record)
    commit_write(db.engine(app), withdraw, BROKEN_ID, site_name=app.config["SITE_NAME"])
    with db.engine(app).begin() as conn:
        stored = orjson.loads(store.article_row(conn, BROKEN_ID).article)
        stored["url"] += "\x01"
        conn.execute(update(store.articles).where(store.articles.c.id == BROKEN_ID)
                     .values(article=orjson.dumps(stored).decode()))
    response = client.get("/feeds/atom.xml")
    assert response.status_code == 200
    root = etree.fromstring(response.get_data())
    assert not root.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry")
    assert feed_ids("atom", response.get_data()) == set(GOOD_IDS)


def test_listing_pages_widget_and_related_articles_leave_out_the_broken_article(app, client, make_record):
    store_articles(app, make_record, _set_published_year_1)
    for path in [*LISTINGS, "/embed/latest", f"/articles/{GOOD_IDS[0]}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        links = article_links(response.get_data())
        assert BROKEN_ID not in links, path
        assert set(GOOD_IDS) - {path.rsplit("/", 1)[-1]} <= links, path


@pytest.mark.parametrize("path", [f"/articles/{BROKEN_ID}", f"/amp/{BROKEN_ID}", f"/embed/{BROKEN_ID}"])
def test_the_page_of_the_broken_article_is_temporarily_unavailable(app, client, make_record, path):
    store_articles(app, make_record, _set_published_year_1)
    response = client.get(path)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Cache-Control"] == "no-store"
    page = lxml.html.fromstring(response.get_data())
    assert "उपलब्ध नहीं" in page.text_content() or "दिखाई नहीं जा सकती" in page.text_content()


def test_oembed_answers_404_for_an_article_it_cannot_render(app, client, make_record, monkeypatch):
    store_articles(app, make_record)
    plain = oembed.response_for

    def failing_for_broken(article, **kwargs):
        if article.id == BROKEN_ID:
            raise ValueError("a value the oEmbed answer cannot carry")
        return plain(article, **kwargs)

    monkeypatch.setattr(oembed, "response_for", failing_for_broken)
    broken = client.get("/oembed", query_string={"url": f"{SITE_URL}/articles/{BROKEN_ID}"})
    assert broken.status_code == 404
    assert "error" in json.loads(broken.get_data())
    good = client.get("/oembed", query_string={"url": f"{SITE_URL}/articles/{GOOD_IDS[0]}"})
    assert good.status_code == 200


def test_sitemaps_leave_out_an_article_whose_date_cannot_be_written(app, client, make_record):
    store_articles(app, make_record)
    with db.engine(app).begin() as conn:
        # As stored before ingest bounded dates: IST cannot show this moment.
        conn.execute(update(store.articles).where(store.articles.c.id == BROKEN_ID)
                     .values(updated=datetime(9999, 12, 31, 23, 0)))
    index = client.get("/sitemap.xml")
    assert index.status_code == 200
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    month_urls = etree.fromstring(index.get_data()).xpath("//s:sitemap/s:loc/text()", namespaces=ns)
    assert month_urls
    month = client.get(month_urls[0].removeprefix(SITE_URL))
    assert month.status_code == 200
    locs = etree.fromstring(month.get_data()).xpath("//s:url/s:loc/text()", namespaces=ns)
    assert {loc.rsplit("/", 1)[-1] for loc in locs} == set(GOOD_IDS)


def test_the_skip_is_logged_once_however_often_it_happens(app, client, make_record, caplog):
    store_articles(app, make_record, _set_image_url)
    caplog.set_level(logging.WARNING, logger=skips.__name__)
    for _ in range(2):
        for scope in SCOPES:
            for fmt in FORMATS:
                assert client.get(feed_path(scope, fmt), query_string={"limit": 10 + _}).status_code == 200
    lines = [r for r in caplog.records if r.name == skips.__name__]
    assert len(lines) == 1
    assert BROKEN_ID in lines[0].getMessage() and "feed" in lines[0].getMessage()


def test_skips_are_counted_in_metrics(app, client, make_record):
    store_articles(app, make_record, _set_image_url)
    before = value(scrape(client), "feedsvc_entries_skipped_total", document_kind="feed")
    for fmt in FORMATS:
        assert client.get(feed_path(Scope("site"), fmt)).status_code == 200
    after = value(scrape(client), "feedsvc_entries_skipped_total", document_kind="feed")
    assert after - before == len(FORMATS)


@pytest.mark.slow  # full mirror syncs (about 1,300 files each): 13-55 s
@pytest.mark.sqlite_only  # the mirror reads the app over HTTP; the store is the app's
def test_the_mirror_keeps_its_last_good_copy_when_the_app_fails(app, make_record, tmp_path, monkeypatch):
    store_articles(app, make_record)
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        copy = tmp_path / "feeds" / "rss.xml"
        good = copy.read_bytes()
        assert feed_ids("rss", good) >= set(GOOD_IDS)
        monkeypatch.setitem(app.view_functions, "feeds.site_feed", lambda **_: ("render failed", 500))
        write(app, make_record(id="good-three", slug="good-three", published="2025-08-01T11:15:00+05:30",
                               updated="2025-08-01T11:15:00+05:30"))   # the site feed is due again
        report = mirror.sync()
        assert report.kept >= 1
        assert copy.read_bytes() == good
        assert (tmp_path / "feeds" / "rss.xml.gz").exists() and (tmp_path / "feeds" / "rss.xml.br").exists()
        monkeypatch.undo()
        mirror.sync()   # the app answers again: the copy follows
        assert "good-three" in feed_ids("rss", copy.read_bytes())
    finally:
        mirror.close()


@pytest.mark.slow  # full mirror syncs (about 1,300 files each): 13-30 s
@pytest.mark.sqlite_only  # the mirror reads the app over HTTP; the store is the app's
def test_the_mirror_still_removes_what_the_app_no_longer_has(app, make_record, tmp_path, monkeypatch):
    store_articles(app, make_record)
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        page = tmp_path / f"articles/{GOOD_IDS[0]}.html"
        assert page.exists()
        monkeypatch.setitem(app.view_functions, "pages.article", lambda **_: ("gone", 410))
        write(app, make_record(id=GOOD_IDS[0], slug=GOOD_IDS[0], title="बदली हुई ख़बर",
                               published="2025-08-01T07:15:00+05:30", updated="2025-08-01T12:15:00+05:30"))
        mirror.sync()
        assert not page.exists()
    finally:
        mirror.close()
