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
from feedsvc.ops import access_log, desk_checks, desk_counters, partners
from feedsvc.store import (
    desk_feed_days,
    desk_feed_hours,
    desk_left_out,
    desk_pollers,
    desk_reader_days,
    now_utc,
    websub_outbox,
)
from feedsvc.validate.command import Outcome
from feedsvc.validate.problems import Problem
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
    assert row["last_30_days"]["ok"] == 4 and row["last_24_hours"]["requests"] == 4
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
    assert row["last_24_hours"]["not_modified"] == 3 and row["last_24_hours"]["not_modified_share"] == pytest.approx(0.75)


def test_the_fast_path_counts_its_replays(make_app, make_record):
    app = make_app(DESK_TOKENS=[DESK_TOKEN], FAST_PATH=True, RATELIMIT_ENABLED=False)
    commit_write(db.engine(app), upsert, parse_record(make_record(), site_url=SITE_URL),
                 site_name=app.config["SITE_NAME"])
    poll(app, times=4)   # the first through the app, the others replayed by the middleware
    assert app.wsgi_app.replays, "the fast path kept no replay"
    assert feeds_json(app)["/feeds/rss.xml"]["last_24_hours"]["ok"] == 4


def test_refusals_and_errors_are_counted_and_other_statuses_not(desk_app):
    counters = desk_counters.counters(desk_app)
    for status in (200, 304, 304, 429, 500, 503, 404, 301):
        counters.count("/feeds/rss.xml", status, None, None)
    counters.flush()
    with db.engine(desk_app).connect() as conn:
        traffic = desk_counters.traffic_since(conn, date.today() - timedelta(days=2))["/feeds/rss.xml"]
    assert traffic == desk_counters.Traffic(polls=1, not_modified=2, refused=1, errors=2)


def test_with_desk_counts_off_serving_counts_nothing(make_app, make_record):
    app = make_app(DESK_TOKENS=[DESK_TOKEN], DESK_COUNTS=False, RATELIMIT_ENABLED=False)
    commit_write(db.engine(app), upsert, parse_record(make_record(), site_url=SITE_URL),
                 site_name=app.config["SITE_NAME"])
    poll(app, times=2)
    desk_counters.counters(app).count_partner(1, "/feeds/rss.xml", 200, 100)
    assert not desk_counters.counters(app).pending
    assert feeds_json(app)["/feeds/rss.xml"]["last_30_days"]["requests"] == 0


def test_days_and_hours_past_their_keeping_periods_are_dropped_when_counts_are_written(desk_app):
    old_day = date.today() - timedelta(days=desk_app.config["DESK_KEEP_DAYS"] + 5)
    kept_day = date.today() - timedelta(days=desk_app.config["DESK_KEEP_DAYS"] - 5)
    hour = now_utc().replace(minute=0, second=0, microsecond=0)
    old_hour, kept_hour = hour - timedelta(hours=desk_app.config["DESK_KEEP_HOURS"] + 2), hour - timedelta(hours=30)
    zero = dict(feed="/feeds/rss.xml", polls=1, not_modified=0, refused=0, errors=0)
    with db.engine(desk_app).begin() as conn:
        conn.execute(desk_feed_days.insert(), [dict(zero, day=old_day), dict(zero, day=kept_day)])
        conn.execute(desk_feed_hours.insert(), [dict(zero, hour=old_hour), dict(zero, hour=kept_hour)])
        conn.execute(desk_left_out.insert().values(profile="msn", item="gone", rule="title.min", message="-",
                                                   seen_at=now_utc() - timedelta(days=desk_app.config["DESK_KEEP_DAYS"] + 1)))
    poll(desk_app)
    desk_counters.counters(desk_app).flush()
    with db.engine(desk_app).connect() as conn:
        days = {d for (d,) in conn.execute(select(desk_feed_days.c.day))}
        hours = {h for (h,) in conn.execute(select(desk_feed_hours.c.hour))}
        left = conn.execute(select(func.count()).select_from(desk_left_out)).scalar()
    assert old_day not in days and kept_day in days and len(days) == 2   # and today's
    assert old_hour not in hours and {kept_hour, hour} <= hours
    assert left == 0


def test_the_last_24_hours_slide_over_the_hours(desk_app):
    hour = now_utc().replace(minute=0, second=0, microsecond=0)
    row = dict(feed="/feeds/atom.xml", not_modified=0, refused=0, errors=0)
    with db.engine(desk_app).begin() as conn:   # 23 h ago is in the window, 25 h ago is not
        conn.execute(desk_feed_hours.insert(), [dict(row, hour=hour - timedelta(hours=23), polls=5),
                                                dict(row, hour=hour - timedelta(hours=25), polls=7)])
        conn.execute(desk_feed_days.insert(), [dict(row, day=date.today() - timedelta(days=2), polls=12)])
    poll(desk_app, path="/feeds/atom.xml", times=2)
    row = feeds_json(desk_app)["/feeds/atom.xml"]
    assert row["last_24_hours"]["ok"] == 5 + 2
    assert row["last_30_days"]["ok"] == 12 + 2


def test_the_hour_and_the_publications_day_change_when_they_should():
    ist_midnight = datetime(2026, 3, 1, tzinfo=IST).timestamp()   # 18:30 UTC: in the middle of no UTC hour
    clock = [ist_midnight - 60]
    now = desk_counters._Now("Asia/Kolkata", clock=lambda: clock[0])
    assert now() == (date(2026, 2, 28), int(ist_midnight - 1800) // 3600 * 3600)
    clock[0] = ist_midnight + 60
    assert now() == (date(2026, 3, 1), int(ist_midnight - 1800))   # same UTC hour, a new day
    clock[0] = ist_midnight + 1800 + 60
    assert now() == (date(2026, 3, 1), int(ist_midnight + 1800))


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


def test_an_item_a_profile_left_out_is_an_alert_with_its_reason(desk_app, make_record):
    for name in ("old-story-2024", "older-story-2024"):   # both in one announcement (one check)
        old = make_record(id=name, slug=name, published="2024-07-01T09:00:00+05:30", updated="2024-07-01T09:00:00+05:30")
        commit_write(db.engine(desk_app), upsert, parse_record(old, site_url=SITE_URL),
                     site_name=desk_app.config["SITE_NAME"])
    assert desk_app.test_client().get("/feeds/profile/msn/rss.xml").status_code == 200   # msn: 30 days at most
    page = html.fromstring(desk_app.test_client().get("/desk/alerts", headers=BEARER).data)
    rows = [[td.text_content() for td in tr.xpath("td")] for tr in page.xpath("//table[@id='left-out']/tbody/tr")]
    found = {(r[0], r[1], r[2]) for r in rows}
    assert {("msn", name, "window.max_age_days") for name in ("old-story-2024", "older-story-2024")} <= found
    assert all(r[3] for r in rows)   # and why


def test_validate_all_keeps_each_feeds_last_result_for_the_desk(desk_app):
    result = desk_app.test_cli_runner().invoke(args=["validate", "--all"])
    assert result.exit_code in (0, 1), result.output
    feeds = feeds_json(desk_app)
    assert all(row["validation"] is not None for row in feeds.values())
    assert feeds["/feeds/rss.xml"]["validation"]["ok"] is True
    assert feeds["/feeds/rss.xml"]["last_24_hours"]["requests"] == 0   # the app reading itself is no reader
    bad = Outcome("/feeds/atom.xml", "atom", [Problem("atom.id", "entry has no id", 12, 3)])
    with db.engine(desk_app).begin() as conn:
        assert desk_checks.record_validations(conn, [bad, Outcome("/sitemap.xml", "sitemapindex", [])]) == 1
    row = feeds_json(desk_app)["/feeds/atom.xml"]
    assert row["validation"]["ok"] is False and row["validation"]["first_problems"][0]["rule"] == "atom.id"
    assert "invalid: 1 problems" in row["problems"]
    page = html.fromstring(desk_app.test_client().get("/desk/", headers=BEARER).data)
    atom = page.xpath("//table[@id='feeds']/tbody/tr[@data-path='/feeds/atom.xml']")[0]
    assert "entry has no id" in atom.xpath("string(td[@class='validation'])")
    alerts = html.fromstring(desk_app.test_client().get("/desk/alerts", headers=BEARER).data)
    assert alerts.xpath("//ul[@id='invalid']/li/a/@href") == ["/feeds/atom.xml"]


def test_the_feeds_show_their_last_websub_ping(desk_app):
    sent_at = now_utc() - timedelta(minutes=5)
    base = dict(kind="websub", hub_url="https://hub.example/", created_at=now_utc(), next_attempt_at=now_utc(),
                sent_at=None, last_error=None)
    with db.engine(desk_app).begin() as conn:
        conn.execute(websub_outbox.insert(), [
            dict(base, topic_url=SITE_URL + "/feeds/rss.xml", attempts=1, sent_at=sent_at - timedelta(hours=2)),
            dict(base, topic_url=SITE_URL + "/feeds/rss.xml", attempts=1, sent_at=sent_at),
            dict(base, topic_url=SITE_URL + "/feeds/atom.xml", attempts=2, last_error="HTTP 503 from the hub")])
    feeds = feeds_json(desk_app)
    assert feeds["/feeds/rss.xml"]["websub"] == {"last_sent": sent_at.isoformat() + "Z", "pending": 0,
                                                  "last_error": None}
    assert feeds["/feeds/atom.xml"]["websub"]["pending"] == 1 and "WebSub ping failing" in feeds["/feeds/atom.xml"]["problems"]
    assert feeds["/feeds/feed.json"]["websub"] is None


def test_the_partners_page_plots_requests_304s_and_bytes(desk_app):
    with db.engine(desk_app).begin() as conn:
        partner, _key = partners.add(conn, "Acme News", None)
    counters = desk_counters.counters(desk_app)
    for status, sent in ((200, 40000), (200, 40000), (304, 0)):
        counters.count_partner(partner.id, "/feeds/rss.xml", status, sent)
    page = html.fromstring(desk_app.test_client().get("/desk/partners", headers=BEARER).data)
    svgs = [etree.fromstring(etree.tostring(svg)) for svg in page.xpath("//figure[@class='chart']/*[local-name()='svg']")]
    assert len(svgs) == 3 and all(len(svg.findall(f".//{SVG}circle")) == 30 for svg in svgs)
    row = page.xpath("//table[@id='partners']/tbody/tr[@data-partner='Acme News']")[0]
    assert [td.text for td in row.xpath("td")][1:3] == ["3", "1"] and row.xpath("td/@data-bytes") == ["80000"]
    assert page.xpath("string(//table[@id='keys']/tbody/tr/td[1])") == "Acme News"


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
