"""Changes reach consumers: RSS items say when they changed (dcterms:modified), corrections are dated
and machine-readable and advance `updated`, a significant update is recorded, and `syndication`
keeps an article on the site but out of feeds or the news sitemap."""
from __future__ import annotations

import calendar
import json
import re
from datetime import datetime, timedelta, timezone

import feedparser
import lxml.html
import pytest
from lxml import etree

from feedsvc.ingest.records import RecordError, parse_record
from feedsvc.render import sitemaps
from feedsvc.validate import validate_document
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record

DCTERMS = "{http://purl.org/dc/terms/}modified"
ATOM = "{http://www.w3.org/2005/Atom}"
IST = timezone(timedelta(hours=5, minutes=30))
# W3C-DTF to the second with an offset: what w3c/feedvalidator's w3cdtf accepts in dcterms:modified.
W3CDTF = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
FEEDS = ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/national/rss.xml",
         "/feeds/tag/parliament/atom.xml", "/feeds/author/test-reporter/feed.json")
CORRECTION = {"date": "2025-08-03T18:00:00+05:30", "text": "मंत्री का नाम ठीक किया गया।"}


def rss_item(client, article_id: str, path: str = "/feeds/rss.xml"):
    body = client.get(path).data
    assert validate_document(body, "rss") == []
    (item,) = [i for i in etree.fromstring(body).iter("item") if i.findtext("guid").endswith(f"articles/{article_id}")]
    return item, body


def test_an_rss_item_says_when_it_was_modified(client, api_headers, make_record):
    record = make_record(updated="2025-08-02T11:30:00+05:30")
    put_record(client, api_headers, record)
    item, body = rss_item(client, record["id"])
    (modified,) = item.findall(DCTERMS)
    assert W3CDTF.match(modified.text) and datetime.fromisoformat(modified.text) == datetime.fromisoformat(
        record["updated"])
    assert item.findtext("pubDate") == "Fri, 01 Aug 2025 09:15:00 +0530"
    (entry,) = feedparser.parse(body).entries
    assert calendar.timegm(entry.updated_parsed) == datetime.fromisoformat(record["updated"]).timestamp()


def test_a_correction_advances_updated_in_every_format_and_is_machine_readable(client, api_headers, make_record):
    record = make_record(updated="2025-08-02T11:30:00+05:30", corrections=[CORRECTION])
    put_record(client, api_headers, record)
    corrected = datetime.fromisoformat(CORRECTION["date"])
    item, _ = rss_item(client, record["id"])
    assert datetime.fromisoformat(item.findtext(DCTERMS)) == corrected
    assert CORRECTION["text"] in item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
    atom = etree.fromstring(client.get("/feeds/atom.xml").data)
    # Atom adds a sub-second part per entry (atom.distinct_updated): equal to the second.
    assert datetime.fromisoformat(atom.find(f"{ATOM}entry/{ATOM}updated").text).replace(microsecond=0) == corrected
    (item_json,) = client.get("/feeds/feed.json").get_json()["items"]
    assert datetime.fromisoformat(item_json["date_modified"]) == corrected
    assert CORRECTION["text"] in item_json["content_html"]

    page = lxml.html.document_fromstring(client.get(f"/articles/{record['slug']}").get_data(as_text=True))
    (script,) = page.xpath("//script[@type='application/ld+json']")
    data = json.loads(script.text)
    assert datetime.fromisoformat(data["dateModified"]) == corrected
    assert data["correction"] == [{"@type": "CorrectionComment", "datePublished": CORRECTION["date"],
                                   "text": CORRECTION["text"]}]
    assert CORRECTION["text"] in page.text_content()


def test_a_correction_makes_a_resent_record_current_not_stale(client, api_headers, make_record):
    record = make_record(updated="2025-08-02T11:30:00+05:30")
    put_record(client, api_headers, record)
    put_record(client, api_headers, dict(record, corrections=[CORRECTION]))
    item, _ = rss_item(client, record["id"])
    assert CORRECTION["text"] in item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")


@pytest.mark.parametrize(("moment", "ok"), [("2025-08-01T12:00:00+05:30", True), ("2025-07-31T12:00:00+05:30", False),
                                            ("2025-08-03T12:00:00+05:30", False)])
def test_a_significant_update_lies_between_published_and_updated(make_record, moment, ok):
    record = make_record(updated="2025-08-02T11:30:00+05:30", significantly_updated=moment)
    if ok:
        assert parse_record(record, site_url=SITE_URL).significantly_updated == datetime.fromisoformat(moment)
    else:
        with pytest.raises(RecordError) as error:
            parse_record(record, site_url=SITE_URL)
        assert [p.field for p in error.value.problems] == ["significantly_updated"]


def test_syndication_names_profiles_that_may_not_carry_the_article(make_record):
    article = parse_record(make_record(syndication={"exclude_profiles": ["msn"]}), site_url=SITE_URL)
    assert (article.syndicated_to("msn"), article.syndicated_to("dailyhunt"), article.in_feeds) == (False, True, True)
    kept_out = parse_record(make_record(syndication={"feeds": False}), site_url=SITE_URL)
    assert not kept_out.syndicated_to("dailyhunt")
    with pytest.raises(RecordError):
        parse_record(make_record(syndication={"feed": False}), site_url=SITE_URL)


def contains(client, path: str, article_id: str) -> bool:
    return f"articles/{article_id}" in client.get(path).get_data(as_text=True)


def test_an_article_out_of_feeds_stays_on_the_site(client, api_headers, make_record):
    put_record(client, api_headers, make_record(id="other", slug="other"))
    record = make_record(syndication={"feeds": False})
    put_record(client, api_headers, record)
    assert [contains(client, path, record["id"]) for path in FEEDS] == [False] * len(FEEDS)
    assert all(contains(client, path, "other") for path in FEEDS)
    assert client.get(f"/articles/{record['slug']}").status_code == 200
    assert record["slug"] in client.get("/section/national").get_data(as_text=True)
    # Taken back into syndication, it is in every feed again (the write bumps its scopes).
    put_record(client, api_headers, dict(record, syndication={"feeds": True}, updated="2025-08-02T09:00:00+05:30"))
    assert [contains(client, path, record["id"]) for path in FEEDS] == [True] * len(FEEDS)


def test_an_article_can_stay_out_of_the_news_sitemap_only(app, client, api_headers, make_record):
    now = datetime.now(timezone.utc)
    fresh = (now - timedelta(hours=1)).astimezone(IST).isoformat(timespec="seconds")
    put_record(client, api_headers, make_record(id="in-news", slug="in-news", published=fresh, updated=fresh))
    put_record(client, api_headers, make_record(id="not-in-news", slug="not-in-news", published=fresh, updated=fresh,
                                                syndication={"news_sitemap": False}))
    with db.engine(app).connect() as conn:
        body = b"".join(sitemaps.news_sitemap(conn, site_url=SITE_URL, publication=app.config["SITE_NAME"],
                                              language="hi", now=now))
    locs = [e.text for e in etree.fromstring(body).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert locs == [f"{SITE_URL}/articles/in-news"]
    assert contains(client, "/feeds/rss.xml", "not-in-news")
