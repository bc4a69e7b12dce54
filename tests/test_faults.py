"""Faults: the store goes away or is locked, the server is killed mid-write, writers collide.

- Store down (PostgreSQL: every connection cut and new ones refused by a TCP proxy of our own,
  never the shared server) or locked (SQLite: another process holds an exclusive lock): documents
  already rendered keep being served (stale-if-error, 304s included), everything else answers 503
  with Retry-After and a clear message, and the service recovers by itself when the store is back.
- SIGKILL of a gunicorn server (master and workers) in the middle of API writes: every article is
  wholly its last acknowledged version or wholly the one in flight, and re-sending finishes the job.
- Concurrent writers through a real gunicorn: If-Match read-modify-write loses no update, the newest
  `updated` wins without If-Match, and many writers of different articles leave no duplicate item
  in any feed.
"""
from __future__ import annotations

import http.client
import json
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from feedsvc import store
from feedsvc.ingest.records import article_from_json
from feedsvc.store import articles, scope_state
from feedsvc.web import db
from tests.support.apps import API_TOKEN, SITE_URL
from tests.support.records import VALID_RECORD, assert_each_record_whole
from tests.support.servers import LIVE_AUTH, Gunicorn, TcpProxy

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}  # in-process test client
LOCK_TIMEOUT_SECONDS = 1


def record(article_id: str, version: int = 1, *, tags: int = 3, authors: int = 1, section: str = "national",
           updated_minute: int | None = None) -> dict:
    minute = version if updated_minute is None else updated_minute
    return dict(VALID_RECORD, id=article_id, slug=article_id, title=f"संस्करण {version}: {article_id}",
                section={"key": section, "name": "देश"},
                tags=[{"key": f"v{version}-t{i}", "name": f"टैग {i}"} for i in range(tags)],
                authors=[{"key": f"v{version}-a{i}", "name": f"लेखक {i}"} for i in range(authors)],
                published="2025-08-01T09:00:00+05:30",
                updated=f"2025-08-01T{10 + minute // 60:02d}:{minute % 60:02d}:00+05:30")


# ---- store down or locked --------------------------------------------------------------------

@contextmanager
def store_outage(backend: str, app, proxy: TcpProxy | None, path: str | None):
    """While inside: PostgreSQL cut off at the proxy, or SQLite exclusively locked by another process."""
    if backend == "postgresql":
        proxy.cut()
        try:
            yield
        finally:
            proxy.restore()
        return
    db.engine(app).dispose()  # our idle pooled connections would keep a shared lock
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE scope_state SET version = version")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# The defaults, and deploy/gunicorn.conf.py's: counters trusted for 0.5 s, feeds replayed at the WSGI layer.
SETUPS = {"default": {}, "production": {"FAST_PATH": True, "FEED_STATE_RECHECK_MS": 500}}


@pytest.fixture(params=list(SETUPS))
def outage_app(request, backend, database_url, make_app, tmp_path):
    """(app, outage context) with three articles; the app reaches PostgreSQL through a TcpProxy."""
    proxy = None
    url = database_url
    if backend == "postgresql":
        proxy, url = TcpProxy.for_url(database_url)
        proxy.start()
    # The store waits DATABASE_TIMEOUT for a SQLite lock; a test waits LOCK_TIMEOUT_SECONDS (the behaviour is the same).
    timeout = {"DATABASE_TIMEOUT": LOCK_TIMEOUT_SECONDS} if backend == "sqlite" else {}
    app = make_app(DATABASE_URL=url, RATELIMIT_ENABLED=False, **timeout, **SETUPS[request.param])
    client = app.test_client()
    for number, slug in enumerate(("one", "two", "three"), 1):
        assert client.put(f"/api/articles/{slug}", json=record(slug, number), headers=AUTH).status_code == 201
    path = url.split("///", 1)[-1] if backend == "sqlite" else None
    yield app, lambda: store_outage(backend, app, proxy, path)
    make_app.close()  # before the proxy its connections go through
    if proxy:
        proxy.stop()


def assert_unavailable(response, path: str) -> None:
    assert response.status_code == 503, f"{path}: {response.status_code} {response.get_data()[:200]!r}"
    assert int(response.headers["Retry-After"]) > 0, path
    assert response.headers["Cache-Control"] == "no-store", path
    assert "unavailable" in response.get_data(as_text=True), path


def test_store_outage_serves_rendered_documents_stale_503_elsewhere_and_recovers(outage_app):
    app, outage = outage_app
    client = app.test_client()
    rendered = ["/feeds/rss.xml", "/feeds/section/national/feed.json", "/articles/one", "/amp/one"]
    before = {path: client.get(path) for path in rendered}
    assert all(r.status_code == 200 for r in before.values()), {p: r.status_code for p, r in before.items()}

    with outage():
        for path in rendered:
            stale = client.get(path)
            assert stale.status_code == 200, f"{path} was rendered before the outage: {stale.status_code}"
            assert stale.get_data() == before[path].get_data() and stale.headers["ETag"] == before[path].headers["ETag"]
            revalidated = client.get(path, headers={"If-None-Match": before[path].headers["ETag"]})
            assert revalidated.status_code == 304, path
        for path in ("/feeds/atom.xml", "/feeds/tag/v1-t0/rss.xml", "/articles/two", "/embed/one",
                     f"/oembed?url={SITE_URL}/articles/one", "/healthz"):
            assert_unavailable(client.get(path), path)
        page = client.get("/articles/three", headers={"Accept": "text/html"})
        assert_unavailable(page, "/articles/three as HTML")
        assert page.content_type.startswith("text/html") and "उपलब्ध नहीं" in page.get_data(as_text=True)
        write = client.put("/api/articles/four", json=record("four", 4), headers=AUTH)
        assert_unavailable(write, "PUT /api/articles/four")
        assert write.get_json()["retry_after"] > 0

    deadline = time.monotonic() + 15
    while client.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover by itself"
        time.sleep(0.2)
    assert client.get("/feeds/atom.xml").status_code == 200
    assert client.put("/api/articles/four", json=record("four", 4), headers=AUTH).status_code == 201
    fresh = client.get("/feeds/rss.xml")
    assert fresh.headers["ETag"] != before["/feeds/rss.xml"].headers["ETag"]
    assert f"{SITE_URL}/articles/four".encode() in fresh.get_data(), "after recovery feeds are current again"


# ---- SIGKILL during API writes ------------------------------------------------------------------

WRITERS = 6
KILL_ROUNDS = 3


def assert_every_article_whole(engine, acknowledged: dict[str, int], in_flight: dict[str, int]) -> None:
    """Each article's JSON, record, tag rows and author rows belong to one version (as after a killed
    import), its feeds' counters exist, and that version is the last one acknowledged or the one in
    flight when the server died."""
    assert_each_record_whole(engine)
    with engine.connect() as conn:
        scopes = {row.scope for row in conn.execute(select(scope_state.c.scope))}
        for row in conn.execute(select(articles.c.id, articles.c.article)):
            article = article_from_json(row.article)
            version = int(article.title.split(":")[0].split()[-1])
            assert {t.key for t in article.tags} == {f"v{version}-t{i}" for i in range(40)}, row.id
            assert {f"tag:{t.key}" for t in article.tags} <= scopes, "a tag row without its feed counter"
            assert version in {acknowledged.get(row.id), in_flight.get(row.id)}, \
                f"{row.id} is at version {version}; acknowledged {acknowledged.get(row.id)}, in flight {in_flight.get(row.id)}"


def write_until_killed(server: Gunicorn, stop: threading.Event, article_id: str, acknowledged: dict, in_flight: dict):
    version = acknowledged.get(article_id, 0)
    while not stop.is_set():
        version += 1
        in_flight[article_id] = version
        try:
            status, _, body = server.request("PUT", f"/api/articles/{article_id}", record(article_id, version, tags=40,
                                                                                          authors=20), LIVE_AUTH, timeout=30)
        except (OSError, http.client.HTTPException):
            # The server died under us, before or while answering (IncompleteRead when the kill
            # lands mid-body): this write's fate is what the test checks.
            return
        assert status in (200, 201), body[:300]
        acknowledged[article_id] = version


def test_sigkill_during_api_writes_leaves_every_article_whole_and_resending_finishes(database_url, engine, tmp_path):
    acknowledged: dict[str, int] = {}
    in_flight: dict[str, int] = {}
    ids = [f"kill-{i}" for i in range(WRITERS)]
    for _ in range(KILL_ROUNDS):
        server = Gunicorn(database_url, workers=2, threads=WRITERS,
                          log_path=tmp_path / "gunicorn.log").start()
        stop = threading.Event()
        threads = [threading.Thread(target=write_until_killed, args=(server, stop, i, acknowledged, in_flight))
                   for i in ids]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(1.0, 2.5))
        server.kill9()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert_every_article_whole(engine, acknowledged, in_flight)
    with Gunicorn(database_url, workers=2, threads=WRITERS,
                  log_path=tmp_path / "gunicorn.log") as server:
        for article_id in ids:  # what the CMS does after a failed request: send it again
            status, _, body = server.request("PUT", f"/api/articles/{article_id}",
                                             record(article_id, in_flight[article_id], tags=40, authors=20), LIVE_AUTH)
            assert status in (200, 201), body[:300]
            acknowledged[article_id] = in_flight[article_id]
    assert_every_article_whole(engine, acknowledged, {})
    with engine.connect() as conn:
        for article_id in ids:
            assert store.newest(conn, f"tag:v{in_flight[article_id]}-t39", 100) != []


# ---- concurrent writers -------------------------------------------------------------------------

@pytest.fixture
def live(database_url, engine, tmp_path):
    with Gunicorn(database_url, workers=2, threads=8,
                  log_path=tmp_path / "gunicorn.log") as server:
        yield server


def test_if_match_writers_of_one_article_lose_no_update(live):
    assert live.request("PUT", "/api/articles/shared", record("shared", 1, tags=1), LIVE_AUTH)[0] == 201
    writers = 12

    def add_my_tag(number: int) -> int:
        attempts = 0
        while True:
            attempts += 1
            status, headers, body = live.request("GET", "/api/articles/shared", headers=LIVE_AUTH)
            assert status == 200
            current = json.loads(body)
            current["tags"].append({"key": f"writer-{number}", "name": f"लेखक {number}"})
            status, _, answer = live.request("PUT", "/api/articles/shared", current,
                                             {**LIVE_AUTH, "If-Match": headers["ETag"]})
            if status == 200:
                return attempts
            assert status == 412, answer[:300]  # someone else wrote first: read again and retry

    with ThreadPoolExecutor(writers) as pool:
        attempts = list(pool.map(add_my_tag, range(writers)))
    status, headers, body = live.request("GET", "/api/articles/shared", headers=LIVE_AUTH)
    keys = {tag["key"] for tag in json.loads(body)["tags"]}
    assert {f"writer-{n}" for n in range(writers)} <= keys, "an acknowledged write was lost"
    assert headers["ETag"] == f'"v{writers + 1}"', "every acknowledged write is one version"
    assert len(attempts) == writers  # conflicts cost retries (412), never an update


def test_without_if_match_the_newest_updated_wins(live):
    versions = list(range(1, 41))
    random.Random(9).shuffle(versions)
    outcomes = {}

    def send(version: int) -> None:
        while True:
            status, _, body = live.request("PUT", "/api/articles/racing", record("racing", version, tags=5), LIVE_AUTH)
            if status == 409 and b"at the same time" in body:
                continue  # a collision, not an old version: the CMS retries
            outcomes[version] = status
            return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, versions))
    assert set(outcomes.values()) <= {200, 201, 409}
    status, _, body = live.request("GET", "/api/articles/racing", headers=LIVE_AUTH)
    assert json.loads(body)["title"].startswith("संस्करण 40:"), "an older write overwrote the newest"
    assert outcomes[40] in (200, 201)


def test_writers_of_different_articles_leave_no_duplicate_in_any_feed(live):
    def write_batch(writer: int) -> list[int]:
        statuses = []
        for n in range(15):
            article = record(f"w{writer}-{n}", 1, tags=2, section=f"desk-{writer % 3}")
            article["tags"].append({"key": "shared-tag", "name": "साझा"})
            article["published"] = article["updated"] = f"2025-08-01T10:{n:02d}:{writer:02d}+05:30"
            statuses.append(live.request("PUT", f"/api/articles/{article['id']}", article, LIVE_AUTH)[0])
        return statuses

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(write_batch, range(8)) for s in batch]
    assert statuses == [201] * 120
    expected = {"/feeds/feed.json": 120, "/feeds/tag/shared-tag/feed.json": 120, "/feeds/tag/v1-t0/feed.json": 120}
    expected.update({f"/feeds/section/desk-{d}/feed.json": 15 * len(range(d, 8, 3)) for d in range(3)})
    for feed, count in expected.items():
        seen, url = [], f"{feed}?limit=50"
        while url:
            status, _, body = live.request("GET", url.replace(SITE_URL, ""))
            assert status == 200, (url, body[:200])
            page = json.loads(body)
            seen += [item["id"] for item in page["items"]]
            url = page.get("next_url")
        assert len(seen) == len(set(seen)), f"{feed} lists an item twice"
        assert len(seen) == count, f"{feed}: {len(seen)} items, want {count}"
