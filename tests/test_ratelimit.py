"""Rate limits: renders and oEmbed limited per address and per partner key, cached copies and 304s bounded only
by a far higher ceiling, failed API authentication limited, 429 + Retry-After, counters shared through Redis.

Every behaviour runs against the in-memory storage and against the machine's Redis (FEEDSVC_TEST_REDIS_URL,
set by .ci/run), each test under its own key prefix, removed afterwards.
"""
import os
import runpy
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest

from feedsvc import config, create_app
from feedsvc.web import ratelimit, ratelimit_lease
from tests.support.apps import ROOT
from tests.support.records import put_record

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

REDIS_URL = os.environ.get("FEEDSVC_TEST_REDIS_URL")
OEMBED = "/oembed?url=http://news.example/articles/monsoon-session-begins"
LIMITS = {"RATELIMIT_PUBLIC": "3/hour", "RATELIMIT_PARTNER": "5/hour", "RATELIMIT_CEILING_FACTOR": 2}


def redis_client():
    import redis
    return redis.Redis.from_url(REDIS_URL)


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """(RATELIMIT_STORAGE, key prefix) of this test; Redis keys under the prefix are deleted afterwards."""
    prefix = f"feedsvc-test-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield "memory://", prefix
        return
    if not REDIS_URL:
        pytest.skip("FEEDSVC_TEST_REDIS_URL is not set (.ci/run sets it)")
    yield REDIS_URL, prefix
    client = redis_client()
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)


def limited_app(make_app, storage, **overrides):
    uri, prefix = storage
    return make_app(RATELIMIT_STORAGE=uri, RATELIMIT_KEY_PREFIX=prefix, **{**LIMITS, **overrides})


@pytest.fixture
def app(database_url, storage, make_app):
    return limited_app(make_app, storage)


@pytest.fixture
def key(runner):
    result = runner.invoke(args=["partners", "add", "Acme News"])
    assert result.exit_code == 0
    return result.stdout.strip()


def statuses(client, path, times, **kwargs):
    return [client.get(path, **kwargs).status_code for _ in range(times)]


def assert_too_many(response):
    assert response.status_code == 429
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 3600
    body = response.get_json()
    assert body["retry_after"] == retry and body["limit"] and "retry after" in body["message"]
    assert response.headers["Cache-Control"] == "no-store"


def renders(path: str, count: int, start: int = 1) -> list[str]:
    """`count` different documents of one feed (each `limit` is a document of its own): each one a render."""
    return [f"{path}?limit={n}" for n in range(start, start + count)]


def fetch_each(client, paths, **kwargs) -> list[int]:
    return [client.get(path, **kwargs).status_code for path in paths]


def test_oembed_budget_then_429_with_retry_after(client, record):
    assert statuses(client, OEMBED, 3) == [200, 200, 200]
    assert_too_many(client.get(OEMBED))


def test_renders_spend_the_budget_then_429_with_retry_after(client, record):
    assert fetch_each(client, renders("/feeds/rss.xml", 3)) == [200, 200, 200]
    response = client.get("/feeds/rss.xml?limit=4")
    assert_too_many(response)
    assert "renders" in response.get_json()["message"]


def test_cached_copies_and_304s_spend_no_budget_and_are_answered_after_it_is_spent(client, record):
    first = client.get("/feeds/rss.xml")
    conditional = {"If-None-Match": first.headers["ETag"]}
    # The budget (3) is spent on renders of other documents ...
    assert fetch_each(client, renders("/feeds/atom.xml", 2)) == [200, 200]
    assert client.get("/feeds/atom.xml?limit=3").status_code == 429
    # ... and what was rendered already is still answered: a 304, and the cached copy itself.
    assert client.get("/feeds/rss.xml", headers=conditional).status_code == 304
    assert client.get("/feeds/rss.xml").status_code == 200


def test_a_flood_of_cheap_requests_is_stopped_by_the_ceiling(client, record):
    tag = client.get("/feeds/rss.xml").headers["ETag"]            # 1 render, 1 request
    assert statuses(client, "/feeds/rss.xml", 2) == [200, 200]     # cached copies
    assert statuses(client, "/feeds/rss.xml", 3, headers={"If-None-Match": tag}) == [304] * 3
    # Six requests: the ceiling (3 x 2) is reached, cheap or not.
    assert_too_many(client.get("/feeds/rss.xml", headers={"If-None-Match": tag}))
    assert_too_many(client.get("/feeds/rss.xml"))


def test_a_flood_of_different_documents_is_stopped_by_the_budget(client, record):
    assert fetch_each(client, renders("/feeds/feed.json", 5)) == [200, 200, 200, 429, 429]


def test_a_render_over_the_shorter_window_takes_nothing_from_the_longer(database_url, storage, record, make_app):
    app = limited_app(make_app, storage, RATELIMIT_PUBLIC="2/minute;10/hour")
    client = app.test_client()
    assert fetch_each(client, renders("/feeds/rss.xml", 5)) == [200, 200, 429, 429, 429]
    minute, hour = ratelimit.limit_items(app.config["RATELIMIT_PUBLIC"])
    with app.test_request_context("/feeds/rss.xml"):
        args = ratelimit._args(ratelimit.address_key("127.0.0.1"), "feeds")
        strategy = ratelimit.limiter().limiter
        assert strategy.get_window_stats(hour, *args).remaining == 8   # the two renders only
        assert strategy.get_window_stats(minute, *args).remaining == 0


def test_addresses_have_separate_budgets(client, record):
    one, other = {"REMOTE_ADDR": "192.0.2.1"}, {"REMOTE_ADDR": "192.0.2.2"}
    assert statuses(client, OEMBED, 4, environ_base=one)[-1] == 429
    assert statuses(client, OEMBED, 3, environ_base=other) == [200, 200, 200]


def test_behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_address(database_url, storage, record, make_app):
    app = limited_app(make_app, storage, TRUSTED_PROXY_HOPS=1)
    client = app.test_client()
    one, other = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    assert statuses(client, OEMBED, 4, headers=one)[-1] == 429
    assert client.get(OEMBED, headers=other).status_code == 200


def test_forwarded_address_is_ignored_unless_a_proxy_is_trusted(client, record):
    for n in range(3):
        assert client.get(OEMBED, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 200
    assert client.get(OEMBED, headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429


def test_partner_key_has_its_own_larger_budget(client, record, key):
    assert fetch_each(client, renders("/feeds/rss.xml", 4))[-1] == 429  # the address is spent
    headers = {"X-Partner-Key": key}
    assert fetch_each(client, renders("/partner/feeds/rss.xml", 5), headers=headers) == [200] * 5
    response = client.get(f"/partner/{key}/feeds/rss.xml?limit=6")  # the same partner, key in the path
    assert_too_many(response)
    assert "partner key" in response.get_json()["message"]


def test_limit_texts_are_parsed_once_per_setting_not_on_every_request(client, record, key, monkeypatch):
    """Polling costs no limit parsing: Flask-Limiter's limit objects are built once per limit text (the
    public and the partner budget and ceiling), then reused, with the same answers as before."""
    import flask_limiter._limits as library_limits
    parsed: list[str] = []
    real_parse = library_limits.parse_many
    monkeypatch.setattr(library_limits, "parse_many", lambda text: parsed.append(text) or real_parse(text))
    tag = client.get("/feeds/rss.xml").headers["ETag"]
    assert statuses(client, "/feeds/rss.xml", 4, headers={"If-None-Match": tag}) == [304] * 4
    partner_tag = client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key}).headers["ETag"]
    partner = {"X-Partner-Key": key, "If-None-Match": partner_tag}
    assert statuses(client, "/partner/feeds/rss.xml", 4, headers=partner) == [304] * 4
    assert sorted(set(parsed)) == sorted(parsed)   # each text once, however many requests
    assert set(parsed) <= {"3/hour", "5/hour", ratelimit.scaled("3/hour", 2), ratelimit.scaled("5/hour", 2)}
    # The ceiling (6) still counts every request of the address: 1 + 4 above, 1 more, then 429.
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": tag}).status_code == 304
    assert_too_many(client.get("/feeds/rss.xml", headers={"If-None-Match": tag}))


def test_public_and_partner_feeds_share_one_budget_per_partner(client, record, key):
    headers = {"X-Partner-Key": key}
    assert fetch_each(client, renders("/feeds/atom.xml", 3), headers=headers) == [200] * 3
    assert fetch_each(client, renders("/partner/feeds/rss.xml", 3), headers=headers) == [200, 200, 429]


def test_revoked_key_is_counted_by_address(client, runner, record, key):
    runner.invoke(args=["partners", "revoke", "Acme News"])
    # A refusal renders nothing: only the address's ceiling (6) counts it.
    assert statuses(client, "/partner/feeds/rss.xml", 7, headers={"X-Partner-Key": key}) == [403] * 6 + [429]


def test_feeds_and_oembed_are_separate_buckets(client, record):
    assert statuses(client, OEMBED, 4)[-1] == 429
    assert client.get("/feeds/rss.xml").status_code == 200


def test_embed_pages_are_not_limited(client, record):
    assert set(statuses(client, "/embed/monsoon-session-begins", 10)) == {200}


def test_ordinary_responses_carry_no_per_client_headers(client, record):
    response = client.get("/feeds/rss.xml")
    assert not [h for h in response.headers.keys() if h.lower().startswith(("x-ratelimit", "retry-after"))]


def test_limits_can_be_switched_off(database_url, storage, make_app):
    app = limited_app(make_app, storage, RATELIMIT_ENABLED=False)
    client = app.test_client()
    assert set(fetch_each(client, renders("/feeds/rss.xml", 8))) == {200}


def test_scaled_limits():
    assert ratelimit.scaled("120/minute", 10) == "1200 per 1 minute"
    assert ratelimit.scaled("10/second;100 per 2 hours", 3) == "30 per 1 second;300 per 2 hour"


# ---- Redis: shared between workers, and survivable when it is gone ------------------------------------

@pytest.fixture
def redis_storage(storage):
    if not storage[0].startswith("redis"):
        pytest.skip("Redis only")
    return storage


def test_workers_share_counters_through_redis(database_url, redis_storage, app, client, record, make_app):
    other_worker = limited_app(make_app, redis_storage)
    other = other_worker.test_client()
    assert statuses(client, OEMBED, 2) == [200, 200]
    assert other.get(OEMBED).status_code == 200
    assert_too_many(other.get(OEMBED))
    assert_too_many(client.get(OEMBED))
    assert any(redis_client().scan_iter(match=f"*{redis_storage[1]}*"))


def test_unreachable_redis_falls_back_to_memory(database_url, make_app):
    app = limited_app(make_app, ("redis://127.0.0.1:1/0", "feedsvc-test-unreachable"))
    client = app.test_client()
    assert fetch_each(client, renders("/feeds/rss.xml", 4)) == [200, 200, 200, 429]


def test_a_store_outage_during_the_key_lookup_counts_by_address(client, record, key, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from feedsvc.ops import partners

    def store_down(*_args):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(partners, "by_key", store_down)
    assert statuses(client, OEMBED, 4, headers={"X-Partner-Key": key}) == [200, 200, 200, 429]


@pytest.mark.parametrize("path", ["/?after=20250801T091500000000~{n}",
                                  "/section/national?after=20250801T091500000000~{n}",
                                  "/tag/parliament?after=20250801T091500000000~{n}",
                                  "/author/test-reporter?after=20250701T091500000000~{n}",
                                  "/embed/latest?limit={n}"])
def test_listing_pages_and_the_headline_widget_are_limited(client, record, path):
    """Every new cursor (or widget size) is a render: an address cannot make the app render without end."""
    assert statuses(client, path.format(n=1), 1) == [200]
    for n in range(2, 4):
        assert client.get(path.format(n=n)).status_code == 200
    assert_too_many(client.get(path.format(n=4)))
    assert client.get("/feeds/rss.xml").status_code == 200   # a bucket of their own


def test_the_limits_depend_on_no_blueprint():
    """ratelimit.py finds the partner through web/partner_key.py, not by importing the partner feeds' blueprint."""
    script = "import sys, feedsvc.web.ratelimit; print(sorted(m for m in sys.modules if m.startswith('feedsvc.web.')))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "feedsvc.web.partner_key" in loaded and "feedsvc.web.partner_feeds" not in loaded


def test_suspended_turns_the_limits_off_and_back_as_they_were(database_url, storage, make_app):
    app = limited_app(make_app, storage, RATELIMIT_PUBLIC="1/hour")
    client = app.test_client()
    with ratelimit.suspended(app):
        assert not ratelimit.limiter(app).enabled
        assert fetch_each(client, renders("/feeds/rss.xml", 3)) == [200, 200, 200]
    assert ratelimit.limiter(app).enabled
    assert fetch_each(client, renders("/feeds/rss.xml", 2, start=4)) == [200, 429]
    off = limited_app(make_app, storage, RATELIMIT_ENABLED=False)
    with ratelimit.suspended(off):
        pass
    assert not ratelimit.limiter(off).enabled   # left off, as it was


# ---- a real feed reader, and the fast path ------------------------------------------------------

READER_FEEDS = 300
FORMATS = ("rss.xml", "atom.xml", "feed.json")


def reader_feed_urls(client, api_headers, make_record) -> list[str]:
    """READER_FEEDS feed URLs of scopes that exist: the site, a section, 96 tags and 4 authors, three formats each."""
    scopes = ["", "section/national/"]
    for n in range(4):
        tags = [{"key": f"vishay-{n}-{t}", "name": f"विषय {n}-{t}"} for t in range(24)]
        author = {"key": f"samvaddata-{n}", "name": f"संवाददाता {n}"}
        put_record(client, api_headers, make_record(id=f"reader-{n}", slug=f"reader-article-{n}",
                                                                tags=tags, authors=[author]))
        scopes += [f"tag/{tag['key']}/" for tag in tags] + [f"author/{author['key']}/"]
    urls = [f"/feeds/{scope}{fmt}" for scope in scopes for fmt in FORMATS]
    assert len(urls) >= READER_FEEDS
    return urls[:READER_FEEDS]


@pytest.mark.slow
def test_a_reader_fetching_300_feeds_in_a_minute_and_polling_them_again_is_never_refused(
        database_url, storage, api_headers, make_record, make_app):
    """The default limits, the production fast path: 300 first fetches (300 renders), each polled
    conditionally (304), fetched again (cached copies, then replays) and polled again."""
    uri, prefix = storage
    app = make_app(RATELIMIT_STORAGE=uri, RATELIMIT_KEY_PREFIX=prefix, FAST_PATH=True)
    client = app.test_client()
    urls = reader_feed_urls(client, api_headers, make_record)
    first = [client.get(url) for url in urls]
    assert [r.status_code for r in first] == [200] * READER_FEEDS
    polls = [{"If-None-Match": r.headers["ETag"]} for r in first]
    for expected, with_headers in ((304, True), (200, False), (304, True)):
        answers = [client.get(url, headers=headers if with_headers else {}).status_code
                   for url, headers in zip(urls, polls, strict=True)]
        assert answers == [expected] * READER_FEEDS
    # Cheap answers are still bounded, by a ceiling ten times a reader's minute: every feed fetched and polled.
    ceiling = ratelimit.limit_items(ratelimit.ceiling_text(app.config, partner=False))[0]
    assert ceiling.GRANULARITY.name == "minute" and 10 * 2 * READER_FEEDS <= ceiling.amount


# Each step: (path, conditional), where a conditional request sends the ETag of the site's RSS feed.
AGREEMENT_STEPS = [
    ("/feeds/rss.xml", False),                                                # render 1
    ("/feeds/rss.xml", False), ("/feeds/rss.xml", False),                     # cached copies
    ("/feeds/rss.xml", True), ("/feeds/rss.xml", True),                       # 304s
    ("/feeds/atom.xml", False), ("/feeds/feed.json", False),                  # renders 2 and 3
    ("/feeds/section/national/rss.xml", False),                               # a 4th render: over the budget
    ("/feeds/rss.xml", True),                                                 # 304 all the same: 9 requests
    ("/feeds/rss.xml", True), ("/feeds/rss.xml", False),                      # over the ceiling (9)
]
AGREEMENT_EXPECTED = [200, 200, 200, 304, 304, 200, 200, 429, 304, 429, 429]


def test_the_fast_path_refuses_and_admits_exactly_as_the_app(database_url, storage, record, make_app):
    uri, prefix = storage
    results = {}
    for fast_path in (False, True):
        app = make_app(FAST_PATH=fast_path, RATELIMIT_STORAGE=uri, RATELIMIT_PUBLIC="3/hour",
                        RATELIMIT_CEILING_FACTOR=3, RATELIMIT_KEY_PREFIX=f"{prefix}-{fast_path}")
        client = app.test_client()
        tag = make_app(RATELIMIT_ENABLED=False).test_client().get("/feeds/rss.xml").headers["ETag"]
        results[fast_path] = [client.get(path, headers={"If-None-Match": tag} if conditional else {}).status_code
                              for path, conditional in AGREEMENT_STEPS]
    assert results[False] == results[True] == AGREEMENT_EXPECTED


# ---- failed API authentication --------------------------------------------------------------------

def test_failed_api_authentication_is_limited_per_address(database_url, storage, api_headers, make_app):
    app = limited_app(make_app, storage, RATELIMIT_AUTH_FAILURES="3/hour")
    client = app.test_client()
    one, other = {"REMOTE_ADDR": "192.0.2.10"}, {"REMOTE_ADDR": "192.0.2.11"}
    wrong = {"Authorization": "Bearer " + "wrong-token-" * 4}
    assert statuses(client, "/api/articles/x", 2, environ_base=one) == [401, 401]   # no token: no guess
    assert statuses(client, "/api/articles/x", 3, headers=wrong, environ_base=one) == [403] * 3
    response = client.get("/api/articles/x", headers=wrong, environ_base=one)
    assert_too_many(response)
    assert "authentication" in response.get_json()["message"]
    # From that address even the right token waits, so guessing gains nothing; elsewhere it works.
    assert_too_many(client.get("/api/articles/x", headers=api_headers, environ_base=one))
    assert statuses(client, "/api/articles/x", 5, headers=api_headers, environ_base=other) == [404] * 5


# ---- settings refused at start-up --------------------------------------------------------------------

@pytest.mark.parametrize("setting", ["API_TOKENS", "METRICS_TOKENS"])
def test_tokens_shorter_than_32_characters_are_refused_at_start_up(database_url, setting, monkeypatch, make_app):
    for short in ("x" * 31, "क" * 31):
        with pytest.raises(config.ConfigError, match=f"FEEDSVC_{setting}: a token of 31 characters .* at least 32"):
            make_app(**{setting: [short]})
    monkeypatch.setenv(f"FEEDSVC_{setting}", "short-one," + "y" * 40)
    with pytest.raises(config.ConfigError, match=f"FEEDSVC_{setting}"):
        create_app({"DATABASE_URL": database_url})
    monkeypatch.delenv(f"FEEDSVC_{setting}")
    # 32 characters, and a digest (whose token cannot be measured), are accepted.
    accepted = make_app(**{setting: ["क" * 32, "sha256:" + config.token_digest("short")]})
    assert len(accepted.config[f"{setting[:-1]}_DIGESTS"]) == 2


def test_per_process_counters_are_refused_when_several_processes_serve(database_url, make_app):
    with pytest.raises(config.ConfigError, match="FEEDSVC_RATELIMIT_STORAGE is 'memory://' while 3 processes serve"):
        make_app(SERVER_PROCESSES=3)
    for accepted in ({"SERVER_PROCESSES": 1}, {"SERVER_PROCESSES": 3, "RATELIMIT_ENABLED": False},
                     {"SERVER_PROCESSES": 3, "RATELIMIT_STORAGE": "redis://127.0.0.1:6379/15"}):
        make_app(**accepted)


def test_unreadable_limits_are_refused_at_start_up(database_url, make_app):
    with pytest.raises(config.ConfigError, match="FEEDSVC_RATELIMIT_AUTH_FAILURES"):
        make_app(RATELIMIT_AUTH_FAILURES="ten a minute")


def test_gunicorn_settings_give_several_workers_shared_counters(monkeypatch, tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    monkeypatch.setattr(os, "environ", env)
    settings = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    settings["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=1)))
    assert env["FEEDSVC_SERVER_PROCESSES"] == "1" and "FEEDSVC_RATELIMIT_STORAGE" not in env
    settings["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=3)))
    assert env["FEEDSVC_SERVER_PROCESSES"] == "3"
    assert env["FEEDSVC_RATELIMIT_STORAGE"] == settings["SHARED_RATELIMIT_STORAGE"]
    env["FEEDSVC_RATELIMIT_STORAGE"] = "redis://elsewhere:6379/2"
    settings["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=3)))
    assert env["FEEDSVC_RATELIMIT_STORAGE"] == "redis://elsewhere:6379/2"   # what the operator set stays


@pytest.mark.slow
def test_gunicorn_with_several_workers_and_per_process_counters_does_not_start(tmp_path):
    env = {**os.environ, "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'feedsvc.db'}", "FEEDSVC_WORKERS": "2",
           "FEEDSVC_RATELIMIT_STORAGE": "memory://", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind",
                             "127.0.0.1:0", "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "FEEDSVC_RATELIMIT_STORAGE is 'memory://' while 2 processes serve" in result.stderr


# ---- Redis counters taken in leases by a busy process (ratelimit_lease) ------------------------------

@pytest.fixture
def leased(redis_storage):
    """make() -> (strategy, storage): a new process's view of the test's Redis counters."""
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    def make():
        storage = storage_from_string("feedsvc-" + redis_storage[0], **ratelimit.REDIS_OPTIONS)
        return FixedWindowRateLimiter(storage), storage

    return make


def redis_count(item, who: str) -> int:
    return int(redis_client().get(f"LIMITS:{item.key_for(who)}") or 0)


def sent_to_redis(storage, monkeypatch) -> list:
    """The INCRBY amounts `storage` sends to Redis from now on."""
    from limits.storage import RedisStorage
    sent: list = []
    original = RedisStorage.incr

    def spy(self, key, expiry, amount=1):
        if self is storage:
            sent.append(amount)
        return original(self, key, expiry, amount)
    monkeypatch.setattr(RedisStorage, "incr", spy)
    return sent


def test_a_busy_client_is_counted_in_a_few_round_trips_and_every_process_adds_up(leased, redis_storage, monkeypatch):
    from limits import parse
    item, who = parse("100000/minute"), f"{redis_storage[1]}-busy"
    (first, first_storage), (second, _) = leased(), leased()
    sent = sent_to_redis(first_storage, monkeypatch)
    for _ in range(300):
        assert first.hit(item, who) and second.hit(item, who)
    assert len(sent) < 20 and sum(sent) >= 300   # 1, 2, 4, ... 64: leases, not 300 round trips
    counted = redis_count(item, who)
    assert 600 <= counted <= 600 + 2 * ratelimit_lease.MAX_LEASE   # at most one unused lease per process


def test_a_leased_limit_refuses_at_exactly_the_same_hit(leased, redis_storage):
    from limits import parse
    item, who = parse("1000/minute"), f"{redis_storage[1]}-exact"
    strategy, _ = leased()
    answers = [strategy.hit(item, who) for _ in range(1005)]
    assert answers == [True] * 1000 + [False] * 5


def test_small_limits_are_counted_one_by_one_across_processes(leased, redis_storage, monkeypatch):
    from limits import parse
    item, who = parse("10/minute"), f"{redis_storage[1]}-small"
    (first, first_storage), (second, _) = leased(), leased()
    sent = sent_to_redis(first_storage, monkeypatch)
    assert [first.hit(item, who) for _ in range(6)] + [second.hit(item, who) for _ in range(4)] == [True] * 10
    assert not first.hit(item, who) and not second.hit(item, who)
    assert sent == [1] * 7 and redis_count(item, who) == 12


def test_an_idle_lease_ends_and_its_rest_stays_counted(leased, redis_storage, monkeypatch):
    from limits import parse
    item, who = parse("100000/minute"), f"{redis_storage[1]}-idle"
    strategy, storage = leased()
    for _ in range(10):
        strategy.hit(item, who)
    held = redis_count(item, who)
    assert held >= 10
    later = ratelimit_lease.clock() + ratelimit_lease.LEASE_SECONDS
    monkeypatch.setattr(ratelimit_lease, "clock", lambda: later)   # every lease held so far has run out
    sent = sent_to_redis(storage, monkeypatch)
    strategy.hit(item, who)
    assert sent == [1] and redis_count(item, who) == held + 1
