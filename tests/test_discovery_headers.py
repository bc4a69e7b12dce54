"""How readers and hubs find our feeds: WebSub's Link headers on every feed answer (the app's and the
fast path's, public and partner), and the paths readers probe first (/feed, /rss.xml, ...)."""
from __future__ import annotations

import json

import feedparser
import feedparser.http
import pytest
from lxml import etree
from werkzeug.http import parse_options_header
from werkzeug.serving import make_server

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.validate import validate_document
from tests.support.apps import ARTICLES, BACKENDS, SITE_URL, AppFactory, fresh_database
from tests.support.records import put_record, sample_records
from tests.support.servers import serving

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

HUBS = ["https://hub.example/", "https://pubsubhubbub.example/hub?x=1"]
# The hubs are names that do not resolve and only the links to them are checked here: no sender thread
# (it would look the names up again and again, and hold each app's closing up until its pass ends).
NAMED_HUBS = {"WEBSUB_HUBS": HUBS, "WEBSUB_SENDER": "worker"}
FORMATS = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
ATOM = "{http://www.w3.org/2005/Atom}"
SCOPES = sorted({scope for record in sample_records() if record.get("status", "published") == "published"
                 for scope in store.article_scopes(parse_record(record, site_url=SITE_URL))})
# What readers send: feedparser's own Accept header, and curl's.
READER_ACCEPT = {"feedparser": feedparser.http.ACCEPT_HEADER, "curl": "*/*"}
PROBES = {"/feed": "rss", "/feed/": "rss", "/rss": "rss", "/rss.xml": "rss", "/index.xml": "rss",
          "/atom.xml": "atom", "/feed.json": "json"}


@pytest.fixture(scope="module", params=BACKENDS)
def hub_app(request, tmp_path_factory):
    """The sample articles behind an app that names two WebSub hubs; tests must not write to it."""
    folder = tmp_path_factory.mktemp(f"hubs-{request.param}")
    with fresh_database(request.param, folder) as url, AppFactory(url, instance=folder / "instance") as make_app:
        app = make_app(**NAMED_HUBS, RATELIMIT_ENABLED=False)
        result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
        assert result.exit_code == 0, result.output
        yield app


def links(response) -> list[tuple[str, str]]:
    """(rel, target) of each Link header, in order, read with Werkzeug's header parser."""
    found = []
    for value in response.headers.getlist("Link"):
        target, params = parse_options_header(value)
        assert target.startswith("<") and target.endswith(">"), value
        found.append((params["rel"], target[1:-1]))
    return found


def self_in_document(fmt: str, body: bytes) -> str:
    if fmt == "json":
        return json.loads(body)["feed_url"]
    root = etree.fromstring(body)
    found = root.findall(f"channel/{ATOM}link[@rel='self']" if fmt == "rss" else f"{ATOM}link[@rel='self']")
    assert len(found) == 1
    return found[0].get("href")


def feed_path(scope: str, fmt: str) -> str:
    folder = "/feeds" if scope == "site" else "/feeds/" + scope.replace(":", "/")
    return f"{folder}/{FORMATS[fmt]}"


def assert_discoverable(client, path: str, fmt: str, hubs=HUBS, **request) -> str:
    """`path` answers 200, 304 and HEAD naming every hub and, once, the self link its document holds."""
    response = client.get(path, **request)
    assert response.status_code == 200, path
    expected = [("hub", hub) for hub in hubs] + [("self", self_in_document(fmt, response.data))]
    assert links(response) == expected, path
    headers = {**request.get("headers", {}), "If-None-Match": response.headers["ETag"]}
    not_modified = client.get(path, **{**request, "headers": headers})
    assert not_modified.status_code == 304 and links(not_modified) == expected, path
    assert links(client.head(path, **request)) == expected, path
    return expected[-1][1]


@pytest.mark.slow  # every scope's feed rendered and read: 7-14 s a format
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_scopes_feed_names_its_hubs_and_itself(hub_app, fmt):
    client = hub_app.test_client()
    for scope in SCOPES:
        assert assert_discoverable(client, feed_path(scope, fmt), fmt) == SITE_URL + feed_path(scope, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_later_page_names_itself_with_its_limit_and_cursor(hub_app, fmt):
    client = hub_app.test_client()
    first = f"{feed_path('site', fmt)}?limit=2"
    assert assert_discoverable(client, first, fmt) == SITE_URL + first
    body = client.get(first).data
    next_url = (json.loads(body)["next_url"] if fmt == "json" else
                etree.fromstring(body).find(f".//{ATOM}link[@rel='next']").get("href"))
    assert "after=" in next_url
    assert assert_discoverable(client, next_url.removeprefix(SITE_URL), fmt) == next_url


def test_without_hubs_a_feed_still_names_itself(sample_client):
    assert assert_discoverable(sample_client, "/feeds/tag/cricket/atom.xml", "atom", hubs=[]) == \
        f"{SITE_URL}/feeds/tag/cricket/atom.xml"


def test_the_fast_path_replays_the_link_headers(database_url, make_app, api_headers, make_record):
    app = make_app(FAST_PATH=True, **NAMED_HUBS, RATELIMIT_ENABLED=False)
    client = app.test_client()
    put_record(client, api_headers, make_record())
    path = "/feeds/section/national/rss.xml"
    fast = app.wsgi_app if hasattr(app.wsgi_app, "replays") else app.wsgi_app.app
    assert assert_discoverable(client, path, "rss") == SITE_URL + path   # the app answers; each answer kept
    kept = dict(fast.replays)
    assert {status for (*_, status) in kept} == {200, 304}
    assert assert_discoverable(client, path, "rss") == SITE_URL + path   # the replays answer
    assert all(fast.replays[key] is replay for key, replay in kept.items())   # none recorded anew


def test_partner_feeds_name_their_own_url_as_self(database_url, make_app, api_headers, make_record):
    app = make_app(**NAMED_HUBS)
    runner, client = app.test_cli_runner(), app.test_client()
    key = runner.invoke(args=["partners", "add", "Acme News"]).stdout.strip()
    put_record(client, api_headers, make_record())
    for fmt in FORMATS:
        by_path = f"/partner/{key}/feeds/section/national/{FORMATS[fmt]}?limit=1"
        assert assert_discoverable(client, by_path, fmt) == SITE_URL + by_path
        by_header = f"/partner/feeds/{FORMATS[fmt]}"
        assert assert_discoverable(client, by_header, fmt, headers={"X-Partner-Key": key}) == SITE_URL + by_header


# ---- the paths readers probe ------------------------------------------------------------------

@pytest.mark.parametrize("accept", READER_ACCEPT.values(), ids=READER_ACCEPT)
@pytest.mark.parametrize("path, fmt", PROBES.items())
def test_probed_paths_move_permanently_to_the_sites_feed(sample_client, path, fmt, accept):
    response = sample_client.get(path, headers={"Accept": accept})
    assert response.status_code == 301
    assert response.headers["Location"] == feed_path("site", fmt)
    assert "max-age" in response.headers["Cache-Control"]
    assert sample_client.head(path).headers["Location"] == response.headers["Location"]
    followed = sample_client.get(path, headers={"Accept": accept}, follow_redirects=True)
    assert followed.status_code == 200 and followed.request.path == feed_path("site", fmt)
    assert not validate_document(followed.data, {"rss": "rss", "atom": "atom", "json": "jsonfeed"}[fmt],
                                 url=SITE_URL + feed_path("site", fmt))


def test_a_feed_reader_subscribing_to_slash_feed_gets_the_rss_feed(sample_app):
    """feedparser, as readers built on it do: its own Accept header, following the 301 over HTTP."""
    with serving(make_server("127.0.0.1", 0, sample_app, threaded=True)) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        parsed = {path: feedparser.parse(base + path) for path in ("/feed/", "/atom.xml")}
    for path, version in (("/feed/", "rss20"), ("/atom.xml", "atom10")):
        result = parsed[path]
        assert result.status == 301 and result.href == base + feed_path("site", PROBES[path])
        assert not result.bozo and result.version == version and result.entries
        assert result.feed.title == sample_app.config["SITE_NAME"]
