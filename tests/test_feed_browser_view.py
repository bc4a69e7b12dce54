"""A feed opened in a browser reads as a page; feed readers keep getting the feed's bytes.

A real headless Chromium navigates to the feed URLs of a live local server (its Fetch Metadata
headers mark a top-level navigation, feedsvc/web/navigation.py); feedparser and curl fetch the
same URLs with the headers they always send, and get the feed, with the ETag of the feed.
"""
import subprocess

import feedparser
import pytest
from lxml import etree, html

from feedsvc.web import navigation
from tests.support.apps import fast_path_replays, import_samples
from tests.support.records import write
from tests.support.servers import live_app

NAVIGATION = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none",
              "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FEEDLY_LIKE = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"}
CURL = {"Accept": "*/*", "User-Agent": "curl/8.5.0"}
FEEDPARSER = {"Accept": feedparser.http.ACCEPT_HEADER}
FEED_PATHS = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/national/rss.xml"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(origin, app) of a live server with every sample article imported."""
    with live_app(tmp_path_factory.mktemp("live-feeds"), RATELIMIT_ENABLED=False) as (origin, app):
        import_samples(app)
        yield origin, app


def vary(response) -> set[str]:
    """The header names of a Werkzeug or Playwright response's Vary."""
    return {v.strip().lower() for v in response.headers.get("Vary", response.headers.get("vary", "")).split(",")}


def feed_title(body: bytes) -> str:
    return feedparser.parse(body).feed.title


@pytest.mark.browser
@pytest.mark.xdist_group("pages-browser")
def test_chromium_opening_a_feed_reads_an_html_page(live, page):
    origin, app = live
    plain = app.test_client().get("/feeds/rss.xml")
    answer = page.goto(origin + "/feeds/rss.xml")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    assert "sec-fetch-dest" in vary(answer)
    assert page.locator("h1").inner_text() == feed_title(plain.data)
    channel = etree.fromstring(plain.data).find("channel")
    links = [a.get_attribute("href") for a in page.locator(".feed-items li a").all()]
    assert links == [item.findtext("link") for item in channel.findall("item")]
    assert page.locator("#feed-address").input_value() == origin + "/feeds/rss.xml"
    formats = {a.inner_text(): a.get_attribute("href") for a in page.locator(".formats a[type]").all()}
    assert formats == {"RSS": origin + "/feeds/rss.xml", "Atom": origin + "/feeds/atom.xml",
                       "JSON Feed": origin + "/feeds/feed.json"}


@pytest.mark.parametrize("path", FEED_PATHS)
@pytest.mark.parametrize("headers", [FEEDPARSER, CURL, FEEDLY_LIKE, {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"}],
                         ids=["feedparser", "curl", "feedly-like", "script-fetch"])
def test_readers_get_the_feed_with_its_own_etag(live, path, headers):
    _, app = live
    client = app.test_client()
    reference = client.get(path)   # no headers at all: the feed as it always was
    answer = client.get(path, headers=headers)
    assert answer.data == reference.data and answer.headers["ETag"] == reference.headers["ETag"]
    assert answer.mimetype == reference.mimetype != "text/html"
    assert {"sec-fetch-dest", "sec-fetch-mode", "accept-encoding"} <= vary(answer)
    view = client.get(path, headers=NAVIGATION)
    assert view.mimetype == "text/html" and view.headers["ETag"] != answer.headers["ETag"]
    assert {"sec-fetch-dest", "sec-fetch-mode"} <= vary(view)


def test_feedparser_and_curl_over_http_get_the_feed(live):
    origin, app = live
    reference = app.test_client().get("/feeds/atom.xml", headers={"Accept-Encoding": "gzip, deflate"})
    parsed = feedparser.parse(origin + "/feeds/atom.xml")   # sends gzip, deflate and its Accept header
    assert not parsed.bozo and parsed.version == "atom10" and parsed.etag == reference.headers["ETag"]
    assert parsed.feed.title == feed_title(app.test_client().get("/feeds/atom.xml").data)
    curl = subprocess.run(["curl", "-s", "-D", "-", origin + "/feeds/rss.xml"], capture_output=True, check=True,
                          timeout=30).stdout
    head, _, body = curl.partition(b"\r\n\r\n")
    assert body == app.test_client().get("/feeds/rss.xml").data
    assert etree.fromstring(body).tag == "rss" and b"sec-fetch-dest" in head.lower()


def test_the_view_is_a_cacheable_document(live):
    _, app = live
    client = app.test_client()
    view = client.get("/feeds/section/national/atom.xml", headers=NAVIGATION)
    again = client.get("/feeds/section/national/atom.xml", headers={**NAVIGATION, "If-None-Match": view.headers["ETag"]})
    assert again.status_code == 304 and {"sec-fetch-dest", "sec-fetch-mode"} <= vary(again)
    tree = html.fromstring(view.data)
    assert tree.findtext(".//h1") == feed_title(client.get("/feeds/section/national/atom.xml").data)
    assert tree.get("lang") == "hi" and tree.xpath("//h2[@id='subscribe']")
    assert "application/atom+xml" in tree.xpath("//head/link[@rel='alternate']/@type")


def test_navigation_needs_both_fetch_metadata_headers():
    assert navigation.is_navigation({"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"})
    assert not navigation.is_navigation({"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "no-cors"})
    assert not navigation.is_navigation({"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate"})
    assert not navigation.is_navigation({})


def test_the_fast_path_passes_navigations_to_the_app(database_url, make_app, make_record):
    app = make_app(FAST_PATH=True, RATELIMIT_ENABLED=False)
    write(app, make_record())
    client = app.test_client()
    feed = client.get("/feeds/rss.xml")
    assert client.get("/feeds/rss.xml").data == feed.data and fast_path_replays(app) == 1   # the feed is replayed
    for _ in range(2):
        view = client.get("/feeds/rss.xml", headers=NAVIGATION)
        assert view.mimetype == "text/html" and html.fromstring(view.data).findtext(".//h1")
    assert fast_path_replays(app) == 1
    after = client.get("/feeds/rss.xml")
    assert after.data == feed.data and after.headers["ETag"] == feed.headers["ETag"]
