"""Render once per change: documents built once per change of their scope, in every process alike,
304s decided before anything is built, compressed once, served stale while the store is down."""
from __future__ import annotations

import gzip
import json
import shutil
import threading
import time

import brotli
import pytest
from sqlalchemy.exc import OperationalError

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.write import commit_write, upsert
from feedsvc.render.feeds import scope as feed_scope
from feedsvc.render.feeds.model import Site
from feedsvc.web import documents, render_cache
from feedsvc.web.render_cache import ChangeSignal, CounterCache, RenderCache, compress, validator
from feedsvc.web.render_spill import SpillDirectory


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


def test_an_encoding_is_compressed_only_when_first_asked_for_and_then_charged(monkeypatch):
    made = []
    for name, squeeze in list(render_cache.COMPRESSORS.items()):
        monkeypatch.setitem(render_cache.COMPRESSORS, name,
                            lambda body, name=name, squeeze=squeeze: made.append(name) or squeeze(body))
    cache = RenderCache()
    body = ("<p>मानसून सत्र आज से शुरू</p>" * 200).encode("utf-8")
    rendered = cache.get("k", "v1", lambda: body)
    assert rendered.bodies["identity"] == body and "br" in rendered.bodies and "deflate" not in rendered.bodies
    assert made == [] and cache.bytes == len(body)
    packed = rendered.bodies["gzip"]
    assert gzip.decompress(packed) == body and made == ["gzip"] and cache.bytes == len(body) + len(packed)
    assert cache.get("k", "v1", lambda: b"").bodies["gzip"] is packed and made == ["gzip"]
    every = dict(rendered.bodies)
    assert made == ["gzip", "br"] and every == compress(body)   # the bytes compress() makes
    assert cache.bytes == sum(map(len, every.values()))
    cache.get("k", "v2", lambda: b"<rss/>")
    assert cache.bytes == len(b"<rss/>")   # the old state's charge left with it


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


def noise(size: int, seed: int = 0) -> bytes:
    """Bytes that neither gzip nor brotli shrink much, so a document's size is what it says."""
    import random
    return random.Random(seed).randbytes(size)


def test_a_document_too_big_for_memory_is_kept_on_disk_and_read_back(tmp_path):
    cache, builds = RenderCache(max_bytes=8000, spill=SpillDirectory(tmp_path, "code", 1_000_000)), []
    build = lambda: builds.append(1) or noise(20_000)  # noqa: E731
    first = cache.get("big", "v1", build)
    again = cache.get("big", "v1", build)
    assert len(builds) == 1 and cache.stats["spilled"] == 1 and cache.stats["spill_hits"] == 1
    assert dict(again.bodies) == dict(first.bodies) and again.validator == "v1"
    assert cache.bytes < 8000   # memory holds the validator, not the bodies
    cache.get("big", "v2", build)
    assert len(builds) == 2


def test_every_worker_reads_what_one_spilled(tmp_path):
    one, two = (RenderCache(max_bytes=8000, spill=SpillDirectory(tmp_path, "code", 1_000_000)) for _ in range(2))
    body = noise(20_000)
    one.get("big", "v1", lambda: body)
    read = two.get("big", "v1", lambda: pytest.fail("worker two rendered what worker one had spilled"))
    assert read.bodies["identity"] == body and brotli.decompress(read.bodies["br"]) == body
    assert two.stats["renders"] == 0 and two.stale("big").bodies["gzip"] == one.stale("big").bodies["gzip"]


def test_the_spill_folder_stays_within_its_bound_dropping_the_least_recently_used(tmp_path):
    spill = SpillDirectory(tmp_path, "code", 70_000)   # room for two documents of ~30 KB
    cache = RenderCache(max_bytes=8000, spill=spill)
    for n in range(2):
        cache.get(f"doc{n}", f"v{n}", lambda n=n: noise(10_000, n))
        time.sleep(0.02)   # distinct mtimes
    cache.clear()
    cache.get("doc0", "v0", lambda: pytest.fail("doc0 is on disk"))   # doc0 read again: now the newest
    time.sleep(0.02)
    cache.get("doc2", "v2", lambda: noise(10_000, 2))
    assert 0 < spill.bytes <= 70_000
    assert spill.open("v0") is not None and spill.open("v2") is not None and spill.open("v1") is None


def test_a_spilled_file_that_is_cut_short_or_foreign_is_rendered_again(tmp_path):
    spill = SpillDirectory(tmp_path, "code", 1_000_000)
    cache = RenderCache(max_bytes=8000, spill=spill)
    cache.get("big", "v1", lambda: noise(20_000))
    path = next((tmp_path / "code").glob("*.doc"))
    path.write_bytes(path.read_bytes()[:-10])
    cache.clear()
    again = cache.get("big", "v1", lambda: noise(20_000))
    assert cache.stats["renders"] == 2 and again.bodies["identity"] == noise(20_000)


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


def test_two_processes_agree_through_the_store(database_url, api_headers, make_record, make_app):
    """Two apps on one database stand for two gunicorn workers: each has its own render cache."""
    one, two = make_app(), make_app()
    first, second = one.test_client(), two.test_client()
    put(first, api_headers, make_record())
    assert item_ids(second) == ["test-2025-08-01-monsoon"]  # worker two renders and keeps its copy
    put(first, api_headers, make_record(id="later", slug="later", updated=None,
                                        published="2025-08-02T09:00:00+05:30"))
    assert item_ids(second) == ["later", "test-2025-08-01-monsoon"]  # its copy was not served stale
    from_one, from_two = first.get("/feeds/rss.xml"), second.get("/feeds/rss.xml")
    assert from_one.headers["ETag"] == from_two.headers["ETag"] and from_one.data == from_two.data
    assert second.get("/feeds/rss.xml", headers={"If-None-Match": from_one.headers["ETag"]}).status_code == 304


def test_a_write_is_heard_at_once_on_this_machine_and_after_the_interval_elsewhere(
        database_url, api_headers, make_record, make_app, tmp_path):
    """Apps in one process on one database, trusting their counters for a minute, stand for gunicorn
    workers: a write through one is served at once by that one (store.changed reaches the receivers
    of the writer's engine) and by another worker of this machine (the signal file beside the store);
    an app that shares no signal, like one on another machine, keeps trusting what it read.
    (SQLite has no other machine: its counters follow every commit, test below.)"""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite counters are exact (store.change_probe), never held for an interval")
    writer, worker, elsewhere = (make_app(FEED_STATE_RECHECK_MS=60_000) for _ in range(3))
    documents.counters(elsewhere).signal = render_cache.ChangeSignal(tmp_path / "another-machine")
    put(writer.test_client(), api_headers, make_record())
    assert item_ids(writer.test_client()) == item_ids(worker.test_client()) == item_ids(elsewhere.test_client()) \
        == ["test-2025-08-01-monsoon"]
    put(writer.test_client(), api_headers, make_record(id="later", slug="later", updated=None,
                                                       published="2025-08-02T09:00:00+05:30"))
    assert item_ids(writer.test_client()) == item_ids(worker.test_client()) == ["later", "test-2025-08-01-monsoon"]
    assert item_ids(elsewhere.test_client()) == ["test-2025-08-01-monsoon"]
    documents.counters(elsewhere).clear()  # what the recheck interval's end does
    assert item_ids(elsewhere.test_client()) == ["later", "test-2025-08-01-monsoon"]


def test_sqlite_counters_follow_every_commit_even_one_the_app_never_hears_of(
        api_headers, make_record, make_app):
    """On SQLite a commit by any connection moves `PRAGMA data_version`: a write by another process
    (here an engine of its own, heard by no app, as `flask import-articles` in a shell or another
    worker would be) is served at the next request, though counters are trusted for a minute, and the
    304 a client revalidates with turns into the new feed."""
    app = make_app(FEED_STATE_RECHECK_MS=60_000, FAST_PATH=True)
    client = app.test_client()
    put(client, api_headers, make_record())
    before = client.get("/feeds/rss.xml")
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": before.headers["ETag"]}).status_code == 304
    assert documents.counters(app).probe is not None
    site = Site.from_config(app.config)
    other = store.make_engine(app.config["DATABASE_URL"])
    try:
        record = make_record(id="later", slug="later", updated=None, published="2025-08-02T09:00:00+05:30")
        commit_write(other, upsert, parse_record(record, site_url=site.url), site_name=site.name)
    finally:
        other.dispose()
    after = client.get("/feeds/rss.xml", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert item_ids(client) == ["later", "test-2025-08-01-monsoon"]


def test_probed_counters_are_held_until_the_probe_moves_and_a_read_across_a_move_is_not_kept():
    generation, reads = [1], []
    cache = CounterCache(probe=lambda: generation[0])
    load = lambda: reads.append(1) or len(reads)  # noqa: E731
    assert [cache.get("k", load), cache.get("k", load)] == [1, 1]
    generation[0] = 2   # a commit somewhere
    assert [cache.get("k", load), cache.get("k", load)] == [2, 2]

    def load_while_a_commit_lands():
        value = load()
        generation[0] = 3
        cache.get("other", lambda: 0)   # another request sees the commit meanwhile
        return value
    generation[0] = 4
    assert cache.get("k", load_while_a_commit_lands) == 3
    assert cache.get("k", load) == 4   # the value read across the commit was not kept


def test_held_counters_are_read_again_after_another_workers_signal(tmp_path):
    def counting():
        reads = []
        return lambda: reads.append(1) or len(reads)

    path = tmp_path / "store-changed"
    settling, trusting = CounterCache(60, ChangeSignal(path), exact_after_signal=60), CounterCache(60, ChangeSignal(path), 0)
    first, second = counting(), counting()
    assert [settling.get("k", first), settling.get("k", first), trusting.get("k", second)] == [1, 1, 1]
    ChangeSignal(path).send()   # another worker's write
    stamp = ChangeSignal(path).stamp()
    ChangeSignal(path).send()   # and another within the same clock tick: a new stamp still
    assert ChangeSignal(path).stamp() > stamp
    # Read exactly for a while after a signal: it is sent just before the write's commit.
    assert [settling.get("k", first), settling.get("k", first)] == [2, 3]
    assert [trusting.get("k", second), trusting.get("k", second)] == [2, 2]
    assert ChangeSignal(tmp_path / "missing" / "signal").stamp() is None


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


def test_the_cache_stays_within_its_byte_budget(database_url, api_headers, make_record, make_app):
    app = make_app(RENDER_CACHE_MAX_BYTES=30_000, RENDER_SPILL_MAX_BYTES=0)
    client = app.test_client()
    for day in range(1, 6):
        put(client, api_headers, make_record(id=f"s{day}", slug=f"s{day}", updated=None,
                                             published=f"2025-08-0{day}T09:00:00+05:30"))
    for url in ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/tag/parliament/rss.xml",
                "/feeds/author/test-reporter/atom.xml", "/feeds.opml", "/feeds"):
        assert client.get(url).status_code == 200
    cache = documents.cache(app)
    assert 0 < cache.bytes <= 30_000 and cache.stats["evictions"] > 0


def test_settings_are_part_of_the_etag(api_headers, make_record, make_app):
    app = make_app()
    client = app.test_client()
    put(client, api_headers, make_record())
    etag = client.get("/feeds/rss.xml").headers["ETag"]
    renamed = make_app(SITE_NAME="दूसरा नाम")
    assert renamed.test_client().get("/feeds/rss.xml").headers["ETag"] != etag


def test_a_feed_bigger_than_the_memory_budget_is_rendered_once_per_change(database_url, tmp_path, api_headers,
                                                                          make_record, make_app):
    """The issue's case: a document whose encodings exceed the whole memory cache used to be rendered
    on every request; now it is spilled, served byte-identical in every encoding, and shared by workers."""
    settings = {"RENDER_CACHE_MAX_BYTES": 20_000, "RENDER_SPILL_DIR": str(tmp_path / "spill")}
    app, other_worker = make_app(**settings), make_app(**settings)
    client = app.test_client()
    long_body = "".join(f"<p>अनुच्छेद {n}: संसद के मानसून सत्र में आज कई विधेयक पेश हुए। {n * 7919}</p>"
                        for n in range(600))
    put(client, api_headers, make_record(body_html=long_body))
    before = renders(app)
    answers = {encoding: client.get("/feeds/rss.xml", headers={"Accept-Encoding": encoding})
               for encoding in ("identity", "gzip", "br")}
    for encoding in ("br", "gzip", "identity"):
        repeat = client.get("/feeds/rss.xml", headers={"Accept-Encoding": encoding})
        assert repeat.data == answers[encoding].data and repeat.headers["ETag"] == answers[encoding].headers["ETag"]
    assert renders(app) == before + 1 and documents.cache(app).stats["spilled"] == 1
    body = answers["identity"].data
    assert len(body) > 20_000 and long_body[-200:].encode("utf-8") in body.replace(b"&lt;", b"<").replace(b"&gt;", b">")
    assert gzip.decompress(answers["gzip"].data) == body and brotli.decompress(answers["br"].data) == body
    assert answers["gzip"].headers["ETag"] == answers["identity"].headers["ETag"][:-1] + '-gzip"'
    conditional = client.get("/feeds/rss.xml", headers={"If-None-Match": answers["br"].headers["ETag"],
                                                        "Accept-Encoding": "br"})
    assert conditional.status_code == 304 and conditional.headers["ETag"] == answers["br"].headers["ETag"]

    from_other = other_worker.test_client().get("/feeds/rss.xml")
    assert from_other.data == body and renders(other_worker) == 0   # read from the shared folder

    put(client, api_headers, make_record(title="नया शीर्षक", body_html=long_body,
                                         updated="2025-08-01T10:00:00+05:30"))
    changed = [client.get("/feeds/rss.xml", headers={"Accept-Encoding": "gzip"}) for _ in range(3)]
    assert renders(app) == before + 2 and "नया शीर्षक".encode("utf-8") in gzip.decompress(changed[0].data)
    assert changed[0].headers["ETag"] != answers["gzip"].headers["ETag"]


# ---- the output revision: a deploy that changes a writer or a template changes every ETag -------

@pytest.fixture
def output_sources(tmp_path, monkeypatch):
    """A copy of the package's output sources that render_cache.output_revision() reads instead."""
    for name in render_cache.OUTPUT_SOURCES:
        shutil.copytree(render_cache.PACKAGE / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(render_cache, "PACKAGE", tmp_path)
    render_cache.output_revision.cache_clear()
    yield tmp_path
    render_cache.output_revision.cache_clear()


@pytest.mark.parametrize("source", ["templates/pages/article.html", "render/feeds/rss.py", "render/amp.py"])
def test_a_changed_template_or_writer_changes_every_etag(api_headers, make_record, output_sources, source,
                                                         make_app):
    app = make_app()
    client = app.test_client()
    record = make_record()
    put(client, api_headers, record)
    urls = ["/feeds/rss.xml", "/feeds/feed.json", "/sitemap.xml", "/", f"/articles/{record['slug']}",
            f"/amp/{record['slug']}"]
    before = {url: client.get(url).headers["ETag"] for url in urls}
    with open(output_sources / source, "a", encoding="utf-8") as changed:
        changed.write("\n")
    render_cache.output_revision.cache_clear()   # what a restart after the deploy does
    after = {url: client.get(url).headers["ETag"] for url in urls}
    assert all(after[url] != before[url] for url in urls), (before, after)


def test_compiled_bytecode_is_not_part_of_the_revision(output_sources):
    before = render_cache.output_revision()
    (output_sources / "render" / "__pycache__").mkdir()
    (output_sources / "render" / "__pycache__" / "pages.cpython-311.pyc").write_bytes(b"\x00bytecode")
    render_cache.output_revision.cache_clear()
    assert render_cache.output_revision() == before


def test_a_missing_output_source_fails_the_start_up(output_sources, make_app):
    shutil.rmtree(output_sources / "templates")
    render_cache.output_revision.cache_clear()
    with pytest.raises(FileNotFoundError, match=r"templates .*OUTPUT_SOURCES"):
        make_app()
