"""Render cache consistency across real gunicorn workers: a write through one is served new by all.

gunicorn runs deploy/gunicorn.conf.py with 2 workers on 127.0.0.1 (fast path on, counters rechecked
every 0.5 s); each worker keeps its own render cache and replays, so the test first makes sure both
hold the old feed, then writes through the API and checks that, once the recheck interval has
passed, every worker answers with the new one. The access log line names the worker (pid) that answered.
/metrics, in Prometheus multi-process mode, must add up the requests of both workers.
"""
from __future__ import annotations

import http.client
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import Gunicorn
from tests.support.apps import ARTICLES
from tests.support.records import VALID_RECORD

pytestmark = pytest.mark.slow

NEW_TITLE = "ताज़ा: दोनों वर्करों में नया फ़ीड"
API_TOKEN = "cache-workers-token-0123456789abcdef"  # sent in a header, so ASCII


def get(port: int, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)   # a new connection each time
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def put(port: int, path: str, record: dict):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("PUT", path, body=json.dumps(record, ensure_ascii=False).encode("utf-8"),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def answered_by(log: Path, since: int) -> dict[str, set[int]]:
    """path -> pids of the workers that answered it, from the JSON access lines written after `since`."""
    found: dict[str, set[int]] = {}
    for line in log.read_bytes()[since:].decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            found.setdefault(entry["path"], set()).add(entry["pid"])
    return found


def fetch_many(port: int, path: str, count: int = 40):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: get(port, path), range(count)))


@pytest.fixture
def server(make_app, tmp_path):
    app = make_app()
    url = app.config["DATABASE_URL"]
    result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
    assert result.exit_code == 0, result.output
    make_app.close()  # the workers own the database from here
    log = tmp_path / "gunicorn.log"
    metrics_dir = tmp_path / "metrics"
    env = {"FEEDSVC_DATABASE_URL": url, "FEEDSVC_SITE_URL": "http://news.example", "FEEDSVC_API_TOKENS": API_TOKEN,
           "FEEDSVC_RATELIMIT_ENABLED": "0", "FEEDSVC_WEBSUB_SENDER": "worker",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with Gunicorn("wsgi:app", env=env, workers=2, log_path=log) as gunicorn:
        yield gunicorn, log
    shutil.rmtree(metrics_dir, ignore_errors=True)


def test_a_write_in_one_worker_is_served_by_every_worker(server):
    gunicorn, log = server
    assert len(gunicorn.worker_pids()) == 2
    start = log.stat().st_size
    deadline = time.monotonic() + 60
    # Both workers render and cache the current feed (the kernel spreads new connections over them).
    while len(answered_by(log, start).get("/feeds/rss.xml", set())) < 2:
        assert time.monotonic() < deadline, "one worker never answered"
        old = fetch_many(gunicorn.port, "/feeds/rss.xml")
    assert all(status == 200 and NEW_TITLE.encode() not in body for status, _, body in old)
    old_etag = old[0][1]["ETag"]

    record = dict(VALID_RECORD, id="cache-workers-new", slug="cache-workers-new", title=NEW_TITLE,
                  published="2026-01-01T09:00:00+05:30", updated="2026-01-01T09:00:00+05:30")
    status, body = put(gunicorn.port, "/api/articles/cache-workers-new", record)
    assert status == 201, body
    # deploy/gunicorn.conf.py lets a worker trust the counters it read for FEED_STATE_RECHECK_MS (500 ms),
    # but the other worker hears of this write through the signal file at once: no wait here.

    after = log.stat().st_size
    deadline = time.monotonic() + 60
    while len(answered_by(log, after).get("/feeds/rss.xml", set())) < 2:
        assert time.monotonic() < deadline, "one worker never answered after the write"
        new = fetch_many(gunicorn.port, "/feeds/rss.xml")
        for status, headers, body in new:
            assert status == 200
            assert NEW_TITLE.encode() in body, "a worker served its stale cached feed"
            assert headers["ETag"] != old_etag
    # A client holding the old ETag is told the feed changed, by either worker.
    for status, _, _ in [get(gunicorn.port, "/feeds/rss.xml", {"If-None-Match": old_etag}) for _ in range(10)]:
        assert status == 200


def test_metrics_add_up_every_workers_requests(server):
    gunicorn, log = server
    start = log.stat().st_size
    requests = 0
    deadline = time.monotonic() + 60
    while len(answered_by(log, start).get("/feeds/atom.xml", set())) < 2:
        assert time.monotonic() < deadline, "one worker never answered"
        fetch_many(gunicorn.port, "/feeds/atom.xml", count=30)
        requests += 30
    status, _, body = get(gunicorn.port, "/metrics")
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "feedsvc_http_requests_total" and sample.labels.get("route") == "feed":
                total += sample.value
    assert total == requests   # both workers' counts, added up


def test_the_master_reads_icu_before_forking_and_the_workers_sort_the_directory_with_it(server):
    # deploy/gunicorn.conf.py imports PyICU in the master, so that its import-time pages are not each
    # worker's own (bench row worker-rss-1m); the workers, forked after, must still collate with it.
    gunicorn, _ = server
    assert "_icu_" in Path(f"/proc/{gunicorn.process.pid}/maps").read_text()
    answers = fetch_many(gunicorn.port, "/feeds", count=16)
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1
