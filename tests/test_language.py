"""Language per entry: an `en` article inside the `hi` site says so in every feed format and in the
news sitemap."""
import json
from datetime import datetime, timezone

import feedparser
import pytest
from lxml import etree

from feedsvc import store
from feedsvc.render import sitemaps
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

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


# ---- single-language feeds (?lang=) --------------------------------------------------------------

def _store_three(client, api_headers, make_record):
    _store_both(client, api_headers, make_record)
    put_record(client, api_headers, make_record(id="english-2", slug="english-2", title="Budget session ends",
                                                language="en", published="2025-08-02T10:15:00+05:30",
                                                updated="2025-08-02T10:15:00+05:30"))


def _self_links(fmt: str, body: bytes) -> tuple[str, str | None]:
    """(self, next) links of a feed document, read with its own parser."""
    if fmt == "json":
        doc = json.loads(body)
        return doc["feed_url"], doc.get("next_url")
    root = etree.fromstring(body)
    atom_links = root.findall(f".//{{{ATOM}}}link")
    rels = {link.get("rel"): link.get("href") for link in atom_links}
    return rels["self"], rels.get("next")


def _slugs(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [item["url"].rsplit("/", 1)[-1] for item in json.loads(body)["items"]]
    return [entry.link.rsplit("/", 1)[-1] for entry in feedparser.parse(body).entries]


@pytest.mark.parametrize("fmt,filename", [("rss", "rss.xml"), ("atom", "atom.xml"), ("json", "feed.json")])
def test_a_single_language_feed_has_only_that_language_and_links_round_trip(client, api_headers, make_record,
                                                                          fmt, filename):
    _store_three(client, api_headers, make_record)
    every = client.get(f"/feeds/{filename}").data
    assert set(_slugs(fmt, every)) == {"hindi", "english", "english-2"}
    first = client.get(f"/feeds/{filename}?lang=en&limit=1")
    assert _slugs(fmt, first.data) == ["english-2"]
    self_url, next_url = _self_links(fmt, first.data)
    assert self_url == f"{SITE_URL}/feeds/{filename}?lang=en&limit=1"
    assert f'<{self_url}>; rel="self"' in first.headers.getlist("Link")
    assert _slugs(fmt, client.get(self_url.removeprefix(SITE_URL)).data) == ["english-2"]
    second = client.get(next_url.removeprefix(SITE_URL))
    assert _slugs(fmt, second.data) == ["english"] and _self_links(fmt, second.data)[0] == next_url
    assert _slugs(fmt, client.get(f"/feeds/{filename}?lang=hi").data) == ["hindi"]


def test_a_single_language_feed_is_its_own_feed(client, api_headers, make_record):
    _store_three(client, api_headers, make_record)
    every, english = (feedparser.parse(client.get(f"/feeds/atom.xml{q}").data).feed for q in ("", "?lang=en"))
    assert english.id != every.id and english.title != every.title
    root = etree.fromstring(client.get("/feeds/rss.xml?lang=en").data)
    assert root.findtext("channel/language") == "en"
    assert client.get("/feeds/section/national/feed.json?lang=en").status_code == 200


@pytest.mark.parametrize("bad", ["english", "EN", "e", "en_US", "hi;drop"])
def test_a_language_that_is_no_tag_is_a_bad_parameter(client, bad):
    response = client.get("/feeds/rss.xml", query_string={"lang": bad})
    assert response.status_code == 400 and "lang must be a language tag" in response.get_json()["error"]


def test_opml_lists_the_site_feed_per_language_present(client, api_headers, make_record):
    put_record(client, api_headers, make_record(id="hindi", slug="hindi"))
    only_hindi = etree.fromstring(client.get("/feeds.opml").data)
    assert not [o for o in only_hindi.iter("outline") if "lang=" in (o.get("xmlUrl") or "")]
    _store_both(client, api_headers, make_record)
    outlines = etree.fromstring(client.get("/feeds.opml?format=atom").data).iter("outline")
    by_language = {o.get("language"): o.get("xmlUrl") for o in outlines if "lang=" in (o.get("xmlUrl") or "")}
    assert by_language == {"en": f"{SITE_URL}/feeds/atom.xml?lang=en", "hi": f"{SITE_URL}/feeds/atom.xml?lang=hi"}


def test_opml_languages_are_every_live_syndicated_articles(app, client, api_headers, make_record):
    """Exact, however old the only article of a language: drafts, scheduled ones and those kept out of
    feeds name no language, and a withdrawn one stops naming its own."""
    put_record(client, api_headers, make_record(id="english", slug="english", language="en",
                                                published="2001-08-01T10:15:00+05:30", updated="2001-08-01T10:15:00+05:30"))
    for day in (2, 3):
        stamp = f"2025-08-0{day}T10:15:00+05:30"
        put_record(client, api_headers, make_record(id=f"hindi-{day}", slug=f"hindi-{day}", published=stamp, updated=stamp))
    put_record(client, api_headers, make_record(id="urdu-draft", slug="urdu-draft", language="ur", status="draft"))
    put_record(client, api_headers, make_record(id="urdu-later", slug="urdu-later", language="ur",
                                                published="2099-01-01T10:15:00+05:30", updated="2099-01-01T10:15:00+05:30"))
    put_record(client, api_headers, make_record(id="tamil", slug="tamil", language="ta", syndication={"feeds": False}))
    with app.app_context():
        assert store.live_languages(db.connection()) == ["en", "hi"]
    client.delete("/api/articles/english", headers=api_headers)
    with app.app_context():
        assert store.live_languages(db.connection()) == ["hi"]


@pytest.mark.parametrize("path", ["/feeds/rss.xml", "/feeds/section/national/rss.xml", "/feeds/tag/parliament/rss.xml",
                                  "/feeds/author/test-reporter/rss.xml"])
def test_every_scope_kind_keeps_to_the_language_asked(client, api_headers, make_record, path):
    _store_three(client, api_headers, make_record)
    assert _slugs("rss", client.get(f"{path}?lang=en").data) == ["english-2", "english"]
    assert _slugs("rss", client.get(f"{path}?lang=hi").data) == ["hindi"]
    nobody = client.get(f"{path}?lang=fr")   # a language no article is in: an empty feed, still valid
    assert nobody.status_code == 200 and _slugs("rss", nobody.data) == []
    # An article that changes language leaves the old language's feeds of every scope it is in.
    put_record(client, api_headers, make_record(id="hindi", slug="hindi", language="en",
                                                updated="2025-08-03T10:15:00+05:30"))
    assert _slugs("rss", client.get(f"{path}?lang=hi").data) == []
    assert set(_slugs("rss", client.get(f"{path}?lang=en").data)) == {"hindi", "english", "english-2"}
    client.delete("/api/articles/english", headers=api_headers)
    assert "english" not in _slugs("rss", client.get(f"{path}?lang=en").data)


def test_a_language_tag_longer_than_any_stored_is_refused_on_write(client, api_headers, make_record):
    record = make_record(id="long", slug="long", language="en-" + "-".join(["abcdefgh"] * 4))   # 38 characters
    response = client.put("/api/articles/long", data=json.dumps(record), content_type="application/json",
                          headers=api_headers)
    assert response.status_code == 422
    assert [problem["field"] for problem in response.get_json()["problems"]] == ["language"]
