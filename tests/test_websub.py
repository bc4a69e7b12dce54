"""WebSub publishing: which feeds each change notifies, the durable outbox, retries, restarts, concurrency.

A real hub endpoint runs on loopback (http.server in a thread) and records every publish ping.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from itertools import pairwise
from urllib.parse import parse_qsl

import pytest
from lxml import etree
from sqlalchemy import func, select

from feedsvc import close_app, store
from feedsvc.ingest import importer
from feedsvc.publish import websub
from feedsvc.store import websub_outbox as outbox
from feedsvc.web import db
from tests.support.apps import ROOT, SITE_URL
from tests.support.loopback import RecordingServer

FAST = dict(WEBSUB_SENDER="worker", WEBSUB_POLL_SECONDS=0.05, WEBSUB_RETRY_BASE_SECONDS=0.2,
            WEBSUB_RETRY_MAX_SECONDS=1.0, WEBSUB_TIMEOUT=5)


class Hub(RecordingServer):
    """A loopback WebSub hub that records each publish request (time, form, content type)."""

    def __init__(self, statuses=()):
        super().__init__(statuses, ok=204, path="/hub")

    def record(self, path, headers, body):
        return time.monotonic(), parse_qsl(body.decode("ascii")), headers["Content-Type"]

    def all_topics(self) -> list[str]:
        with self.lock:
            return [v for _, form, _ in self.requests for k, v in form if k == "hub.url"]


@pytest.fixture
def hub():
    hub = Hub()
    yield hub
    hub.close()


def topics(*scopes: str) -> set[str]:
    return {url for scope in scopes for url in websub.topic_urls(SITE_URL, scope)}


@pytest.fixture
def hub_app(database_url, hub, make_app):
    app = make_app(WEBSUB_HUBS=[hub.url], **FAST)
    yield app
    websub.publisher(app).stop()


def put(client, record, headers):
    return client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                      content_type="application/json", headers=headers)


def send(app) -> int:
    return websub.publisher(app).sender().send_due()


def pending(app) -> int:
    with db.engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar()


BASE_SCOPES = ("site", "section:national", "tag:parliament", "author:test-reporter")


def test_new_article_notifies_its_site_section_tag_and_author_feeds_in_every_format(
        hub_app, hub, api_headers, make_record):
    assert put(hub_app.test_client(), make_record(), api_headers).status_code == 201
    assert pending(hub_app) == 12  # 4 scopes x 3 formats, queued in the write's transaction
    send(hub_app)
    sent = hub.all_topics()
    assert Counter(sent) == Counter(topics(*BASE_SCOPES))
    assert "http://news.example/feeds/rss.xml" in sent
    assert "http://news.example/feeds/section/national/feed.json" in sent
    _, form, content_type = hub.requests[0]
    assert ("hub.mode", "publish") in form and content_type == "application/x-www-form-urlencoded"
    assert pending(hub_app) == 0


def test_edit_that_moves_an_article_notifies_the_feeds_it_left_and_joined(hub_app, hub, api_headers, make_record):
    client = hub_app.test_client()
    put(client, make_record(), api_headers)
    send(hub_app)
    hub.requests.clear()
    moved = make_record(section={"key": "sports", "name": "खेल"}, tags=[{"key": "cricket", "name": "क्रिकेट"}],
                        updated="2025-08-01T11:00:00+05:30")
    assert put(client, moved, api_headers).status_code == 200
    send(hub_app)
    assert Counter(hub.all_topics()) == Counter(topics(*BASE_SCOPES, "section:sports", "tag:cricket"))


def test_withdraw_notifies_every_feed_the_article_was_in(hub_app, hub, api_headers, make_record):
    client = hub_app.test_client()
    record = make_record(tags=[{"key": "parliament", "name": "संसद"}, {"key": "monsoon", "name": "मानसून"}])
    put(client, record, api_headers)
    send(hub_app)
    hub.requests.clear()
    assert client.delete(f"/api/articles/{record['id']}", headers=api_headers).status_code == 200
    send(hub_app)
    assert Counter(hub.all_topics()) == Counter(topics(*BASE_SCOPES, "tag:monsoon"))


def test_unchanged_write_and_draft_notify_nothing(hub_app, hub, api_headers, make_record):
    client = hub_app.test_client()
    put(client, make_record(), api_headers)
    send(hub_app)
    hub.requests.clear()
    assert put(client, make_record(), api_headers).status_code == 200  # the same record again
    assert put(client, make_record(id="draft-1", slug="draft-one", status="draft"), api_headers).status_code == 201
    assert pending(hub_app) == 0 and send(hub_app) == 0 and hub.requests == []


@pytest.mark.slow  # every sample article imported and every feed pinged: 8-20 s
def test_bulk_import_queues_once_per_change_set_and_pings_each_feed_once(hub_app, hub, tmp_path):
    from bench.synth import generate_records
    records = list(generate_records(1200, seed=7))
    path = tmp_path / "bulk.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")
    engine = db.engine(hub_app)
    report = importer.import_files(engine, [path], site_url=SITE_URL, site_name="x")
    assert report.created == 1200 and not report.errors
    batches = -(-1200 // importer.BATCH_SIZE)
    site_rss = "http://news.example/feeds/rss.xml"
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.topic_url, func.count()).group_by(outbox.c.topic_url)).all()
    assert dict(rows)[site_rss] == batches  # one row per change set (import batch), not per record
    expected = topics(*{scope for r in records for scope in store_scopes(r)})
    assert {topic for topic, _ in rows} == expected
    send(hub_app)
    sent = Counter(hub.all_topics())
    assert set(sent) == expected and max(sent.values()) == 1  # pending rows of one feed share a ping
    assert pending(hub_app) == 0


def test_the_import_command_queues_its_notifications(hub_app, hub, tmp_path):
    """`flask import-articles` writes through an engine of its own; the app's hubs still hear of it."""
    from bench.synth import generate_records, write_jsonl
    write_jsonl(tmp_path / "few.jsonl", 3, seed=2)
    result = hub_app.test_cli_runner().invoke(args=["import-articles", str(tmp_path / "few.jsonl")])
    assert result.exit_code == 0, result.output
    send(hub_app)
    expected = topics(*{scope for r in generate_records(3, seed=2) for scope in store_scopes(r)})
    assert set(hub.all_topics()) == expected and pending(hub_app) == 0


def test_two_apps_on_one_database_queue_a_write_once(database_url, hub, api_headers, make_record, make_app):
    """Two apps in one process (two workers' worth): only the writer's publisher hears its write."""
    writer, other = (make_app(WEBSUB_HUBS=[hub.url], **FAST) for _ in range(2))
    assert put(writer.test_client(), make_record(), api_headers).status_code == 201
    assert pending(writer) == pending(other) == 12  # 4 scopes x 3 formats, not twice that


def store_scopes(record: dict) -> set[str]:
    """The feeds a generated record appears in (its keys are all given)."""
    return ({"site", f"section:{record['section']['key']}"} | {f"tag:{t['key']}" for t in record.get("tags", [])}
            | {f"author:{a['key']}" for a in record["authors"]}
            | ({"video"} if any(e["provider"] in ("youtube", "vimeo") for e in record.get("embeds", [])) else set()))


def test_every_configured_hub_gets_every_topic(database_url, hub, api_headers, make_record, make_app):
    second = Hub()
    app = make_app(WEBSUB_HUBS=[hub.url, second.url], **FAST)
    try:
        put(app.test_client(), make_record(), api_headers)
        send(app)
        assert Counter(hub.all_topics()) == Counter(second.all_topics()) == Counter(topics(*BASE_SCOPES))
    finally:
        second.close()


def test_no_hubs_means_no_outbox_rows(app, client, api_headers, make_record):
    put(client, make_record(), api_headers)
    assert pending(app) == 0


def test_one_topic_per_request_also_names_it_hub_topic(database_url, hub, api_headers, make_record, make_app):
    app = make_app(WEBSUB_HUBS=[hub.url], WEBSUB_TOPICS_PER_REQUEST=1, **FAST)
    put(app.test_client(), make_record(), api_headers)
    assert send(app) == 12
    for _, form, _ in hub.requests:
        assert dict(form)["hub.url"] == dict(form)["hub.topic"] and len(form) == 3


def test_failing_hub_gets_retries_with_backoff_then_every_notification(database_url, api_headers, make_record, make_app):
    hub = Hub(statuses=[500, 500, 503])  # down for three attempts, then up
    app = make_app(WEBSUB_HUBS=[hub.url], **{**FAST, "WEBSUB_SENDER": "thread"})
    try:
        started = time.monotonic()
        response = put(app.test_client(), make_record(), api_headers)  # the request also starts the sender
        assert response.status_code == 201 and time.monotonic() - started < 2  # the write never waits for the hub
        assert hub.wait_for(lambda: len(hub.requests) >= 4 and pending(app) == 0)
        times = [t for t, _, _ in hub.requests]
        gaps = [b - a for a, b in pairwise(times)]
        # Equal jitter: the wait before attempt k+1 is at least half of min(cap, base * 2**(k-1)).
        for k, gap in enumerate(gaps, start=1):
            assert gap >= min(1.0, 0.2 * 2 ** (k - 1)) / 2 - 0.02, gaps
        assert len(hub.requests) == 4
        last_form = hub.requests[-1][1]
        assert Counter(v for k, v in last_form if k == "hub.url") == Counter(topics(*BASE_SCOPES))
        with db.engine(app).connect() as conn:
            attempts = set(conn.execute(select(outbox.c.attempts)).scalars())
            assert attempts == {4} and conn.execute(select(func.count()).where(outbox.c.last_error.is_not(None))
                                                    .select_from(outbox)).scalar() == 0
    finally:
        make_app.close()  # the sender thread first, then the hub it talks to
        hub.close()


def test_closing_the_app_stops_the_sender_thread_it_started(make_app, hub, api_headers, make_record):
    app = make_app(WEBSUB_HUBS=[hub.url], **{**FAST, "WEBSUB_SENDER": "thread"})
    before = set(threading.enumerate())
    put(app.test_client(), make_record(), api_headers)  # the request starts the sender
    started = [t for t in threading.enumerate() if t not in before and t.name == "websub-sender"]
    assert len(started) == 1 and started[0].is_alive()
    close_app(app)
    assert not started[0].is_alive()


def test_retry_delay_grows_exponentially_to_a_cap_with_jitter():
    assert websub.retry_delay(1, 10, 3600, rand=lambda: 0.0) == 5
    assert websub.retry_delay(1, 10, 3600, rand=lambda: 1.0) == 10
    assert websub.retry_delay(4, 10, 3600, rand=lambda: 1.0) == 80
    assert websub.retry_delay(30, 10, 3600, rand=lambda: 1.0) == 3600
    delays = {websub.retry_delay(3, 10, 3600) for _ in range(50)}
    assert len(delays) > 1 and all(20 <= d <= 40 for d in delays)


def test_pending_notifications_survive_a_restart(database_url, api_headers, make_record, make_app):
    hub = Hub(statuses=[500] * 1000)  # down
    quick_retry = {**FAST, "WEBSUB_RETRY_BASE_SECONDS": 0.01, "WEBSUB_RETRY_MAX_SECONDS": 0.01}
    first = make_app(WEBSUB_HUBS=[hub.url], **quick_retry)
    try:
        put(first.test_client(), make_record(), api_headers)
        assert send(first) == 0  # refused: the rows stay, with the error
        make_app.close()  # the process is gone; only the database remains

        hub.statuses.clear()  # the hub is back
        hub.requests.clear()
        restarted = make_app(WEBSUB_HUBS=[hub.url], **quick_retry)
        time.sleep(0.05)  # past the 0.01 s backoff
        result = restarted.test_cli_runner().invoke(args=["websub", "worker", "--once"])
        assert result.exit_code == 0, result.output
        assert Counter(hub.all_topics()) == Counter(topics(*BASE_SCOPES))
        assert pending(restarted) == 0
    finally:
        hub.close()


def test_a_sender_that_dies_holding_rows_loses_nothing(hub_app, hub, api_headers, make_record):
    put(hub_app.test_client(), make_record(), api_headers)
    engine, settings = db.engine(hub_app), websub.publisher(hub_app).settings
    t0 = store.now_utc() + timedelta(seconds=1)
    crashed = websub.Sender(engine, settings, clock=lambda: t0)
    assert crashed.claim(hub.url) is not None  # claimed, then the process died before the POST
    other = websub.Sender(engine, settings, clock=lambda: t0 + timedelta(seconds=1))
    assert other.send_due() == 0 and hub.requests == []  # held by the claim's lease
    later = websub.Sender(engine, settings, clock=lambda: t0 + timedelta(seconds=settings.lease + 1))
    assert later.send_due() == 1
    assert Counter(hub.all_topics()) == Counter(topics(*BASE_SCOPES))


def test_concurrent_senders_never_send_a_notification_twice(database_url, hub, api_headers, make_record, make_app):
    app = make_app(WEBSUB_HUBS=[hub.url], WEBSUB_TOPICS_PER_REQUEST=3, **FAST)
    client = app.test_client()
    for n in range(8):
        put(client, make_record(id=f"c-{n}", slug=f"c-{n}", tags=[{"key": f"t{n}", "name": f"टैग {n}"}],
                                authors=[{"key": f"a{n}", "name": f"लेखक {n}"}]), api_headers)
    # Separate engines, as separate processes would have.
    engines = [store.make_engine(database_url) for _ in range(3)]
    settings = websub.publisher(app).settings
    barrier = threading.Barrier(len(engines))

    def run(engine):
        barrier.wait()
        websub.Sender(engine, settings).send_due()

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sent = Counter(hub.all_topics())
    expected = topics("site", "section:national", *{f"tag:t{n}" for n in range(8)}, *{f"author:a{n}" for n in range(8)})
    assert set(sent) == expected
    assert pending(app) == 0
    # A topic pinged twice is only possible if its second ping followed a later write; none did here.
    assert max(sent.values()) == 1, [t for t, n in sent.items() if n > 1]
    for engine in engines:
        engine.dispose()


def test_status_shows_pending_and_failing_counts_per_hub(database_url, api_headers, make_record, make_app):
    hub = Hub(statuses=[500] * 1000)
    app = make_app(WEBSUB_HUBS=[hub.url], **FAST)
    try:
        put(app.test_client(), make_record(), api_headers)
        runner = app.test_cli_runner()
        before = runner.invoke(args=["websub", "status"])
        assert before.exit_code == 0 and hub.url in before.output
        assert "pending 12, failing 0" in before.output and "oldest pending" in before.output
        send(app)
        after = runner.invoke(args=["websub", "status"]).output
        assert "pending 12, failing 12" in after and "last error: HTTP 500" in after
    finally:
        hub.close()


def test_unreachable_hub_is_a_recorded_error_not_a_crash(database_url, api_headers, make_record, make_app):
    closed = Hub()
    url = closed.url
    closed.close()  # nothing listens on this port any more
    app = make_app(WEBSUB_HUBS=[url], **FAST)
    put(app.test_client(), make_record(), api_headers)
    assert send(app) == 0
    with db.engine(app).connect() as conn:
        errors = set(conn.execute(select(outbox.c.last_error)).scalars())
    assert len(errors) == 1 and "refused" in errors.pop().lower()


def test_topics_are_the_feeds_own_self_links_and_the_feeds_name_the_hub(hub_app, hub, api_headers, make_record):
    client = hub_app.test_client()
    put(client, make_record(), api_headers)
    send(hub_app)
    atom = "{http://www.w3.org/2005/Atom}link"
    for topic in set(hub.all_topics()):
        response = client.get(topic[len(SITE_URL):])
        assert response.status_code == 200, topic
        if topic.endswith(".json"):
            feed = response.get_json()
            assert feed["feed_url"] == topic and feed["hubs"] == [{"type": "WebSub", "url": hub.url}]
            continue
        links = {link.get("rel"): link.get("href") for link in etree.fromstring(response.get_data()).iter(atom)}
        assert links["self"] == topic and links["hub"] == hub.url


@pytest.mark.slow  # a worker process started and stopped: 8-13 s
def test_dedicated_worker_process_sends_and_stops_on_sigterm(make_app, hub, api_headers, make_record):
    """`flask --app wsgi websub worker` as operators run it, configured from the environment."""
    web = make_app(WEBSUB_HUBS=[hub.url], WEBSUB_SENDER="worker")  # web workers that do not send
    put(web.test_client(), make_record(), api_headers)
    env = {**os.environ, "FEEDSVC_DATABASE_URL": web.config["DATABASE_URL"], "FEEDSVC_SITE_URL": SITE_URL,
           "FEEDSVC_WEBSUB_HUBS": f" {hub.url} ,", "FEEDSVC_WEBSUB_SENDER": "worker",
           "FEEDSVC_WEBSUB_POLL_SECONDS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "websub", "worker"],
                              env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert hub.wait_for(lambda: len(hub.all_topics()) == 12, timeout=30)
        assert Counter(hub.all_topics()) == Counter(topics(*BASE_SCOPES))
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "stopped" in err
    status = web.test_cli_runner().invoke(args=["websub", "status"]).output
    assert "pending 0, failing 0, sent in the last 24h 12" in status
