"""Rate limits on feeds and oEmbed: per address and per partner key, 304s cheap, 429 + Retry-After, Redis storage.

Every behaviour runs against the in-memory storage and against the machine's Redis (FEEDSVC_TEST_REDIS_URL,
set by .ci/run), each test under its own key prefix, removed afterwards.
"""
import os
import subprocess
import sys
import uuid

import pytest

from feedsvc.web import ratelimit

REDIS_URL = os.environ.get("FEEDSVC_TEST_REDIS_URL")
OEMBED = "/oembed?url=http://news.example/articles/monsoon-session-begins"
LIMITS = {"RATELIMIT_PUBLIC": "3/hour", "RATELIMIT_PARTNER": "5/hour", "RATELIMIT_CONDITIONAL_FACTOR": 2}


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
    app = limited_app(make_app, storage)
    yield app


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


@pytest.mark.parametrize("path", [OEMBED, "/feeds/rss.xml"])
def test_public_budget_then_429_with_retry_after(client, record, path):
    assert statuses(client, path, 3) == [200, 200, 200]
    assert_too_many(client.get(path))


def test_304s_do_not_use_the_budget_but_the_ceiling_holds(client, record):
    first = client.get("/feeds/rss.xml")
    conditional = {"If-None-Match": first.headers["ETag"]}
    # Four 304s: more than the whole budget of 3, and the budget is untouched.
    assert statuses(client, "/feeds/rss.xml", 4, headers=conditional) == [304] * 4
    assert client.get("/feeds/rss.xml").status_code == 200
    # Six requests so far: the ceiling (3 x 2) is reached, so even a conditional request waits now.
    assert_too_many(client.get("/feeds/rss.xml", headers=conditional))


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
    assert statuses(client, "/feeds/rss.xml", 4)[-1] == 429  # the address is spent
    headers = {"X-Partner-Key": key}
    assert statuses(client, "/partner/feeds/rss.xml", 5, headers=headers) == [200] * 5
    response = client.get(f"/partner/{key}/feeds/rss.xml")  # the same partner, key in the path
    assert_too_many(response)
    assert "partner key" in response.get_json()["message"]


def test_public_and_partner_feeds_share_one_budget_per_partner(client, record, key):
    assert statuses(client, "/feeds/atom.xml", 3, headers={"X-Partner-Key": key}) == [200] * 3
    assert statuses(client, "/partner/feeds/rss.xml", 3, headers={"X-Partner-Key": key}) == [200, 200, 429]


def test_revoked_key_is_counted_by_address(client, runner, record, key):
    runner.invoke(args=["partners", "revoke", "Acme News"])
    assert statuses(client, "/partner/feeds/rss.xml", 4, headers={"X-Partner-Key": key}) == [403, 403, 403, 429]


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
    assert set(statuses(client, "/feeds/rss.xml", 5)) == {200}


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
    assert statuses(client, "/feeds/rss.xml", 4) == [200, 200, 200, 429]


def test_a_store_outage_during_the_key_lookup_counts_by_address(client, record, key, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from feedsvc.ops import partners

    def store_down(*_args):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(partners, "by_key", store_down)
    assert statuses(client, OEMBED, 4, headers={"X-Partner-Key": key}) == [200, 200, 200, 429]


@pytest.mark.parametrize("path", ["/?after=20250801T091500000000~{n}",
                                  "/section/national?after=20250801T091500000000~{n}", "/tag/parliament",
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


def test_suspended_turns_the_limits_off_and_back_as_they_were(make_app, storage):
    app = limited_app(make_app, storage, RATELIMIT_PUBLIC="1/hour")
    client = app.test_client()
    with ratelimit.suspended(app):
        assert not ratelimit.limiter(app).enabled
        assert statuses(client, "/feeds/rss.xml", 3) == [200, 200, 200]
    assert ratelimit.limiter(app).enabled
    assert statuses(client, "/feeds/rss.xml", 2) == [200, 429]
    off = limited_app(make_app, storage, RATELIMIT_ENABLED=False)
    with ratelimit.suspended(off):
        pass
    assert not ratelimit.limiter(off).enabled   # left off, as it was
