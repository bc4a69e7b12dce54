"""Language per entry: an `en` article inside the `hi` site says so in every feed format and in the
news sitemap."""
import json
from datetime import datetime, timezone

import feedparser
from lxml import etree

from feedsvc.render import sitemaps
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "http://purl.org/dc/elements/1.1/"
ATOM = "http://www.w3.org/2005/Atom"


def _store_both(client, api_headers, make_record):
    put_record(client, api_headers, make_record(id="hindi", slug="hindi"))
    put_record(client, api_headers, make_record(id="english", slug="english", title="Monsoon session opens",
                                                language="en", published="2025-08-01T10:15:00+05:30",
                                                updated="2025-08-01T10:15:00+05:30"))


def _by_slug(urls_and_langs):
    return {url.rsplit("/", 1)[-1]: lang for url, lang in urls_and_langs}


def test_each_atom_entry_carries_its_xml_lang(client, api_headers, make_record):
    _store_both(client, api_headers, make_record)
    body = client.get("/feeds/atom.xml").data
    entries = etree.fromstring(body).findall(f"{{{ATOM}}}entry")
    assert _by_slug((e.find(f"{{{ATOM}}}link").get("href"), e.get(XML_LANG)) for e in entries) == \
        {"hindi": "hi", "english": "en"}
    parsed = feedparser.parse(body)
    assert {e.link.rsplit("/", 1)[-1]: e.title_detail.language for e in parsed.entries} == {"hindi": "hi", "english": "en"}


def test_each_rss_item_carries_dc_language(client, api_headers, make_record):
    _store_both(client, api_headers, make_record)
    items = etree.fromstring(client.get("/feeds/rss.xml").data).findall("channel/item")
    assert _by_slug((i.findtext("link"), i.findtext(f"{{{DC}}}language")) for i in items) == \
        {"hindi": "hi", "english": "en"}


def test_each_json_feed_item_carries_language(client, api_headers, make_record):
    _store_both(client, api_headers, make_record)
    items = json.loads(client.get("/feeds/feed.json").data)["items"]
    assert _by_slug((i["url"], i["language"]) for i in items) == {"hindi": "hi", "english": "en"}


def test_the_news_sitemap_labels_each_article_with_its_language(app, client, api_headers, make_record):
    _store_both(client, api_headers, make_record)
    with db.engine(app).connect() as conn:
        body = b"".join(sitemaps.news_sitemap(conn, site_url=SITE_URL, publication="p", language="hi",
                                              now=datetime(2025, 8, 1, 12, tzinfo=timezone.utc)))
    ns = {"sm": sitemaps.SITEMAP_NS, "news": sitemaps.NEWS_NS}
    urls = etree.fromstring(body).findall("sm:url", ns)
    assert _by_slug((u.findtext("sm:loc", namespaces=ns), u.findtext("news:news/news:publication/news:language",
                                                                     namespaces=ns)) for u in urls) == \
        {"hindi": "hi", "english": "en"}


def test_news_language_is_the_iso_639_code():
    assert sitemaps.news_language("en-IN") == "en" and sitemaps.news_language("zh-TW") == "zh-tw"
