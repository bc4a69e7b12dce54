"""Feeds as readers get them: every scope of the sample data in every format, read back with real
parsers (feedparser for RSS and Atom, json + the JSON Feed 1.1 schema, lxml) and compared with the records."""
from __future__ import annotations

import hashlib
import html
import json
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import feedparser
import lxml.html
import pytest
from flask import render_template_string
from jsonschema import Draft202012Validator
from lxml import etree

from feedsvc import store
from feedsvc.ingest.images import rendition
from feedsvc.ingest.records import parse_record
from feedsvc.render import feeds
from feedsvc.render.feeds.atom import distinct_updated
from feedsvc.render.links import resolved
from feedsvc.validate import validate_document
from feedsvc.web import db
from feedsvc.web import feeds as web_feeds
from tests.support.apps import ROOT, SITE_URL
from tests.support.records import sample_image_settings, sample_records

RECORDS = {r["id"]: r for r in sample_records() if r.get("status", "published") == "published"}
# As feeds show them: site paths under SITE_URL (the store keeps them as paths).
ARTICLES = {i: resolved(parse_record(r, site_url=SITE_URL, images=sample_image_settings()), SITE_URL)
            for i, r in RECORDS.items()}
SCOPES = sorted({scope for article in ARTICLES.values() for scope in store.article_scopes(article)})
FORMATS = ("rss", "atom", "json")
FILENAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
CONTENT_TYPES = {"rss": "application/rss+xml; charset=utf-8", "atom": "application/atom+xml; charset=utf-8",
                 "json": "application/feed+json; charset=utf-8"}
VALIDATE_KINDS = {"rss": "rss", "atom": "atom", "json": "jsonfeed"}
SEED_ID = "pbs-2025-07-23-all-of-us-are-dead-2"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"
JSONFEED_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "feedsvc" / "schemas" / "jsonfeed-1.1.json").read_text("utf-8")))


def feed_path(scope: str, fmt: str) -> str:
    kind, _, key = scope.partition(":")
    if scope == "site":
        return f"/feeds/{FILENAMES[fmt]}"
    return f"/feeds/{kind}/{key}/{FILENAMES[fmt]}" if key else f"/feeds/{kind}/{FILENAMES[fmt]}"


def newest_first(scope: str) -> list:
    """The live sample articles of a scope in feed order: newest first, ties by id, descending."""
    found = [a for a in ARTICLES.values() if scope in store.article_scopes(a)]
    return sorted(found, key=lambda a: (a.published.astimezone(timezone.utc), a.id), reverse=True)


def utc(struct) -> datetime:
    return datetime(*struct[:6], tzinfo=timezone.utc)


# ---- reading a feed back, whatever its format, into one shape ------------------------------------

def read_feed(fmt: str, body: bytes) -> tuple[dict, list[dict]]:
    """(feed-level fields, items) as a reader sees them; asserts the document parses cleanly."""
    if fmt == "json":
        doc = json.loads(body.decode("utf-8"))
        errors = sorted(JSONFEED_SCHEMA.iter_errors(doc), key=str)
        assert not errors, [e.message for e in errors]
        return _json_feed(doc)
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    links = {link["rel"]: link["href"] for link in parsed.feed.get("links", []) if link.get("rel") != "alternate"}
    meta = {"title": parsed.feed.title, "home": parsed.feed.link, "self": links.get("self"),
            "next": links.get("next"), "language": parsed.feed.get("language")}
    return meta, [_parsed_entry(fmt, e) for e in parsed.entries]


def _parsed_entry(fmt: str, e) -> dict:
    tags = e.get("tags", [])
    media = e.get("media_content", [{}])[0]
    return {
        "id": e.id, "title": e.title, "link": e.link, "summary": e.summary,
        "content": e.content[0].value if "content" in e else None,
        "published": utc(e.published_parsed), "published_raw": e.published,
        "updated": utc(e.updated_parsed) if fmt == "atom" else None,
        "updated_raw": e.get("updated") if fmt == "atom" else None,
        "authors": [a["name"] for a in e.get("authors", [])],
        "categories": [t["term"] if fmt == "rss" else t["label"] for t in tags],
        "image": {"url": media.get("url"), "width": media.get("width"), "height": media.get("height")}
        if media else None,
        "thumbnail": e.get("media_thumbnail", [{}])[0].get("url"),
        "guid_is_link": e.get("guidislink") if fmt == "rss" else False,  # only RSS has isPermaLink
    }


def _json_feed(doc: dict) -> tuple[dict, list[dict]]:
    meta = {"title": doc["title"], "home": doc["home_page_url"], "self": doc["feed_url"],
            "next": doc.get("next_url"), "language": doc.get("language")}
    items = [{
        "id": item["id"], "title": item["title"], "link": item["url"], "summary": item["summary"],
        "content": item.get("content_html"),
        "published": datetime.fromisoformat(item["date_published"]), "published_raw": item["date_published"],
        "updated": datetime.fromisoformat(item["date_modified"]), "updated_raw": item["date_modified"],
        "authors": [a["name"] for a in item["authors"]], "categories": item["tags"],
        "image": {"url": item["image"]} if "image" in item else None, "thumbnail": item.get("image"),
        "guid_is_link": False,
    } for item in doc["items"]]
    return meta, items


def fetch(client, url: str, fmt: str) -> tuple[dict, list[dict], bytes]:
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"] == CONTENT_TYPES[fmt]
    problems = validate_document(response.data, VALIDATE_KINDS[fmt], url=SITE_URL + url)
    assert not problems, [str(p) for p in problems]
    meta, items = read_feed(fmt, response.data)
    return meta, items, response.data


def paragraphs(body_html: str) -> list[str]:
    """The text of each paragraph of a body, whitespace collapsed: what must reach the reader intact."""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [" ".join(p.text_content().split()) for p in root.iter("p") if p.text_content().strip()]


def urls_in(content_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(content_html, create_parent="div")
    return [value for element in root.iter() for name, value in element.attrib.items() if name in ("href", "src")]


def authors_as_read(names: list[str], fmt: str) -> list[str]:
    """RSS names every author in one dc:creator (readers show one of several); Atom and JSON Feed list each."""
    return [", ".join(names)] if fmt == "rss" else names


def assert_item_matches(item: dict, article, fmt: str) -> None:
    record = RECORDS[article.id]
    assert item["title"] == record["title"]  # byte-exact: no escaping left, none doubled
    assert item["id"] == f"tag:news.example,2025:articles/{article.id}"
    assert item["guid_is_link"] is False
    assert item["link"] == article.url and item["link"].startswith(SITE_URL + "/")
    assert item["summary"] == article.summary
    published = datetime.fromisoformat(record["published"])
    assert item["published"] == published.replace(microsecond=0)
    expected_raw = format_datetime(published) if fmt == "rss" else published.replace(microsecond=0).isoformat()
    assert item["published_raw"] == expected_raw  # the record's own offset, to the second
    if fmt != "rss":
        assert item["updated"] == datetime.fromisoformat(record.get("updated", record["published"]))
    assert item["authors"] == authors_as_read([a["name"] for a in record["authors"]], fmt)
    assert item["categories"] == [record["section"]["name"]] + [t["name"] for t in record.get("tags", [])]
    if record.get("image"):
        image = item["image"]
        given = record["image"]["url"]
        # A local image goes out as its lead rendition, at its real size; a remote one as the record says.
        lead = rendition(article.image, "lead") or {
            "url": SITE_URL + given if given.startswith("/") else given,
            "width": record["image"]["width"], "height": record["image"]["height"]}
        assert image["url"] == lead["url"]
        thumbnail = rendition(article.image, "thumbnail") if fmt != "json" else None
        assert item["thumbnail"] == (thumbnail or lead)["url"]
        if fmt != "json":
            assert (image["width"], image["height"]) == (str(lead["width"]), str(lead["height"]))
    text = " ".join(lxml.html.fragment_fromstring(item["content"], create_parent="div").text_content().split())
    for paragraph in paragraphs(article.body_html):
        assert paragraph in text
    assert all(url.startswith(("http://", "https://")) for url in urls_in(item["content"]))
    assert "<iframe" not in item["content"]


# ---- every feed of the sample data ----------------------------------------------------------

@pytest.mark.postgresql_once(per=lambda params: params["scope"].split(":")[0])  # one listing query a scope kind
@pytest.mark.sampled(per=lambda params: (params["scope"].split(":")[0], params["fmt"], params["sample_app"]))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scope", SCOPES)
def test_every_feed_of_the_samples_matches_the_records_over_two_pages(sample_client, scope, fmt):
    expected = newest_first(scope)
    limit = math.ceil(len(expected) / 2)
    first_url = f"{feed_path(scope, fmt)}?limit={limit}"
    meta, page1, _ = fetch(sample_client, first_url, fmt)
    assert meta["self"] == SITE_URL + first_url
    assert meta["language"] == "hi"
    pages = [page1]
    if len(expected) > limit:
        assert meta["next"] and meta["next"].startswith(SITE_URL + feed_path(scope, fmt))
        meta2, page2, _ = fetch(sample_client, meta["next"][len(SITE_URL):], fmt)
        assert meta2["next"] is None
        pages.append(page2)
    else:
        assert meta["next"] is None
    assert [len(p) for p in pages] == [limit, len(expected) - limit][:len(pages)]
    items = [item for page in pages for item in page]
    assert [i["id"] for i in items] == [f"tag:news.example,2025:articles/{a.id}" for a in expected]
    for item, article in zip(items, expected, strict=True):
        assert_item_matches(item, article, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_site_feed_carries_the_newest_articles_at_the_default_limit(sample_client, fmt):
    meta, items, body = fetch(sample_client, feed_path("site", fmt), fmt)
    assert meta["self"] == SITE_URL + feed_path("site", fmt)
    assert [i["id"].rsplit("/", 1)[1] for i in items] == [a.id for a in newest_first("site")][:50]
    assert "&#" not in body.decode("utf-8")  # Devanagari as UTF-8, never as character references


@pytest.mark.parametrize("fmt", FORMATS)
def test_seed_article_is_dated_to_the_second_with_its_offset(sample_client, fmt):
    _, items, _ = fetch(sample_client, feed_path("tag:all-of-us-are-dead", fmt), fmt)
    (item,) = [i for i in items if i["id"].endswith(SEED_ID)]
    assert item["published"] == datetime(2025, 7, 23, 10, 0, 0, tzinfo=timezone.utc)
    assert item["published_raw"] == ("Wed, 23 Jul 2025 15:30:00 +0530" if fmt == "rss"
                                     else "2025-07-23T15:30:00+05:30")


@pytest.mark.parametrize("fmt", FORMATS)
def test_youtube_embed_of_the_seed_article_becomes_a_linked_thumbnail(sample_client, fmt):
    _, items, _ = fetch(sample_client, feed_path("tag:all-of-us-are-dead", fmt), fmt)
    (item,) = [i for i in items if i["id"].endswith(SEED_ID)]
    root = lxml.html.fragment_fromstring(item["content"], create_parent="div")
    (link,) = [a for a in root.iter("a") if a.get("href") == "https://www.youtube.com/watch?v=IN5TD4VRcSM"]
    image = link.find("img")
    assert image.get("src") == "https://i.ytimg.com/vi/IN5TD4VRcSM/hqdefault.jpg"
    assert (image.get("width"), image.get("height")) == ("480", "360")
    assert "All of Us Are Dead | Official Trailer | Netflix" in link.text_content()


# ---- items written from records made for the test ------------------------------------------

def put(client, api_headers, record):
    response = client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code in (200, 201), response.data
    return response


def only_item(client, fmt: str, scope: str = "site") -> dict:
    _, items, _ = fetch(client, feed_path(scope, fmt), fmt)
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_title_with_markup_characters_arrives_exactly_once_escaped(client, api_headers, make_record, fmt):
    title = 'बजट "2025" & <नई> योजनाएँ — R&D पर ज़ोर'
    put(client, api_headers, make_record(title=title))
    body = client.get(feed_path("site", fmt)).data.decode("utf-8")
    assert "&amp;amp;" not in body and "&amp;lt;" not in body
    assert only_item(client, fmt)["title"] == title


@pytest.mark.parametrize("fmt", FORMATS)
def test_iframe_players_in_a_body_become_links_a_reader_can_show(client, api_headers, make_record, fmt):
    body = ('<p>वीडियो देखिए:</p><iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ" title="बजट भाषण"></iframe>'
            '<p>और यह भी: <iframe src="https://player.vimeo.com/video/76979871"></iframe></p>'
            '<p>बिना स्रोत: <iframe srcdoc="<p>x</p>"></iframe><iframe src="http://plain.example/x"></iframe>।</p>')
    put(client, api_headers, make_record(body_html=body))
    content = only_item(client, fmt)["content"]
    root = lxml.html.fragment_fromstring(content, create_parent="div")
    assert root.find(".//iframe") is None
    hrefs = [a.get("href") for a in root.iter("a")]
    # A frame over plain http is no player but still a link naming its host (issue 16, item 6).
    assert hrefs == ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://vimeo.com/76979871",
                     "http://plain.example/x"]
    assert "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg" in [i.get("src") for i in root.iter("img")]
    assert "बजट भाषण" in root.text_content() and "बिना स्रोत: plain.example पर देखें।" in root.text_content()


@pytest.mark.parametrize("fmt", FORMATS)
def test_entry_id_survives_an_edit_of_title_slug_and_time(client, api_headers, make_record, fmt):
    put(client, api_headers, make_record())
    before = only_item(client, fmt)
    put(client, api_headers, make_record(title="संशोधित शीर्षक", slug="revised-headline",
                                         updated="2025-08-01T11:00:00+05:30"))
    after = only_item(client, fmt)
    assert after["id"] == before["id"] and after["title"] == "संशोधित शीर्षक"
    assert after["link"] == f"{SITE_URL}/articles/revised-headline"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_author_is_named(client, api_headers, make_record, fmt):
    authors = [{"key": "a-one", "name": "पहला लेखक"}, {"key": "a-two", "name": "दूसरी लेखिका",
                                                          "url": "/authors/a-two"}]
    put(client, api_headers, make_record(authors=authors))
    expected = authors_as_read(["पहला लेखक", "दूसरी लेखिका"], fmt)
    assert only_item(client, fmt)["authors"] == expected
    assert only_item(client, fmt, "author:a-two")["authors"] == expected


def test_rss_names_every_author_in_one_dc_creator(client, api_headers, make_record):
    """newsboat shows the last of several dc:creator elements and rss-parser the first: one element
    naming both reads right in each."""
    put(client, api_headers, make_record(authors=[{"name": "पहला लेखक"}, {"name": "दूसरी लेखिका"}]))
    root = etree.fromstring(client.get("/feeds/rss.xml").data)
    creators = root.findall(".//item/{http://purl.org/dc/elements/1.1/}creator")
    assert [c.text for c in creators] == ["पहला लेखक, दूसरी लेखिका"]
    assert feedparser.parse(client.get("/feeds/rss.xml").data).entries[0].author == "पहला लेखक, दूसरी लेखिका"


def test_entries_updated_in_the_same_second_get_distinct_atom_updated(client, api_headers, make_record):
    same = "2025-08-01T11:00:00+05:30"
    put(client, api_headers, make_record(updated=same))
    put(client, api_headers, make_record(id="test-2025-08-01-second", slug="second-story", updated=same))
    _, items, body = fetch(client, "/feeds/atom.xml", "atom")  # fetch validates: no duplicate-updated
    values = [e.text for e in etree.fromstring(body).iterfind("{*}entry/{*}updated")]
    assert len(values) == 2 and len(set(values)) == 2
    # Each stays inside the second the record gives, and is the same in every feed it appears in.
    assert [datetime.fromisoformat(v).replace(microsecond=0) for v in values] == [datetime.fromisoformat(same)] * 2
    in_tag_feed = [e.text for e in etree.fromstring(client.get("/feeds/tag/parliament/atom.xml").data)
                   .iterfind("{*}entry/{*}updated")]
    assert in_tag_feed == values


def test_atom_updated_tie_break_is_the_same_in_every_process():
    """A fraction from a stable hash, not Python's per-process hash(): the mirror and every worker agree."""
    entry, second = "tag:news.example,2025:articles/a", datetime(2025, 8, 1, 11)
    code = ("from datetime import datetime; from feedsvc.render.feeds.atom import distinct_updated; "
            f"print(distinct_updated({entry!r}, datetime(2025, 8, 1, 11)).isoformat())")
    # This process and one started with another hash seed (one interpreter start, not two: ~1 s CPU each).
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
    here = distinct_updated(entry, second).isoformat()
    assert other == here and here.startswith("2025-08-01T11:00:00.")
    kept = datetime(2025, 8, 1, 11, 0, 0, 250000)
    assert distinct_updated("tag:x", kept) == kept  # a stored fraction is kept as it is


def test_atom_declares_the_tombstones_namespace_only_with_a_tombstone(client, api_headers, make_record):
    put(client, api_headers, make_record())
    put(client, api_headers, make_record(id="test-2025-08-02-other", slug="other-story",
                                         published="2025-08-02T09:00:00+05:30", updated=None))
    assert TOMBSTONES_NS not in etree.fromstring(client.get("/feeds/atom.xml").data).nsmap.values()
    client.delete("/api/articles/test-2025-08-01-monsoon", headers=api_headers)
    root = etree.fromstring(client.get("/feeds/atom.xml").data)
    assert root.nsmap.get("at") == TOMBSTONES_NS and root.find(f"{{{TOMBSTONES_NS}}}deleted-entry") is not None


def test_summary_only_configuration_leaves_the_body_out(database_url, api_headers, make_record, make_app):
    app = make_app(FEED_FULL_TEXT=False)
    client = app.test_client()
    put(client, api_headers, make_record())
    rss = etree.fromstring(client.get("/feeds/rss.xml").data)
    assert rss.find(".//{http://purl.org/rss/1.0/modules/content/}encoded") is None
    assert rss.findtext(".//item/description") == "संसद का मानसून सत्र आज से शुरू हो रहा है।"
    atom = etree.fromstring(client.get("/feeds/atom.xml").data)
    assert atom.find(".//{http://www.w3.org/2005/Atom}content") is None
    item = json.loads(client.get("/feeds/feed.json").data)["items"][0]
    assert "content_html" not in item and item["content_text"] == item["summary"]


# ---- the channel ----------------------------------------------------------------------------

def test_rss_channel_carries_what_readers_and_hubs_need(database_url, api_headers, make_record, make_app):
    # Names that do not resolve, and only the links to them are checked: no sender thread looking them up.
    app = make_app(WEBSUB_HUBS=["https://hub.example/", "https://pubsubhubbub.example/"], WEBSUB_SENDER="worker")
    client = app.test_client()
    put(client, api_headers, make_record())
    channel = etree.fromstring(client.get("/feeds/section/national/rss.xml").data).find("channel")
    atom_links = {(link.get("rel"), link.get("href"))
                  for link in channel.findall("{http://www.w3.org/2005/Atom}link")}
    assert atom_links == {("self", f"{SITE_URL}/feeds/section/national/rss.xml"),
                          ("first", f"{SITE_URL}/feeds/section/national/rss.xml"),
                          ("hub", "https://hub.example/"), ("hub", "https://pubsubhubbub.example/")}
    assert channel.findtext("title") == "देश — समाचार दर्पण"
    assert channel.findtext("link") == f"{SITE_URL}/section/national"
    assert channel.findtext("language") == "hi" and channel.findtext("ttl") == "5"
    assert channel.findtext("copyright") == app.config["SITE_COPYRIGHT"]
    assert channel.findtext("image/url") == f"{SITE_URL}/static/logo.png"
    assert channel.findtext("lastBuildDate").endswith("+0530")


def test_atom_and_json_feeds_carry_hubs_logo_icon_and_rights(database_url, api_headers, make_record, make_app):
    app = make_app(WEBSUB_HUBS=["https://hub.example/"], WEBSUB_SENDER="worker")   # as above: links only
    client = app.test_client()
    put(client, api_headers, make_record())
    atom = feedparser.parse(client.get("/feeds/atom.xml").data).feed
    assert ("hub", "https://hub.example/") in [(link.rel, link.href) for link in atom.links]
    assert atom.logo == f"{SITE_URL}/static/logo.png" and atom.icon == f"{SITE_URL}/static/icon.png"
    assert atom.rights == app.config["SITE_COPYRIGHT"] and atom.language == "hi"
    doc = json.loads(client.get("/feeds/feed.json").data)
    assert doc["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]
    assert doc["icon"] == f"{SITE_URL}/static/icon.png" and doc["feed_url"] == f"{SITE_URL}/feeds/feed.json"
    assert client.get("/static/logo.png").status_code == 200


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_site_still_has_a_valid_site_feed(client, fmt):
    meta, items, _ = fetch(client, feed_path("site", fmt), fmt)
    assert items == [] and meta["next"] is None


# ---- withdrawals, paging, errors ------------------------------------------------------------

def test_withdrawn_article_leaves_every_feed_and_is_a_tombstone_in_atom(client, api_headers, make_record):
    put(client, api_headers, make_record())
    put(client, api_headers, make_record(id="test-2025-08-02-other", slug="other-story",
                                         published="2025-08-02T09:00:00+05:30", updated=None))
    assert client.delete("/api/articles/test-2025-08-01-monsoon", headers=api_headers).status_code == 200
    gone = "tag:news.example,2025:articles/test-2025-08-01-monsoon"
    for fmt in FORMATS:
        for scope in ("site", "section:national", "tag:parliament", "author:test-reporter"):
            _, items, _ = fetch(client, feed_path(scope, fmt), fmt)
            assert gone not in [i["id"] for i in items]
    atom = etree.fromstring(client.get("/feeds/tag/parliament/atom.xml").data)
    (tombstone,) = atom.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry")
    assert tombstone.get("ref") == gone
    assert datetime.fromisoformat(tombstone.get("when")).utcoffset().total_seconds() == 19800
    assert tombstone.find("{http://www.w3.org/2005/Atom}link").get("href") == f"{SITE_URL}/articles/monsoon-session-begins"
    assert b"deleted-entry" not in client.get("/feeds/tag/parliament/rss.xml").data


def test_tombstones_leave_after_the_configured_window(database_url, api_headers, make_record, make_app):
    app = make_app(TOMBSTONE_DAYS=0)
    client = app.test_client()
    put(client, api_headers, make_record())
    client.delete("/api/articles/test-2025-08-01-monsoon", headers=api_headers)
    put(client, api_headers, make_record(id="test-later", slug="later", published="2025-08-03T09:00:00+05:30",
                                         updated=None))
    assert b"deleted-entry" not in client.get("/feeds/atom.xml").data


@pytest.mark.parametrize("fmt", FORMATS)
def test_paging_neither_repeats_nor_drops_when_an_article_arrives_between_pages(client, api_headers,
                                                                               make_record, fmt):
    for day in range(1, 6):
        put(client, api_headers, make_record(id=f"story-{day}", slug=f"story-{day}", updated=None,
                                             published=f"2025-08-0{day}T09:00:00+05:30"))
    meta, page1, _ = fetch(client, f"{feed_path('site', fmt)}?limit=2", fmt)
    put(client, api_headers, make_record(id="breaking", slug="breaking", updated=None,
                                         published="2025-08-09T09:00:00+05:30"))
    meta2, page2, _ = fetch(client, meta["next"][len(SITE_URL):], fmt)
    meta3, page3, _ = fetch(client, meta2["next"][len(SITE_URL):], fmt)
    assert meta3["next"] is None
    ids = [i["id"].rsplit("/", 1)[1] for i in page1 + page2 + page3]
    assert ids == ["story-5", "story-4", "story-3", "story-2", "story-1"]
    assert parse_qs(urlsplit(meta["next"]).query)["limit"] == ["2"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", ["section/no-such-section", "tag/no-such-tag", "author/no-such-author",
                                  "tag/UPPER", "tag/a..b", "author/" + "x" * 65])
def test_unknown_or_impossible_key_is_404(sample_client, path, fmt):
    response = sample_client.get(f"/feeds/{path}/{FILENAMES[fmt]}")
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_unknown_scope_kind_or_file_is_404(sample_client):
    assert sample_client.get("/feeds/category/sports/rss.xml").status_code == 404
    assert sample_client.get("/feeds/section/sports/index.xml").status_code == 404


@pytest.mark.parametrize("value", ["0", "201", "-1", "abc", "1.5", "५०", "", "9" * 30])
def test_bad_limit_is_400_naming_the_allowed_range(sample_client, value):
    response = sample_client.get(f"/feeds/rss.xml?limit={value}")
    assert response.status_code == 400
    assert "limit must be a whole number from 1 to 200" in response.get_json()["error"]


@pytest.mark.parametrize("value", ["junk", "20250723T100000000000", "20251399T100000000000~x",
                                   "20250723T100000000000~../../etc"])
def test_bad_page_cursor_is_400(sample_client, value):
    response = sample_client.get("/feeds/atom.xml", query_string={"after": value})
    assert response.status_code == 400 and "after" in response.get_json()["error"]


# ---- OPML, directory, autodiscovery, browser view ---------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_opml_lists_every_feed_grouped(sample_client, fmt):
    response = sample_client.get("/feeds.opml", query_string={} if fmt == "rss" else {"format": fmt})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    assert not validate_document(response.data, "opml", url=f"{SITE_URL}/feeds.opml")
    root = etree.fromstring(response.data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    groups = root.findall("body/outline")
    assert [g.get("text") for g in groups] == ["पूरी साइट (Whole site)", "विभाग (Sections)", "विषय (Tags)",
                                                "लेखक (Authors)", "वीडियो (Video)"]
    # The W3C Feed Validation Service's OPML rules: no <docs> in head, a folder carries text alone.
    assert root.find("head/docs") is None and all(set(g.attrib) == {"text"} for g in groups)
    listed = [o.get("xmlUrl") for o in root.iter("outline") if o.get("type") == "rss"]
    assert sorted(listed) == sorted(SITE_URL + feed_path(scope, fmt) for scope in SCOPES)
    section = next(o for o in root.iter("outline") if o.get("xmlUrl", "").endswith("/section/sports/" + FILENAMES[fmt]))
    assert section.get("text") == "खेल — समाचार दर्पण"


SCOPE_NAMES = {scope: name for article in ARTICLES.values() for scope, name in store.article_scopes(article).items()}


def distinguishing_name(scope: str) -> str:
    """What tells a feed apart in a reader's list: the site's name, a section's or author's, "#tag", or "वीडियो"."""
    return "वीडियो" if scope == "video" else ("#" if scope.startswith("tag:") else "") + SCOPE_NAMES[scope]


@pytest.mark.slow  # every scope's feed in every format, rendered and parsed: 14-30 s
def test_each_scope_is_listed_by_its_own_name_first_alike_in_every_format_and_opml(sample_app, sample_client):
    """newsboat and Feedly cut a feed's title in their lists at about 30-40 characters: the
    distinguishing name leads, the site's name (the same on every feed) follows."""
    site_name = sample_app.config["SITE_NAME"]
    opml = etree.fromstring(sample_client.get("/feeds.opml").data)
    opml_titles = {o.get("xmlUrl"): (o.get("title"), o.get("text")) for o in opml.iter("outline") if o.get("xmlUrl")}
    for scope in SCOPES:
        titles = {fmt: read_feed(fmt, sample_client.get(feed_path(scope, fmt)).data)[0]["title"] for fmt in FORMATS}
        title = titles["rss"]
        assert set(titles.values()) == {title} and opml_titles[SITE_URL + feed_path(scope, "rss")] == (title, title)
        if scope == "site":
            assert title == site_name
        else:
            assert title == f"{distinguishing_name(scope)} — {site_name}", scope
    assert {distinguishing_name(s) for s in SCOPES if s != "site"} >= {"#क्रिकेट", "खेल"}


def test_directory_page_offers_every_scope_in_every_format(sample_client):
    response = sample_client.get("/feeds")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = lxml.html.fromstring(response.data)
    assert page.get("lang") == "hi"
    links = {a.get("href") for a in page.iter("a")}
    for scope in SCOPES:
        for fmt in FORMATS:
            assert SITE_URL + feed_path(scope, fmt) in links
    assert page.get_element_by_id("section-sports") is not None
    assert "Sections" in page.text_content() and "विभाग" in page.text_content()
    alternates = page.xpath("//head/link[@rel='alternate']")
    assert [(link.get("type"), link.get("href")) for link in alternates] == [
        ("application/rss+xml", f"{SITE_URL}/feeds/rss.xml"), ("application/atom+xml", f"{SITE_URL}/feeds/atom.xml"),
        ("application/feed+json", f"{SITE_URL}/feeds/feed.json")]


@pytest.mark.slow  # 4,500 scopes written and listed: 5-7 s
def test_directory_stays_small_with_thousands_of_tags_and_opml_keeps_them_all(client, engine):
    """4,500 scopes once made /feeds 1.9 MB: it now shows the most recently active tags and a link to
    their full list in pages; OPML, what readers import, still lists every one."""
    with engine.begin() as conn:
        store.record_changes(conn, {f"tag:t{n:04d}": f"विषय {n}" for n in range(3000)},
                             datetime(2025, 7, 1))
        store.record_changes(conn, {"section:national": "देश", **{f"author:a{n}": f"लेखक {n}" for n in range(5)}},
                             datetime(2025, 7, 2))
        store.record_changes(conn, {f"tag:t{n:04d}": f"विषय {n}" for n in (7, 1234, 2999)}, datetime(2025, 8, 1))
    response = client.get("/feeds")
    assert response.status_code == 200 and len(response.data) < 200_000
    page = lxml.html.fromstring(response.data)
    tag_rows = [li.get("id") for li in page.xpath("//li[starts-with(@id, 'tag-')]")]
    assert len(tag_rows) == web_feeds.DIRECTORY_RECENT and tag_rows[:3] == ["tag-t2999", "tag-t1234", "tag-t0007"]
    assert page.get_element_by_id("section-national") is not None
    assert len(page.xpath("//li[starts-with(@id, 'author-')]")) == 5   # few: listed whole, no "more"
    more = [a.get("href") for a in page.xpath("//p[@class='more']/a")]
    assert more == ["/feeds/tag"]

    listed, url = [], "/feeds/tag"
    while url:
        kind_page = lxml.html.fromstring(client.get(url).data)
        rows = [li.get("id") for li in kind_page.xpath("//li[starts-with(@id, 'tag-')]")]
        assert len(rows) <= web_feeds.DIRECTORY_PAGE and not kind_page.xpath("//li[@id='section-national']")
        listed += rows
        url = next(iter(kind_page.xpath("//a[@rel='next']/@href")), None)
    assert listed == [f"tag-t{n:04d}" for n in range(3000)]
    assert client.get("/feeds/tag?page=16").status_code == 404
    assert client.get("/feeds/tag?page=0").status_code == 400

    opml = etree.fromstring(client.get("/feeds.opml").data)
    tag_feeds = [o.get("xmlUrl") for o in opml.iter("outline") if "/feeds/tag/" in o.get("xmlUrl", "")]
    assert len(tag_feeds) == 3000


def test_directory_and_opml_validators_are_those_of_the_whole_list_of_scopes_and_move_with_any_scope(client, engine):
    """The directory's and OPML's stamp is taken scope by scope (no list of every scope held between
    requests); their ETags are still blake2b over the repr of the whole list, as when it was held."""
    with engine.begin() as conn:
        store.record_changes(conn, {"section:national": "देश", "tag:t1": "विषय 'एक'", "author:a1": "लेखक"},
                             datetime(2025, 7, 1))
    with engine.connect() as conn:
        states = store.all_scopes(conn)
        stamp = web_feeds.scopes_stamp(store.each_scope(conn))
    whole = hashlib.blake2b(repr([(s.scope, s.name, s.version) for s in states]).encode("utf-8"), digest_size=12)
    assert stamp.digest == whole.hexdigest()
    assert stamp.last == max(s.modified_at for s in states)
    assert stamp.counts == {"section": 1, "tag": 1, "author": 1}
    assert web_feeds.scopes_stamp([]).digest == hashlib.blake2b(b"[]", digest_size=12).hexdigest()

    before = {path: client.get(path).headers["ETag"] for path in ("/feeds", "/feeds.opml", "/feeds/tag")}
    with engine.begin() as conn:
        store.record_changes(conn, {"tag:t1": "विषय 'एक'"}, datetime(2025, 7, 2))
    after = {path: client.get(path, headers={"If-None-Match": before[path]}) for path in before}
    assert all(response.status_code == 200 and response.headers["ETag"] != before[path]
               for path, response in after.items())
    assert client.get("/feeds.opml", headers={"If-None-Match": after["/feeds.opml"].headers["ETag"]}).status_code == 304


def test_base_layout_advertises_site_and_page_feeds_in_all_formats(sample_app):
    article = ARTICLES[SEED_ID]
    with sample_app.test_request_context("/"):
        page = render_template_string('{% extends "base.html" %}{% block content %}x{% endblock %}',
                                      feed_scopes=feeds.scopes_of(article))
    root = lxml.html.fromstring(page)
    alternates = [(link.get("type"), link.get("href"), link.get("title")) for link in root.xpath("//head/link[@rel='alternate']")]
    expected_scopes = (["site", f"section:{article.section.key}"] + [f"tag:{t.key}" for t in article.tags]
                       + [f"author:{a.key}" for a in article.authors] + (["video"] if article.has_video else []))
    assert [href for _, href, _ in alternates] == [SITE_URL + feed_path(s, f) for s in expected_scopes for f in FORMATS]
    assert ("application/rss+xml", f"{SITE_URL}/feeds/section/entertainment/rss.xml",
            "मनोरंजन — समाचार दर्पण (RSS)") in alternates
    assert root.get("lang") == "hi"
    assert "Noto Sans Devanagari" in page


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_browser_stylesheet_turns_the_feed_into_a_hindi_page(sample_client, fmt):
    body = sample_client.get(feed_path("section:sports", fmt)).data
    tree = etree.ElementTree(etree.fromstring(body))
    instruction = tree.getroot().getprevious()
    assert instruction.target == "xml-stylesheet" and 'href="/static/feed.xsl"' in instruction.text
    stylesheet = sample_client.get("/static/feed.xsl")
    assert stylesheet.status_code == 200
    transform = etree.XSLT(etree.fromstring(stylesheet.data))
    page = lxml.html.fromstring(str(transform(tree)))
    text = page.text_content()
    assert "यह एक फ़ीड है" in text and "सब्सक्राइब कैसे करें" in text
    assert f"{SITE_URL}{feed_path('section:sports', fmt)}" in text
    titles = [a.text_content() for a in page.xpath("//ul[@class='items']/li/a")]
    assert titles == [a.title for a in newest_first("section:sports")]


# ---- the one rendering function -------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_render_gives_the_bytes_the_view_serves(sample_app, sample_client, fmt):
    served = sample_client.get(f"{feed_path('tag:cricket', fmt)}?limit=2")
    site = feeds.Site.from_config(sample_app.config)
    with db.engine(sample_app).connect() as conn:
        rendered = feeds.render(fmt, "tag:cricket", conn=conn, site=site, limit=2)
        with pytest.raises(feeds.FeedNotFound):
            feeds.render(fmt, "tag:no-such-tag", conn=conn, site=site)
    assert rendered == served.data


def test_feed_urls_name_every_format_of_a_scope():
    assert feeds.feed_urls("tag:cricket", SITE_URL) == {
        "rss": f"{SITE_URL}/feeds/tag/cricket/rss.xml", "atom": f"{SITE_URL}/feeds/tag/cricket/atom.xml",
        "json": f"{SITE_URL}/feeds/tag/cricket/feed.json"}
    assert feeds.feed_urls("site", SITE_URL)["json"] == f"{SITE_URL}/feeds/feed.json"


def test_embed_link_escapes_what_it_is_given():
    from feedsvc.render.feeds.entries import embed_link
    snippet = embed_link("twitter", "https://x.com/a?b=1&c=2", 'बोली "<script>"')
    root = lxml.html.fragment_fromstring(snippet)
    assert root.get("href") == "https://x.com/a?b=1&c=2" and root.find(".//script") is None
    assert html.unescape(snippet).count("<script>") == 1  # present only as text


# ---- values from records as feeds must carry them ------------------------------------------------

MEDIA = "{http://search.yahoo.com/mrss/}"


def test_image_caption_and_credit_are_plain_text_in_media_rss(client, api_headers, make_record):
    put(client, api_headers, make_record(image={"url": "/media/test.jpg", "width": 1200, "height": 675,
                                                "caption": "<b>संसद</b> &amp; <i>भवन</i>",
                                                "credit": "<a href='http://x.example/'>फ़ाइल</a> फ़ोटो"}))
    for path in ("/feeds/rss.xml", "/feeds/atom.xml"):
        content = etree.fromstring(client.get(path).data).find(f".//{MEDIA}content")
        assert content.find(f"{MEDIA}description").get("type") == "plain"
        assert content.findtext(f"{MEDIA}description") == "संसद & भवन"
        assert content.findtext(f"{MEDIA}credit") == "फ़ाइल फ़ोटो"


def test_characters_no_url_may_hold_are_percent_encoded_in_every_format(client, api_headers, make_record):
    # The record schema admits anything but white space; '"', '<', '>' and '{|}' must not reach a feed raw.
    put(client, api_headers, make_record(url='http://news.example/articles/a"b<c>', image={
        "url": 'https://img.example/m"1"<b>{|}^.jpg', "width": 1200, "height": 675}))
    image = "https://img.example/m%221%22%3Cb%3E%7B%7C%7D%5E.jpg"
    for fmt in FORMATS:
        _, (item,), body = fetch(client, feed_path("site", fmt), fmt)  # fetch validates the document
        assert item["link"] == "http://news.example/articles/a%22b%3Cc%3E"
        assert item["image"]["url"] == image
        if fmt != "json":
            assert etree.fromstring(body).find(f".//{MEDIA}content").get("url") == image
