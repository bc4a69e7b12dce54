"""Takedowns (issue 17 item 2): a DELETE takes an article out of every output, tells caches by
surrogate key through the durable outbox, and the static mirror drops its files within a second."""
from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

import pytest
from lxml import etree
from sqlalchemy import select

from feedsvc.publish import mirror as export
from feedsvc.publish import purge, websub
from feedsvc.render import oembed, sitemaps
from feedsvc.store import websub_outbox as outbox
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.loopback import RecordingServer
from tests.support.mirrors import watching
from tests.support.records import put_record

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

IST = timezone(timedelta(hours=5, minutes=30))
SCOPES = ("site", "section:national", "tag:parliament", "author:test-reporter")
NS = {"atom": "http://www.w3.org/2005/Atom", "sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
FAST = dict(WEBSUB_SENDER="worker", WEBSUB_POLL_SECONDS=0.05, WEBSUB_RETRY_BASE_SECONDS=0.2,
            WEBSUB_RETRY_MAX_SECONDS=1.0, WEBSUB_TIMEOUT=5)


def fresh_record(make_record, **changes) -> dict:
    """The test record, published an hour ago (so the news sitemap lists it too)."""
    when = (datetime.now(IST) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    return make_record(published=when, updated=when, **changes)


def delete(client, api_headers, article_id: str, **headers):
    return client.delete(f"/api/articles/{article_id}", headers={**api_headers, **headers})


def local(url: str) -> str:
    return url.removeprefix(SITE_URL)


def feed_ids(client, scope: str) -> dict[str, set[str]]:
    """format -> the ids of the entries each feed of a scope lists (tombstones are not entries)."""
    found = {}
    for url in websub.topic_urls(SITE_URL, scope):
        fmt, body = url.rsplit("/", 1)[1].split(".")[0].replace("feed", "json"), client.get(local(url)).get_data()
        if url.endswith(".json"):
            found[fmt] = {item["id"] for item in json.loads(body)["items"]}
        elif url.endswith("atom.xml"):
            found[fmt] = set(etree.fromstring(body).xpath("/atom:feed/atom:entry/atom:id/text()", namespaces=NS))
        else:
            found[fmt] = set(etree.fromstring(body).xpath("/rss/channel/item/guid/text()"))
    return found


def sitemap_urls(client) -> set[str]:
    urls = set()
    index = etree.fromstring(client.get(sitemaps.INDEX_PATH).get_data())
    for loc in index.xpath("//sm:loc/text()", namespaces=NS) + [SITE_URL + sitemaps.NEWS_PATH]:
        urls |= set(etree.fromstring(client.get(local(loc)).get_data()).xpath("//sm:url/sm:loc/text()", namespaces=NS))
    return urls


def article_answers(client, slug: str) -> dict[str, int]:
    page = f"{SITE_URL}/articles/{slug}"
    return {"page": client.get(f"/articles/{slug}").status_code, "amp": client.get(f"/amp/{slug}").status_code,
            "embed": client.get(f"/embed/{slug}").status_code,
            "oembed": client.get(f"{oembed.ENDPOINT}?url={quote(page, safe='')}").status_code}


# ---- the article leaves every output ---------------------------------------------------------------

def test_a_delete_takes_the_article_out_of_every_feed_page_embed_and_sitemap(client, api_headers, make_record):
    record = fresh_record(make_record)
    put_record(client, api_headers, record)
    slug, page_url = record["slug"], f"{SITE_URL}/articles/{record['slug']}"
    entry = next(iter(feed_ids(client, "site")["rss"]))
    assert all(entry in ids for scope in SCOPES for ids in feed_ids(client, scope).values())
    assert page_url in sitemap_urls(client)
    assert article_answers(client, slug) == {"page": 200, "amp": 200, "embed": 200, "oembed": 200}

    assert delete(client, api_headers, record["id"]).status_code == 200

    for scope in SCOPES:
        for fmt, ids in feed_ids(client, scope).items():
            assert entry not in ids, f"{scope} {fmt} still lists the article"
    assert page_url not in sitemap_urls(client)
    assert article_answers(client, slug) == {"page": 410, "amp": 410, "embed": 410, "oembed": 404}


def test_atom_says_the_deletion_with_a_tombstone_rss_and_json_by_absence(client, api_headers, make_record):
    record = fresh_record(make_record)
    put_record(client, api_headers, record)
    entry = next(iter(feed_ids(client, "site")["atom"]))
    delete(client, api_headers, record["id"])
    atom = etree.fromstring(client.get("/feeds/atom.xml").get_data())
    refs = atom.xpath("//at:deleted-entry/@ref", namespaces={"at": "http://purl.org/atompub/tombstones/1.0"})
    assert refs == [entry]


# ---- Surrogate-Key / Cache-Tag ----------------------------------------------------------------------

def keys_of(response) -> tuple[list[str], list[str]]:
    return response.headers.get("Surrogate-Key", "").split(" "), response.headers.get("Cache-Tag", "").split(",")


@pytest.mark.parametrize("path, expected", [
    ("/feeds/rss.xml", ["site"]), ("/feeds/atom.xml", ["site"]), ("/feeds/feed.json", ["site"]),
    ("/feeds/section/national/rss.xml", ["section:national"]), ("/feeds/tag/parliament/atom.xml", ["tag:parliament"]),
    ("/feeds/author/test-reporter/feed.json", ["author:test-reporter"]),
    ("/", ["site"]), ("/section/national", ["section:national"]), ("/tag/parliament", ["tag:parliament"]),
    ("/feeds.opml", ["site"]), ("/feeds", ["site"]), (sitemaps.INDEX_PATH, ["site"]), (sitemaps.NEWS_PATH, ["site"]),
    ("/embed/latest?section=national", ["section:national"]),
    ("/articles/monsoon-session-begins", ["article:test-2025-08-01-monsoon", "section:national"]),
    ("/amp/monsoon-session-begins", ["article:test-2025-08-01-monsoon"]),
    ("/embed/monsoon-session-begins", ["article:test-2025-08-01-monsoon"]),
    (f"{oembed.ENDPOINT}?url={quote(SITE_URL + '/articles/monsoon-session-begins', safe='')}",
     ["article:test-2025-08-01-monsoon"]),
])
def test_every_kind_of_response_names_what_it_holds(client, record, path, expected):
    response = client.get(path)
    assert response.status_code == 200
    surrogate_keys, cache_tags = keys_of(response)
    assert sorted(surrogate_keys) == sorted(expected) and sorted(cache_tags) == sorted(expected)
    # A revalidation (304) names the same keys: a CDN refreshing its copy keeps them.
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and keys_of(again) == keys_of(response)


def test_a_withdrawn_articles_410_names_it_too(client, api_headers, record):
    delete(client, api_headers, record["id"])
    response = client.get(f"/articles/{record['slug']}")
    assert response.status_code == 410 and "article:test-2025-08-01-monsoon" in keys_of(response)[0]


def test_keys_are_printable_ascii_without_a_separator():
    key = purge.surrogate_key("tag:मानसून, सत्र")
    assert key.isascii() and key.isprintable() and " " not in key and "," not in key
    assert unquote(key) == "tag:मानसून, सत्र"


# ---- purges through the outbox ----------------------------------------------------------------------

class PurgeServer(RecordingServer):
    """A loopback CDN API: records each purge request as (path, headers, JSON body)."""

    def record(self, path, headers, body):
        return path, dict(headers), json.loads(body) if body else None


@pytest.fixture
def cdn():
    server = PurgeServer()
    yield server
    server.close()


def purge_app(make_app, cdn, **overrides):
    return make_app(PURGE_FASTLY_API=cdn.base, PURGE_FASTLY_SERVICE="svc1", PURGE_FASTLY_KEY="fastly-secret",
                    PURGE_CLOUDFLARE_API=cdn.base, PURGE_CLOUDFLARE_ZONE="zone9", PURGE_CLOUDFLARE_TOKEN="cf-secret",
                    PURGE_WEBHOOKS=[f"{cdn.base}/hook"], **FAST, **overrides)


def pending_purges(app) -> set[tuple[str, str]]:
    with db.engine(app).connect() as conn:
        return set(conn.execute(select(outbox.c.hub_url, outbox.c.topic_url)
                                .where(outbox.c.kind == websub.PURGE, outbox.c.sent_at.is_(None))).all())


EXPECTED_KEYS = {"site", "section:national", "tag:parliament", "author:test-reporter", "article:test-2025-08-01-monsoon"}


def test_a_delete_queues_purges_of_its_scopes_and_article_in_its_own_transaction(database_url, make_app, cdn,
                                                                                  api_headers, make_record):
    app = purge_app(make_app, cdn)
    client = app.test_client()
    put_record(client, api_headers, make_record())
    websub.publisher(app).sender().send_due()
    assert pending_purges(app) == set()
    # A refused DELETE (a stale If-Match) commits nothing and queues nothing.
    assert delete(client, api_headers, "test-2025-08-01-monsoon", **{"If-Match": '"v9"'}).status_code == 412
    assert pending_purges(app) == set()
    delete(client, api_headers, "test-2025-08-01-monsoon")
    targets = {"fastly:svc1", "cloudflare:zone9", f"{cdn.base}/hook"}
    assert pending_purges(app) == {(t, k) for t in targets for k in EXPECTED_KEYS}


def test_purges_reach_fastly_cloudflare_and_a_webhook_in_their_own_shapes(make_app, cdn, api_headers, make_record):
    app = purge_app(make_app, cdn)
    put_record(app.test_client(), api_headers, make_record())
    cdn.requests.clear()
    delete(app.test_client(), api_headers, "test-2025-08-01-monsoon")
    websub.publisher(app).sender().send_due()
    fastly = {unquote(p.rsplit("/", 1)[1]) for p, h, _ in cdn.requests
              if p.startswith("/service/svc1/purge/") and h["Fastly-Key"] == "fastly-secret"}
    cloudflare = [b["tags"] for p, h, b in cdn.requests
                  if p == "/zones/zone9/purge_cache" and h["Authorization"] == "Bearer cf-secret"]
    hook = [b["keys"] for p, _, b in cdn.requests if p == "/hook"]
    assert fastly == EXPECTED_KEYS
    assert {k for tags in cloudflare for k in tags} == EXPECTED_KEYS
    assert {k for keys in hook for k in keys} == EXPECTED_KEYS
    assert pending_purges(app) == set()


def test_a_failing_purge_endpoint_is_retried_and_shown_in_the_status(make_app, api_headers, make_record):
    cdn = PurgeServer(statuses=[503])
    try:
        app = make_app(PURGE_WEBHOOKS=[f"{cdn.base}/hook"], **FAST)
        put_record(app.test_client(), api_headers, make_record())
        sender = websub.publisher(app).sender()
        assert sender.send_due() == 0      # refused: 503
        status = app.test_cli_runner().invoke(args=["websub", "status"])
        assert f"purge {cdn.base}/hook" in status.output and "failing" in status.output
        assert "HTTP 503" in status.output
        deadline = time.monotonic() + 10   # backoff from 0.2 s
        while pending_purges(app):
            assert time.monotonic() < deadline, "the purge was never retried"
            sender.send_due()
            time.sleep(0.05)
        assert len(cdn.requests) == 2 and cdn.requests[0][2] == cdn.requests[1][2]
    finally:
        cdn.close()


def test_a_fastly_setting_without_its_key_is_refused(make_app):
    with pytest.raises(ValueError, match="FEEDSVC_PURGE_FASTLY_KEY"):
        make_app(PURGE_FASTLY_SERVICE="svc1")


# ---- the static mirror --------------------------------------------------------------------------------

@pytest.mark.slow  # a full mirror sync (about 1,300 files), then the watch: 15-55 s
def test_the_watching_mirror_removes_the_articles_files_within_a_second(app, client, api_headers, make_record,
                                                                        tmp_path):
    put_record(client, api_headers, fresh_record(make_record))
    mirror = export.Mirror(app, tmp_path)
    mirror.sync()
    files = [tmp_path / "articles/monsoon-session-begins.html", tmp_path / "amp/monsoon-session-begins.html"]
    files += [f.with_name(f.name + suffix) for f in files for suffix in (".gz", ".br")]
    month = next(tmp_path.glob("sitemaps/articles-*.xml"))
    assert all(f.exists() for f in files) and b"monsoon-session-begins" in month.read_bytes()
    with watching(mirror):
        time.sleep(0.3)   # the watch is in its stride
        assert delete(client, api_headers, "test-2025-08-01-monsoon").status_code == 200
        answered = time.monotonic()
        while any(f.exists() for f in files) or (month.exists() and b"monsoon-session-begins" in month.read_bytes()):
            assert time.monotonic() - answered < 1.0, [str(f) for f in files if f.exists()]
            time.sleep(0.01)
    assert b"monsoon-session-begins" not in (tmp_path / "feeds/rss.xml").read_bytes()
    assert b"monsoon-session-begins" not in (tmp_path / sitemaps.NEWS_PATH.lstrip("/")).read_bytes()


@pytest.mark.slow  # a full mirror sync, then the watch's start-up pass over every document again: 30-110 s
def test_a_takedown_during_the_watchs_start_up_pass_leaves_the_mirror_within_a_second(
        app, client, api_headers, make_record, tmp_path, monkeypatch):
    """`export --watch` brings the mirror up to date beside the watch, not before it (issue 17)."""
    put_record(client, api_headers, fresh_record(make_record))
    first = export.Mirror(app, tmp_path)
    first.sync()
    first.close()
    monkeypatch.setattr(export, "EXPORT_REVISION", "next")   # a new layout: every document is due again
    files = [tmp_path / "articles/monsoon-session-begins.html", tmp_path / "amp/monsoon-session-begins.html"]
    files += [f.with_name(f.name + suffix) for f in files for suffix in (".gz", ".br")]
    manifest = sqlite3.connect(f"file:{tmp_path / export.STATE_DIR / export.MANIFEST}?mode=ro", uri=True)
    try:
        with watching(export.Mirror(app, tmp_path), sync_first=True):
            time.sleep(0.3)   # the start-up pass is under way
            assert delete(client, api_headers, "test-2025-08-01-monsoon").status_code == 200
            answered = time.monotonic()
            while any(f.exists() for f in files):
                assert time.monotonic() - answered < 1.0, [str(f) for f in files if f.exists()]
                time.sleep(0.01)
            (old,) = manifest.execute("SELECT count(*) FROM documents WHERE stamp NOT LIKE 'next|%'").fetchone()
            assert old > 100, "the start-up pass was over before the takedown: the test shows nothing"
    finally:
        manifest.close()
