"""The desk (/desk/): who may see it, the counts it shows (kept in memory, written in batches, added up
across workers), its pages parsed as HTML and SVG, its JSON, and the access log's User-Agent and referrer."""
from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

import pytest
from lxml import etree, html
from sqlalchemy import func, select

from feedsvc import config, create_app
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.write import commit_write, upsert
from feedsvc.ops import access_log, desk_counters
from feedsvc.store import desk_feed_days, desk_pollers, desk_reader_days, now_utc, websub_outbox
from feedsvc.web import db
from tests.support.apps import SITE_URL

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

DESK_TOKEN = "desk-token-डेस्क-0123456789abcdef0123"
OTHER_TOKEN = "not-the-desk-token-0123456789abcdef"
FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 265 subscribers; )"
INOREADER = "Mozilla/5.0 (compatible; Inoreader/1.0; https://www.inoreader.com; 42 subscribers)"
BEARER = {"Authorization": f"Bearer {DESK_TOKEN}"}
SVG = "{http://www.w3.org/2000/svg}"
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def desk_app(database_url, make_app, make_record):   # every backend: the upserts differ
    app = make_app(DESK_TOKENS=[DESK_TOKEN], RATELIMIT_ENABLED=False)
    an_hour_ago = (datetime.now(IST) - timedelta(hours=1)).isoformat(timespec="seconds")
    commit_write(db.engine(app), upsert,
                 parse_record(make_record(published=an_hour_ago, updated=an_hour_ago), site_url=SITE_URL),
                 site_name=app.config["SITE_NAME"])
    return app


def stored(app, table) -> int:
    with db.engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def csrf_token(page: bytes) -> str:
    return html.fromstring(page).xpath("//input[@name='csrf_token']/@value")[0]


def sign_in(client) -> None:
    token = csrf_token(client.get("/desk/login").data)
    response = client.post("/desk/login", data={"token": DESK_TOKEN, "csrf_token": token})
    assert response.status_code == 303


def feeds_json(app) -> dict:
    response = app.test_client().get("/desk/api/feeds", headers=BEARER)
    assert response.status_code == 200
    return {row["path"]: row for row in response.get_json()["feeds"]}


# ---- who may see the desk ----------------------------------------------------------------------

def test_without_desk_tokens_there_is_no_desk(make_app):
    assert make_app().test_client().get("/desk/").status_code == 404


@pytest.mark.parametrize("path", ["/desk/", "/desk/audience", "/desk/outbox", "/desk/api/feeds"])
def test_no_token_is_401_and_a_wrong_one_403(desk_app, path):
    client = desk_app.test_client()
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}).status_code == 403
    assert client.get(path, headers=BEARER).status_code == 200


def test_the_login_form_sets_a_strict_httponly_cookie_for_the_desk_only(desk_app):
    client = desk_app.test_client()
    form = html.fromstring(client.get("/desk/").data)   # 401 with the form to sign in
    assert form.xpath("//form[@action='/desk/login']//input[@name='token']")
    sign_in(client)
    cookie = client.get_cookie("session", path="/desk/")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict" and not cookie.secure
    assert client.get("/desk/").status_code == 200
    assert client.get("/desk/api/feeds").status_code == 200   # the page links to its JSON


def test_the_cookie_is_secure_on_an_https_site(make_app):
    client = make_app(DESK_TOKENS=[DESK_TOKEN], SITE_URL="https://news.example").test_client()
    sign_in(client)
    assert client.get_cookie("session", path="/desk/").secure


def test_a_wrong_token_in_the_form_is_403_and_signs_nobody_in(desk_app):
    client = desk_app.test_client()
    token = csrf_token(client.get("/desk/login").data)
    assert client.post("/desk/login", data={"token": OTHER_TOKEN, "csrf_token": token}).status_code == 403
    assert client.get("/desk/").status_code == 401


def test_a_post_without_its_csrf_token_is_refused(desk_app):
    client = desk_app.test_client()
    assert client.post("/desk/login", data={"token": DESK_TOKEN}).status_code == 400
    assert client.get("/desk/").status_code == 401
    sign_in(client)
    assert client.post("/desk/outbox/retry", data={}).status_code == 400
    assert client.post("/desk/logout", data={}).status_code == 400
    assert client.get("/desk/").status_code == 200


def test_a_removed_token_ends_its_sessions(desk_app, make_app):
    client = desk_app.test_client()
    sign_in(client)
    desk_app.config["DESK_TOKEN_DIGESTS"] = config.parse_token_digests([OTHER_TOKEN])
    assert client.get("/desk/").status_code == 401


def test_the_desk_needs_a_secret_key_outside_tests(database_url):
    with pytest.raises(config.ConfigError, match="FEEDSVC_SECRET_KEY"):
        create_app({"DATABASE_URL": database_url, "DESK_TOKENS": [DESK_TOKEN], "SECRET_KEY": None})
    with pytest.raises(config.ConfigError, match="FEEDSVC_SECRET_KEY"):
        create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "short"})


# ---- counting --------------------------------------------------------------------------------

def poll(app, path="/feeds/rss.xml", user_agent=FEEDLY, times=1, remote="203.0.113.7"):
    client = app.test_client()
    for _ in range(times):
        client.get(path, headers={"User-Agent": user_agent}, environ_base={"REMOTE_ADDR": remote})


def test_counts_wait_in_memory_and_survive_a_restart(desk_app, make_app):
    poll(desk_app, times=3)
    poll(desk_app, user_agent=INOREADER, remote="198.51.100.2")
    assert stored(desk_app, desk_feed_days) == 0   # nothing written per request
    desk_counters.counters(desk_app).flush()
    restarted = make_app(DESK_TOKENS=[DESK_TOKEN])
    row = feeds_json(restarted)["/feeds/rss.xml"]
    assert row["last_30_days"]["ok"] == 4 and row["today"]["requests"] == 4
    assert row["subscribers"] == 265 + 42
    assert stored(restarted, desk_pollers) == 2


def test_two_workers_on_one_database_add_up(desk_app, make_app):
    other = make_app(DESK_TOKENS=[DESK_TOKEN], RATELIMIT_ENABLED=False)
    poll(desk_app, path="/feeds/atom.xml", times=2)
    poll(other, path="/feeds/atom.xml", times=3, user_agent="curl/8.5.0")
    desk_counters.counters(desk_app).flush()
    desk_counters.counters(other).flush()
    poll(other, path="/feeds/atom.xml")
    desk_counters.counters(other).flush()   # a second write adds to the first
    row = feeds_json(desk_app)["/feeds/atom.xml"]
    assert row["last_30_days"]["ok"] == 6
    assert row["subscribers"] == 265
    with db.engine(desk_app).connect() as conn:
        polls = dict(conn.execute(select(desk_reader_days.c.family, desk_reader_days.c.polls)).all())
    assert polls == {"feedly": 3, "tool": 3}


def test_conditional_polls_count_as_304s(desk_app):
    client = desk_app.test_client()
    etag = client.get("/feeds/feed.json").headers["ETag"]
    for _ in range(3):
        assert client.get("/feeds/feed.json", headers={"If-None-Match": etag}).status_code == 304
    row = feeds_json(desk_app)["/feeds/feed.json"]
    assert row["today"]["not_modified"] == 3 and row["today"]["not_modified_share"] == pytest.approx(0.75)


def test_the_fast_path_counts_its_replays(make_app, make_record):
    app = make_app(DESK_TOKENS=[DESK_TOKEN], FAST_PATH=True, RATELIMIT_ENABLED=False)
    commit_write(db.engine(app), upsert, parse_record(make_record(), site_url=SITE_URL),
                 site_name=app.config["SITE_NAME"])
    poll(app, times=4)   # the first through the app, the others replayed by the middleware
    assert app.wsgi_app.replays, "the fast path kept no replay"
    assert feeds_json(app)["/feeds/rss.xml"]["today"]["ok"] == 4


def test_refusals_and_errors_are_counted_and_other_statuses_not(desk_app):
    counters = desk_counters.counters(desk_app)
    for status in (200, 304, 304, 429, 500, 503, 404, 301):
        counters.count("/feeds/rss.xml", status, None, None)
    counters.flush()
    with db.engine(desk_app).connect() as conn:
        traffic = desk_counters.traffic_since(conn, date.today() - timedelta(days=2))["/feeds/rss.xml"]
    assert traffic == desk_counters.Traffic(polls=1, not_modified=2, refused=1, errors=2)


def test_days_past_the_keeping_period_are_dropped_when_counts_are_written(desk_app):
    old = date.today() - timedelta(days=desk_app.config["DESK_KEEP_DAYS"] + 5)
    with db.engine(desk_app).begin() as conn:
        conn.execute(desk_feed_days.insert().values(day=old, feed="/feeds/rss.xml", polls=1, not_modified=0,
                                                    refused=0, errors=0))
    poll(desk_app)
    desk_counters.counters(desk_app).flush()
    with db.engine(desk_app).connect() as conn:
        days = {d for (d,) in conn.execute(select(desk_feed_days.c.day))}
    assert old not in days and days


# ---- pages ----------------------------------------------------------------------------------

def test_the_feeds_page_lists_every_feed_with_its_figures(desk_app):
    poll(desk_app, times=2)
    page = html.fromstring(desk_app.test_client().get("/desk/?sort=size", headers=BEARER).data)
    rows = {tr.get("data-path"): tr for tr in page.xpath("//table[@id='feeds']/tbody/tr[@data-path]")}
    assert {"/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json"} <= set(rows)
    rss = rows["/feeds/rss.xml"]
    assert int(rss.xpath(".//td[@data-bytes]/@data-bytes")[0]) > 0
    assert rss.xpath(".//td[@data-subscribers]/@data-subscribers") == ["265"]
    assert page.xpath("//h1//span[@class='en']/text()") == ["(Feeds)"]


def test_problem_feeds_come_first(desk_app):
    counters = desk_counters.counters(desk_app)
    counters.count("/feeds/atom.xml", 500, None, None)
    page = html.fromstring(desk_app.test_client().get("/desk/?sort=name&order=asc", headers=BEARER).data)
    rows = page.xpath("//table[@id='feeds']/tbody/tr[@data-path]")
    assert rows[0].get("data-path") == "/feeds/atom.xml" and "problem" in rows[0].get("class")
    names = [row.xpath("string(td[1]/a)") for row in rows[1:]]
    assert names == sorted(names) and not any("problem" in row.get("class") for row in rows[1:])


def test_the_audience_page_plots_the_counts_as_svg(desk_app):
    poll(desk_app, times=2)
    page = desk_app.test_client().get("/desk/audience", headers=BEARER)
    assert page.status_code == 200
    tree = html.fromstring(page.data)
    svgs = [etree.fromstring(etree.tostring(svg)) for svg in tree.xpath("//figure[@class='chart']/*[local-name()='svg']")]
    assert len(svgs) == 3
    dots = svgs[1].findall(f".//{SVG}circle")
    assert len(dots) == 30 * 2   # 200s and 304s, one point per day
    assert not tree.xpath("//script")
    assert [td.text for td in tree.xpath("//table[@id='readers']/tbody/tr/td[1]")] == ["Feedly"]


def test_the_outbox_shows_failures_and_retries_them(desk_app):
    with db.engine(desk_app).begin() as conn:
        later = now_utc() + timedelta(hours=1)
        conn.execute(websub_outbox.insert().values(kind="websub", hub_url="https://hub.example/", attempts=3,
                                                   topic_url=SITE_URL + "/feeds/rss.xml", created_at=now_utc(),
                                                   next_attempt_at=later, last_error="HTTP 502 from the hub"))
    client = desk_app.test_client()
    sign_in(client)
    page = html.fromstring(client.get("/desk/outbox").data)
    assert "HTTP 502 from the hub" in page.xpath("string(//table[@id='failed'])")
    token = page.xpath("//table[@id='failed']//input[@name='csrf_token']/@value")[0]
    assert client.post("/desk/outbox/retry", data={"csrf_token": token}).status_code == 303
    with db.engine(desk_app).connect() as conn:
        assert conn.execute(select(websub_outbox.c.next_attempt_at)).scalar() < later


@pytest.mark.parametrize("path", ["/desk/partners", "/desk/alerts"])
def test_the_other_views_render(desk_app, path):
    response = desk_app.test_client().get(path, headers=BEARER)
    assert response.status_code == 200 and html.fromstring(response.data).xpath("//h1")


def test_the_json_has_every_feed_and_its_figures(desk_app):
    feeds = feeds_json(desk_app)
    assert len(feeds) >= 3 * 4   # the site, the record's section, tag and author, in three formats
    row = feeds["/feeds/rss.xml"]
    assert row["items"] == 1 and row["bytes"] > 0 and row["budgets_over"] == [] and row["subscribers"] == 0


# ---- the access log ---------------------------------------------------------------------------

class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(record.getMessage()))


def test_the_access_log_keeps_user_agent_and_referrer_without_secrets(desk_app):
    lines = Lines()
    access_log.logger.addHandler(lines)
    key = "fsk_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    try:
        desk_app.test_client().get("/feeds/rss.xml", headers={
            "User-Agent": FEEDLY, "Referer": f"https://reader.example/partner/{key}/feeds?access_token=s3cr3t&x=1"})
    finally:
        access_log.logger.removeHandler(lines)
    line = lines.lines[-1]
    assert line["user_agent"] == FEEDLY
    assert line["referrer"] == "https://reader.example/partner/[redacted]/feeds?access_token=[redacted]&x=1"
