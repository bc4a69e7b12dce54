"""Scheduled publication: an article whose time (`published`, or `embargo_until`) has not come is as
unknown as a draft everywhere, then goes live at that instant, once, with its scopes bumped and pinged."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
from lxml import etree
from sqlalchemy import update

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.write import commit_write, upsert
from feedsvc.publish import mirror as export
from feedsvc.publish import schedule
from feedsvc.render import sitemaps
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record
from tests.support.visibility import SCOPES, assert_as_unknown, outbox_rows, scope_versions

IST = timezone(timedelta(hours=5, minutes=30))
FEEDS = ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/national/rss.xml",
         "/feeds/tag/parliament/atom.xml", "/feeds/author/test-reporter/feed.json")


# A hub that is never contacted (sent by a separate worker), so outbox rows stay to be counted;
# the scheduler runs only when a test says so.
QUIET = {"WEBSUB_HUBS": ["http://127.0.0.1:9/hub"], "WEBSUB_SENDER": "worker", "SCHEDULER": "worker"}


@pytest.fixture
def app(database_url, make_app):
    return make_app(**QUIET)


def stamp(moment: datetime) -> str:
    return moment.astimezone(IST).isoformat(timespec="seconds")


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def in_feeds(client, needle: str) -> list[bool]:
    return [needle in client.get(path).get_data(as_text=True) for path in FEEDS]


def in_sitemaps(client, slug: str) -> bool:
    index = etree.fromstring(client.get(sitemaps.INDEX_PATH).data)
    return any(slug.encode() in client.get(loc.text.removeprefix(SITE_URL)).data
               for loc in index.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc"))


def write_at(app, record: dict, now: datetime):
    """The one write path, as if run at `now` (naive UTC)."""
    return commit_write(db.engine(app), upsert, parse_record(record, site_url=SITE_URL),
                        site_name=app.config["SITE_NAME"], now=now)


def scheduler_at(app, clock) -> schedule.Scheduler:
    return schedule.Scheduler(db.engine(app), schedule.scheduler(app).settings, clock=clock)


@pytest.mark.usefixtures("live")
def test_a_scheduled_article_is_unknown_everywhere_then_live_at_its_time(app, client, make_record, make_app):
    due = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    record = make_record(id="embargo-1", slug="embargoed-story", title="अभी नहीं | Embargoed",
                         published=stamp(due), updated=stamp(due))
    versions, rows = scope_versions(app), outbox_rows(app)
    assert write_at(app, record, naive_utc(due) - timedelta(hours=1)).scopes == {}

    assert_as_unknown(client, "embargoed-story")
    assert in_feeds(client, "embargo-1") == [False] * len(FEEDS)
    assert not in_sitemaps(client, "embargoed-story")
    assert (scope_versions(app), outbox_rows(app)) == (versions, rows)
    assert scheduler_at(app, lambda: naive_utc(due) - timedelta(seconds=1)).fire_due() == []
    assert client.get("/articles/embargoed-story").status_code == 404

    # A restart: another app on the same store finds the schedule there and fires it, once.
    restarted = make_app(**QUIET)
    assert scheduler_at(restarted, lambda: naive_utc(due)).fire_due() == ["embargo-1"]
    assert scheduler_at(app, lambda: naive_utc(due)).fire_due() == []

    assert in_feeds(client, "embargo-1") == [True] * len(FEEDS)
    assert client.get("/articles/embargoed-story").status_code == 200
    assert client.get("/amp/embargoed-story").status_code == 200
    assert client.get(f"/oembed?url={SITE_URL}/articles/embargoed-story").status_code == 200
    assert in_sitemaps(client, "embargoed-story")
    after = scope_versions(app)
    assert all(after[scope] == versions[scope] + 1 for scope in SCOPES)
    assert outbox_rows(app) > rows


@pytest.mark.usefixtures("live")
def test_many_schedulers_at_once_make_it_live_once(app, client, make_record):
    due = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    write_at(app, make_record(id="embargo-2", slug="race", published=stamp(due), updated=stamp(due)),
             naive_utc(due) - timedelta(minutes=1))
    versions = scope_versions(app)
    start = threading.Barrier(4)
    fired: list[str] = []

    def run():
        start.wait()
        fired.extend(scheduler_at(app, store.now_utc).fire_due())
    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fired == ["embargo-2"]
    assert scope_versions(app)["site"] == versions["site"] + 1


@pytest.mark.usefixtures("live")
def test_an_api_write_dated_tomorrow_or_under_embargo_is_scheduled(app, client, api_headers, make_record,
                                                                   runner):
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    rows = outbox_rows(app)
    put_record(client, api_headers, make_record(id="future-1", slug="tomorrow", published=stamp(tomorrow),
                                                updated=stamp(tomorrow)))
    put_record(client, api_headers, make_record(id="future-2", slug="embargoed", embargo_until=stamp(tomorrow)))
    assert_as_unknown(client, "tomorrow", "embargoed")
    assert in_feeds(client, "future-") == [False] * len(FEEDS)
    assert outbox_rows(app) == rows
    listed = runner.invoke(args=["schedule", "status"]).output
    assert "future-1" in listed and "future-2" in listed
    # The embargo lifted early by the CMS: the write itself makes it live.
    put_record(client, api_headers, make_record(id="future-2", slug="embargoed", updated="2025-08-02T09:00:00+05:30"))
    assert client.get("/articles/embargoed").status_code == 200
    assert in_feeds(client, "future-2") == [True] * len(FEEDS)


@pytest.mark.usefixtures("live")
def test_a_live_row_dated_in_the_future_never_shows_before_its_time(app, client):
    """Stored live with a time to come (before scheduling existed, or a late scheduler): still hidden."""
    later = naive_utc(datetime.now(timezone.utc) + timedelta(hours=2))
    with db.engine(app).begin() as conn:
        for table in (store.articles, store.article_tags, store.article_authors):
            id_column = table.c.id if table is store.articles else table.c.article_id
            conn.execute(update(table).where(id_column == "live-1").values(published=later))
        store.record_changes(conn, {"site": app.config["SITE_NAME"], "section:national": "देश",
                                    "tag:parliament": "संसद", "author:test-reporter": "परीक्षा संवाददाता"})
    assert in_feeds(client, "live-1") == [False] * len(FEEDS)
    assert client.get("/articles/live-story").status_code == 404
    assert not in_sitemaps(client, "live-story")


@pytest.mark.slow
def test_an_article_scheduled_3_s_ahead_reaches_the_feed_and_the_mirror_within_1_s(
        database_url, make_app, api_headers, make_record, tmp_path):
    app = make_app(SCHEDULER="thread")
    client = app.test_client()
    put_record(client, api_headers, make_record(id="live-1", slug="live-story"))
    stop, synced = threading.Event(), threading.Event()

    def keep_mirror():  # the mirror's manifest connection belongs to the thread that opens it
        mirror = export.Mirror(app, tmp_path)
        try:
            mirror.sync()
            synced.set()
            mirror.watch(0.05, stop)
        finally:
            mirror.close()
    watcher = threading.Thread(target=keep_mirror)
    watcher.start()
    try:
        assert synced.wait(30)
        due = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
        put_record(client, api_headers, make_record(id="timed-1", slug="timed", title="समय पर | On time",
                                                    published=stamp(due), updated=stamp(due)))
        seen = {}
        while len(seen) < 2 and datetime.now(timezone.utc) < due + timedelta(seconds=3):
            now = datetime.now(timezone.utc)
            feed = feedparser.parse(client.get("/feeds/rss.xml").data)
            if "feed" not in seen and any(e.id.endswith("articles/timed-1") for e in feed.entries):
                seen["feed"] = now
            if "mirror" not in seen and "समय पर".encode() in (tmp_path / "feeds/rss.xml").read_bytes():
                seen["mirror"] = now
            time.sleep(0.02)
    finally:
        stop.set()
        watcher.join()
    assert set(seen) == {"feed", "mirror"}, seen
    for where, when in seen.items():
        assert due <= when <= due + timedelta(seconds=1), (where, (when - due).total_seconds())


@pytest.mark.usefixtures("live")
def test_the_migration_schedules_live_rows_dated_in_the_future(app):
    from alembic import command
    from alembic.config import Config

    from feedsvc.store import engine as store_engine
    later = naive_utc(datetime.now(timezone.utc) + timedelta(hours=2))
    config = Config()
    config.set_main_option("script_location", str(store_engine.Path(store_engine.__file__).parent / "migrations"))
    with db.engine(app).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        conn.execute(update(store.articles).where(store.articles.c.id == "live-1").values(published=later))
        command.upgrade(config, "head")
    with db.engine(app).connect() as conn:
        row = store.article_row(conn, "live-1")
    assert (row.status, row.visible_from, row.in_feeds) == (store.SCHEDULED, later, True)
    assert json.loads(row.article)["id"] == "live-1"
