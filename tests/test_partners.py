"""Partner keys: the CLI lifecycle, keyed full-text feeds, response headers, usage counts, keys kept out of logs."""
import hashlib
import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

import feedparser
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from feedsvc import store
from feedsvc.ops import desk_counters, partners
from tests.support.apps import SITE_URL
from tests.support.records import put_record
from tests.support.servers import Gunicorn, serving

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first


@pytest.fixture
def app(database_url, make_app):
    # Public feeds carry summaries only here; partner feeds must still carry the full text.
    return make_app(FEED_FULL_TEXT=False, FEED_MAX_LIMIT=2)


@pytest.fixture
def articles(client, api_headers, make_record):
    records = []
    for n in range(1, 5):
        record = make_record(id=f"p-{n}", slug=f"partner-story-{n}", title=f"साझेदार ख़बर {n}",
                             body_html=f"<p>पूरा पाठ {n}: यह अनुच्छेद केवल पूरे पाठ में है।</p>",
                             summary=f"सार {n}", published=f"2025-08-0{n}T09:00:00+05:30",
                             updated=f"2025-08-0{n}T09:00:00+05:30")
        put_record(client, api_headers, record)
        records.append(record)
    return records


def add_partner(runner, name="Acme News") -> str:
    result = runner.invoke(args=["partners", "add", name])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.fixture
def key(runner):
    return add_partner(runner)


# ---- the CLI ---------------------------------------------------------------------------------------

def test_add_prints_the_key_once_and_stores_only_its_hash(runner, engine):
    result = runner.invoke(args=["partners", "add", "Acme News"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert partners.KEY_PATTERN.fullmatch(key) and result.stdout.count(key) == 1 and key not in result.stderr
    with engine.connect() as conn:
        rows = conn.execute(select(store.partners)).all()
    assert [r.key_hash for r in rows] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in repr(rows)
    listing = runner.invoke(args=["partners", "list"]).output
    assert "Acme News" in listing and "active" in listing and key not in listing


def test_keys_are_different_every_time(runner):
    assert add_partner(runner, "One") != add_partner(runner, "Two")


def test_duplicate_name_is_refused(runner, key):
    result = runner.invoke(args=["partners", "add", "Acme News"])
    assert result.exit_code != 0 and "already exists" in result.output


def test_revoke_unknown_partner_fails(runner):
    result = runner.invoke(args=["partners", "revoke", "Nobody"])
    assert result.exit_code != 0 and "no partner named 'Nobody'" in result.output


def test_revoke_shows_in_the_list(runner, key):
    assert "revoked" in runner.invoke(args=["partners", "revoke", "Acme News"]).output
    assert "revoked 20" in runner.invoke(args=["partners", "list"]).output


def test_lookup_by_key(engine, key):
    with engine.connect() as conn:
        assert partners.by_key(conn, key).name == "Acme News"
        assert partners.by_key(conn, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert partners.by_key(conn, "not-a-key") is None
        assert partners.by_key(conn, key + "x") is None


# ---- keyed feeds -------------------------------------------------------------------------------------

def feed_texts(response) -> list[str]:
    parsed = feedparser.parse(response.get_data())
    assert not parsed.bozo, parsed.bozo_exception
    return [" ".join(c.value for c in entry.get("content", [])) for entry in parsed.entries]


@pytest.mark.parametrize("how", ["bearer", "header", "path"])
def test_partner_feed_carries_full_text_that_the_public_feed_leaves_out(client, articles, key, how):
    public = client.get("/feeds/rss.xml")
    assert public.status_code == 200 and "पूरा पाठ" not in public.get_data(as_text=True)
    if how == "path":
        response = client.get(f"/partner/{key}/feeds/rss.xml")
    else:
        headers = {"Authorization": f"Bearer {key}"} if how == "bearer" else {"X-Partner-Key": key}
        response = client.get("/partner/feeds/rss.xml", headers=headers)
    assert response.status_code == 200
    texts = feed_texts(response)
    assert texts[0].endswith("<p>पूरा पाठ 4: यह अनुच्छेद केवल पूरे पाठ में है।</p>")


@pytest.mark.parametrize("path", ["/partner/feeds/section/national/atom.xml", "/partner/feeds/tag/parliament/feed.json",
                                  "/partner/feeds/author/test-reporter/rss.xml"])
def test_every_scope_and_format_has_a_partner_edition(client, articles, key, path):
    response = client.get(path, headers={"X-Partner-Key": key})
    assert response.status_code == 200
    if path.endswith(".json"):
        assert "पूरा पाठ" in response.get_json()["items"][0]["content_html"]
    else:
        assert "पूरा पाठ" in feed_texts(response)[0]


def test_partner_limit_goes_beyond_the_public_cap(client, articles, key):
    assert client.get("/feeds/feed.json?limit=4").status_code == 400  # FEED_MAX_LIMIT is 2 here
    response = client.get("/partner/feeds/feed.json?limit=4", headers={"X-Partner-Key": key})
    assert len(response.get_json()["items"]) == 4
    too_many = client.get("/partner/feeds/feed.json?limit=1001", headers={"X-Partner-Key": key})
    assert too_many.status_code == 400 and "1000" in too_many.get_json()["error"]


@pytest.mark.parametrize("fmt", ["feed.json", "rss.xml"])
def test_a_partner_page_ends_at_whole_items_within_its_text_budget(database_url, api_headers, make_record, fmt, make_app):
    """limit=1000 once gave 18 MB pages; now a page stops at the item that would take its text past
    PARTNER_PAGE_TEXT_BYTES, and its next link goes on from there until every item was served."""
    app = make_app(PARTNER_PAGE_TEXT_BYTES=3000)
    client, key = app.test_client(), add_partner(app.test_cli_runner())
    for n in range(1, 8):
        body = f"<p>{'लंबा पाठ ' * (40 if n != 5 else 400)}{n}</p>"   # item 5 alone is over the budget
        put_record(client, api_headers, make_record(id=f"long-{n}", slug=f"long-story-{n}", title=f"ख़बर {n}",
                                                    body_html=body, published=f"2025-08-0{n}T09:00:00+05:30",
                                                    updated=None))
    url, seen, pages = f"/partner/feeds/{fmt}?limit=1000", [], []
    while url:
        response = client.get(url.removeprefix(SITE_URL), headers={"X-Partner-Key": key})
        assert response.status_code == 200
        if fmt == "feed.json":
            page = response.get_json()
            titles, url = [item["title"] for item in page["items"]], page.get("next_url")
        else:
            parsed = feedparser.parse(response.data)
            titles = [entry.title for entry in parsed.entries]
            url = next((link.href for link in parsed.feed.get("links", []) if link.rel == "next"), None)
        pages.append(titles)
        seen += titles
    assert seen == [f"ख़बर {n}" for n in range(7, 0, -1)]   # every item once, newest first
    assert ["ख़बर 5"] in pages and all(1 <= len(page) < 7 for page in pages)


def test_unknown_scope_is_404(client, articles, key):
    assert client.get("/partner/feeds/section/nowhere/rss.xml", headers={"X-Partner-Key": key}).status_code == 404


def test_path_key_feed_links_keep_the_key_and_header_feed_links_do_not(client, articles, key):
    by_path = client.get(f"/partner/{key}/feeds/feed.json?limit=1").get_json()
    assert by_path["feed_url"] == f"{SITE_URL}/partner/{key}/feeds/feed.json?limit=1"
    assert by_path["next_url"].startswith(f"{SITE_URL}/partner/{key}/feeds/feed.json?")
    by_header = client.get("/partner/feeds/feed.json?limit=1", headers={"X-Partner-Key": key}).get_json()
    assert key not in json.dumps(by_header) and by_header["feed_url"].startswith(f"{SITE_URL}/partner/feeds/")


def test_keyed_responses_are_private_without_referrer_or_cors(client, articles, key):
    public = client.get("/feeds/feed.json")
    assert public.headers["Access-Control-Allow-Origin"] == "*" and "public" in public.headers["Cache-Control"]
    response = client.get("/partner/feeds/feed.json", headers={"X-Partner-Key": key})
    cache_control = {part.strip().split("=")[0] for part in response.headers["Cache-Control"].split(",")}
    assert "private" in cache_control and "public" not in cache_control
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert not [h for h in response.headers.keys() if h.lower().startswith("access-control-")]
    assert {"Authorization", "X-Partner-Key"} <= {v.strip() for v in response.headers["Vary"].split(",")}


def test_partner_feed_answers_304_to_a_conditional_request(client, articles, key):
    first = client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key})
    again = client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_key_lifecycle_add_use_revoke(client, runner, articles):
    assert client.get("/partner/feeds/rss.xml").status_code == 401
    key = add_partner(runner)
    assert client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key}).status_code == 200
    runner.invoke(args=["partners", "revoke", "Acme News"])
    for response in (client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key}),
                     client.get(f"/partner/{key}/feeds/rss.xml")):
        assert response.status_code == 403
        assert "revoked" in response.get_json()["message"]
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}])
def test_missing_key_is_401_with_a_challenge(client, articles, headers):
    response = client.get("/partner/feeds/rss.xml", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-Partner-Key" in response.get_json()["message"]


@pytest.mark.parametrize("wrong", ["fsk_" + "A" * 43, "guess", "fsk_short"])
def test_wrong_key_is_401(client, articles, key, wrong):
    for response in (client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": wrong}),
                     client.get(f"/partner/{wrong}/feeds/rss.xml")):
        assert response.status_code == 401 and "not known" in response.get_json()["message"]


# ---- usage -------------------------------------------------------------------------------------------

def test_usage_counts_requests_304s_and_bytes_per_feed_and_day(app, client, runner, engine, articles, key):
    first = client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key})
    second = client.get(f"/partner/{key}/feeds/rss.xml")
    client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key, "If-None-Match": first.headers["ETag"]})
    atom = client.get("/partner/feeds/section/national/atom.xml", headers={"Authorization": f"Bearer {key}"})
    client.head("/partner/feeds/section/national/atom.xml", headers={"Authorization": f"Bearer {key}"})
    client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": "fsk_" + "B" * 43})  # not this partner's
    with engine.connect() as conn:
        assert partners.usage(conn) == []   # counted in memory: no write per request
    desk_counters.counters(app).flush()
    with engine.connect() as conn:
        rows = {(u.partner, u.feed): (u.requests, u.not_modified, u.bytes) for u in partners.usage(conn)}
    assert rows == {("Acme News", "/feeds/rss.xml"): (3, 1, len(first.data) + len(second.data)),
                    ("Acme News", "/feeds/section/national/atom.xml"): (2, 0, len(atom.data))}
    output = runner.invoke(args=["partners", "usage", "--days", "1"]).output
    line = next(line for line in output.splitlines() if "/feeds/rss.xml" in line)
    assert line.split()[-3:] == [str(len(first.data) + len(second.data)), "3", "1"] and key not in output
    assert "5" in runner.invoke(args=["partners", "list"]).output.splitlines()[1].split()


def test_usage_days_are_the_publications_days(engine, key):
    from datetime import datetime, timezone
    # 20:00 UTC on 1 August is already 2 August in India.
    assert str(partners.usage_day(datetime(2025, 8, 1, 20, 0, tzinfo=timezone.utc), "Asia/Kolkata")) == "2025-08-02"


def test_usage_counts_add_up_across_workers(app, make_app, engine, key):
    from datetime import date
    with engine.connect() as conn:
        partner = partners.by_key(conn, key)
    other = make_app(FEED_FULL_TEXT=False, FEED_MAX_LIMIT=2)   # another worker on the same database
    for worker, status, sent in ((app, 200, 1000), (other, 304, 0), (other, 304, 0), (app, 200, 500)):
        desk_counters.counters(worker).count_partner(partner.id, "/feeds/rss.xml", status, sent)
        desk_counters.counters(worker).flush()
    with engine.connect() as conn:
        (row,) = partners.usage(conn)
    assert (row.requests, row.not_modified, row.bytes) == (4, 2, 1500) and row.day <= date.today() + timedelta(days=1)


# ---- keys never reach a log ----------------------------------------------------------------------------

def test_redact_finds_keys_in_paths_and_text(key):
    assert partners.redact(f"GET /partner/{key}/feeds/rss.xml HTTP/1.1") == \
        "GET /partner/[redacted]/feeds/rss.xml HTTP/1.1"
    assert partners.redact("GET /partner/typo-key/feeds/rss.xml") == "GET /partner/[redacted]/feeds/rss.xml"
    assert partners.redact(f"token={key}&x=1") == "token=[redacted]&x=1"
    assert partners.redact("GET /partner/feeds/rss.xml") == "GET /partner/feeds/rss.xml"


def test_development_server_log_never_shows_a_path_key(app, articles, key, caplog):
    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server, caplog.at_level(logging.DEBUG):
        url = f"http://127.0.0.1:{server.server_port}/partner/{key}/feeds/rss.xml"
        with urllib.request.urlopen(url) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/partner/{key}x/feeds/rss.xml")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/partner/[redacted]/feeds/rss.xml" in logged
    assert key not in logged and key not in caplog.text


def test_app_logger_and_exceptions_are_redacted(app, key, caplog):
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError(f"failed on /partner/{key}/feeds/rss.xml")
        except ValueError:
            app.logger.exception("Exception on %s [GET]", f"/partner/{key}/feeds/rss.xml")
        app.logger.error("cache key %r", ("partner-feed", f"{SITE_URL}/partner/{key}/feeds/rss.xml"))
    assert key not in caplog.text and "[redacted]" in caplog.text


def test_gunicorn_access_log_never_shows_a_path_key(make_app, tmp_path):
    setup = make_app()
    database = setup.config["DATABASE_URL"]
    key = add_partner(setup.test_cli_runner())
    make_app.close()
    access_log = tmp_path / "access.log"
    server = Gunicorn(database, workers=1, log_path=tmp_path / "gunicorn.log",
                      env={"GUNICORN_CMD_ARGS": f"--access-logfile {access_log}"})
    with server:
        status, _, _ = server.request("GET", f"/partner/{key}/feeds/rss.xml")
        assert status == 200
    logged = access_log.read_text() + (tmp_path / "gunicorn.log").read_text()
    assert "/partner/[redacted]/feeds/rss.xml" in logged and key not in logged
