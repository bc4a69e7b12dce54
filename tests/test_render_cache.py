"""Render once per change: documents built once per change of their scope, in every process alike,
304s decided before anything is built, compressed once, served stale while the store is down."""
from __future__ import annotations

import gzip
import json
import threading
import time

import brotli
import pytest
from sqlalchemy.exc import OperationalError

from feedsvc.render.feeds import scope as feed_scope
from feedsvc.web import db, documents, render_cache
from feedsvc.web.render_cache import RenderCache, compress, validator
from tests.conftest import build_app


def renders(app) -> int:
    return documents.cache(app).stats["renders"]


def put(client, api_headers, record):
    response = client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code in (200, 201), response.data


def item_ids(client, url="/feeds/feed.json") -> list[str]:
    return [item["id"].rsplit("/", 1)[1] for item in client.get(url).get_json()["items"]]


# ---- the cache on its own ------------------------------------------------------------------------

def test_a_document_is_built_once_per_validator():
    cache, builds = RenderCache(), []
    build = lambda: builds.append(1) or b"<rss/>"  # noqa: E731
    first = cache.get("k", "v1", build)
    assert cache.get("k", "v1", build) is first and len(builds) == 1
    assert cache.get("k", "v2", build) is not first and len(builds) == 2
    assert cache.stats == {"renders": 2, "hits": 1}


def test_every_encoding_is_compressed_once_and_decodes_to_the_body():
    body = ("<p>मानसून सत्र आज से शुरू</p>" * 200).encode("utf-8")
    bodies = compress(body)
    assert gzip.decompress(bodies["gzip"]) == body and brotli.decompress(bodies["br"]) == body
    assert bodies["identity"] is body
    assert compress(body) == bodies  # the same bytes in every process: no timestamp in the gzip header


def test_validator_is_stable_and_changes_with_every_input():
    base = validator(("feed", "rss", "site"), 3, "2025-08-01 09:15:00", "salt")
    assert base == validator(("feed", "rss", "site"), 3, "2025-08-01 09:15:00", "salt")
    assert len({base, validator(("feed", "atom", "site"), 3, "2025-08-01 09:15:00", "salt"),
                validator(("feed", "rss", "site"), 4, "2025-08-01 09:15:00", "salt"),
                validator(("feed", "rss", "site"), 3, "2025-08-01 09:15:01", "salt"),
                validator(("feed", "rss", "site"), 3, "2025-08-01 09:15:00", "other settings")}) == 5


def test_least_recently_used_documents_leave_first_beyond_the_byte_budget():
    cache = RenderCache(max_bytes=4000)
    noise = lambda n: lambda: bytes(range(256)) * n  # noqa: E731  (incompressible enough to have a size)
    for key in "abc":
        cache.get(key, "v", noise(4))
    cache.get("a", "v", noise(4))  # a is now the most recent
    cache.get("d", "v", noise(4))
    assert cache.bytes <= 4000
    assert cache.stale("a") is not None and cache.stale("b") is None
    assert cache.stats["evictions"] >= 1


def test_concurrent_requests_for_one_document_build_it_once():
    cache, builds = RenderCache(), []

    def slow_build():
        builds.append(1)
        time.sleep(0.2)
        return b"<feed/>"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", "v", slow_build))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len({id(r) for r in results}) == 1


# ---- through the app -------------------------------------------------------------------------------

def test_each_feed_is_rendered_once_however_often_and_however_encoded(client, app, api_headers, make_record):
    put(client, api_headers, make_record())
    before = renders(app)
    for encoding in ("identity", "gzip", "br", "gzip", "br", "identity"):
        assert client.get("/feeds/rss.xml", headers={"Accept-Encoding": encoding}).status_code == 200
        client.head("/feeds/rss.xml", headers={"Accept-Encoding": encoding})
    assert renders(app) == before + 1


def test_304_is_answered_before_any_feed_is_built(client, app, api_headers, make_record):
    put(client, api_headers, make_record())
    etag = client.get("/feeds/section/national/atom.xml").headers["ETag"]
    documents.cache(app).clear()
    before = renders(app)
    response = client.get("/feeds/section/national/atom.xml", headers={"If-None-Match": etag})
    assert response.status_code == 304 and renders(app) == before


def test_a_write_through_the_api_changes_exactly_the_feeds_it_touches(client, app, api_headers, make_record):
    put(client, api_headers, make_record())
    put(client, api_headers, make_record(id="sports-1", slug="sports-1", section={"key": "sports", "name": "खेल"},
                                         tags=[], updated=None, published="2025-08-01T08:00:00+05:30"))
    urls = ["/feeds/feed.json", "/feeds/section/national/feed.json", "/feeds/section/sports/feed.json"]
    etags = {url: client.get(url).headers["ETag"] for url in urls}
    put(client, api_headers, make_record(id="national-2", slug="national-2", updated=None,
                                         published="2025-08-02T08:00:00+05:30"))
    after = {url: client.get(url, headers={"If-None-Match": etags[url]}) for url in urls}
    assert after["/feeds/feed.json"].status_code == 200
    assert after["/feeds/section/national/feed.json"].status_code == 200
    assert after["/feeds/section/sports/feed.json"].status_code == 304
    assert item_ids(client, "/feeds/section/national/feed.json") == ["national-2", "test-2025-08-01-monsoon"]


def test_an_edit_and_a_withdrawal_show_at_once(client, api_headers, make_record):
    put(client, api_headers, make_record())
    assert client.get("/feeds/feed.json").get_json()["items"][0]["title"] == make_record()["title"]
    put(client, api_headers, make_record(title="नया शीर्षक", updated="2025-08-01T10:00:00+05:30"))
    assert client.get("/feeds/feed.json").get_json()["items"][0]["title"] == "नया शीर्षक"
    client.delete("/api/articles/test-2025-08-01-monsoon", headers=api_headers)
    assert item_ids(client) == []


def test_two_processes_agree_through_the_store(database_url, api_headers, make_record):
    """Two apps on one database stand for two gunicorn workers: each has its own render cache."""
    one, two = build_app(database_url), build_app(database_url)
    first, second = one.test_client(), two.test_client()
    put(first, api_headers, make_record())
    assert item_ids(second) == ["test-2025-08-01-monsoon"]  # worker two renders and keeps its copy
    put(first, api_headers, make_record(id="later", slug="later", updated=None,
                                        published="2025-08-02T09:00:00+05:30"))
    assert item_ids(second) == ["later", "test-2025-08-01-monsoon"]  # its copy was not served stale
    from_one, from_two = first.get("/feeds/rss.xml"), second.get("/feeds/rss.xml")
    assert from_one.headers["ETag"] == from_two.headers["ETag"] and from_one.data == from_two.data
    assert second.get("/feeds/rss.xml", headers={"If-None-Match": from_one.headers["ETag"]}).status_code == 304
    for app in (one, two):
        db.engine(app).dispose()


def test_a_write_is_heard_by_its_own_app_only(database_url, api_headers, make_record):
    """Two apps in one process, on one database, trusting their counters for a minute: a write
    through one is served by that one at once; the other, like another gunicorn worker, keeps
    trusting the counters it read (store.changed reaches only the receivers of the writer's engine)."""
    writer, other = (build_app(database_url, FEED_STATE_RECHECK_MS=60_000) for _ in range(2))
    put(writer.test_client(), api_headers, make_record())
    assert item_ids(writer.test_client()) == item_ids(other.test_client()) == ["test-2025-08-01-monsoon"]
    put(writer.test_client(), api_headers, make_record(id="later", slug="later", updated=None,
                                                       published="2025-08-02T09:00:00+05:30"))
    assert item_ids(writer.test_client()) == ["later", "test-2025-08-01-monsoon"]
    assert item_ids(other.test_client()) == ["test-2025-08-01-monsoon"]
    documents.counters(other).clear()  # what the recheck interval's end does
    assert item_ids(other.test_client()) == ["later", "test-2025-08-01-monsoon"]
    for app in (writer, other):
        db.engine(app).dispose()


def test_a_held_copy_is_served_while_the_store_is_down(client, app, api_headers, make_record, monkeypatch):
    put(client, api_headers, make_record())
    held = client.get("/feeds/atom.xml")

    def store_down(*_args, **_kwargs):
        raise OperationalError("SELECT scope_state", {}, Exception("could not connect to server"))

    monkeypatch.setattr(feed_scope.store, "scope_state_of", store_down)
    again = client.get("/feeds/atom.xml")
    assert again.status_code == 200 and again.data == held.data and again.headers["ETag"] == held.headers["ETag"]
    missing = client.get("/feeds/section/national/atom.xml")
    assert missing.status_code == 503 and int(missing.headers["Retry-After"]) > 0
    assert "unavailable" in missing.get_json()["error"]


def test_the_cache_stays_within_its_byte_budget(database_url, api_headers, make_record):
    app = build_app(database_url, RENDER_CACHE_MAX_BYTES=30_000)
    client = app.test_client()
    for day in range(1, 6):
        put(client, api_headers, make_record(id=f"s{day}", slug=f"s{day}", updated=None,
                                             published=f"2025-08-0{day}T09:00:00+05:30"))
    for url in ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/tag/parliament/rss.xml",
                "/feeds/author/test-reporter/atom.xml", "/feeds.opml", "/feeds"):
        assert client.get(url).status_code == 200
    cache = documents.cache(app)
    assert 0 < cache.bytes <= 30_000 and cache.stats["evictions"] > 0
    db.engine(app).dispose()


def test_revision_and_settings_are_part_of_the_etag(database_url, api_headers, make_record, monkeypatch):
    app = build_app(database_url)
    client = app.test_client()
    put(client, api_headers, make_record())
    etag = client.get("/feeds/rss.xml").headers["ETag"]
    renamed = build_app(database_url, SITE_NAME="दूसरा नाम")
    assert renamed.test_client().get("/feeds/rss.xml").headers["ETag"] != etag
    monkeypatch.setattr(render_cache, "OUTPUT_REVISION", "next")
    assert client.get("/feeds/rss.xml").headers["ETag"] != etag
    for each in (app, renamed):
        db.engine(each).dispose()
