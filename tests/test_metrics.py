"""/metrics (Prometheus text format) and the JSON access log line (feedsvc/ops/metrics.py, feedsvc/web/metrics.py)."""
from __future__ import annotations

import json
import logging

import pytest

from feedsvc import config
from feedsvc.config import token_digest
from feedsvc.publish import mirror as export
from tests.support.metrics import scrape, value
from tests.support.records import write

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first


def test_requests_are_counted_by_route_class_and_status(client, app, make_record):
    write(app, make_record())
    before = scrape(client)
    first = client.get("/feeds/rss.xml")
    client.get("/feeds/rss.xml")
    client.get("/feeds/rss.xml", headers={"If-None-Match": first.headers["ETag"]})
    client.get("/feeds/section/no-such-section/rss.xml")
    client.get("/feeds.opml")
    after = scrape(client)

    def grew(**labels):
        return value(after, "feedsvc_http_requests_total", **labels) - value(before, "feedsvc_http_requests_total",
                                                                             **labels)
    assert grew(route="feed", status="200") == 2
    assert grew(route="feed", status="304") == 1
    assert grew(route="feed", status="404") == 1
    assert grew(route="opml", status="200") == 1
    assert value(after, "feedsvc_http_request_duration_seconds_count", route="feed") \
        - value(before, "feedsvc_http_request_duration_seconds_count", route="feed") == 4


def test_render_cache_hits_misses_and_render_time(client, app, make_record):
    write(app, make_record())
    before = scrape(client)
    client.get("/feeds/atom.xml")
    client.get("/feeds/atom.xml")
    client.get("/feeds/atom.xml", headers={"Accept-Encoding": "gzip"})
    after = scrape(client)
    assert value(after, "feedsvc_render_cache_total", document="feed", result="miss") \
        - value(before, "feedsvc_render_cache_total", document="feed", result="miss") == 1
    assert value(after, "feedsvc_render_cache_total", document="feed", result="hit") \
        - value(before, "feedsvc_render_cache_total", document="feed", result="hit") == 2
    renders = value(after, "feedsvc_render_seconds_count", document="feed") \
        - value(before, "feedsvc_render_seconds_count", document="feed")
    assert renders == 1
    assert value(after, "feedsvc_render_seconds_sum", document="feed") \
        > value(before, "feedsvc_render_seconds_sum", document="feed")


def test_not_modified_share_is_published(client, app, make_record):
    write(app, make_record())
    tag = client.get("/feeds/feed.json").headers["ETag"]
    for _ in range(5):
        assert client.get("/feeds/feed.json", headers={"If-None-Match": tag}).status_code == 304
    ratio = value(scrape(client), "feedsvc_feed_not_modified_ratio")
    assert 0 < ratio <= 1


@pytest.mark.slow  # a full mirror sync (about 1,300 files): 20-40 s
@pytest.mark.sqlite_only  # counters and the mirror's clock, not SQL
def test_mirror_lag_appears_when_a_mirror_is_configured(app, make_record, tmp_path):
    write(app, make_record())
    app.config["MIRROR_DIR"] = str(tmp_path)
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
    finally:
        mirror.close()
    values = scrape(app.test_client())
    assert value(values, "feedsvc_mirror_lag_seconds") == 0.0
    write(app, make_record(id="later-article", slug="later-article"))
    assert value(scrape(app.test_client()), "feedsvc_mirror_lag_seconds") >= 0.0
    assert ("feedsvc_mirror_lag_seconds", ()) in scrape(app.test_client())


@pytest.fixture
def access_log(caplog):
    """The records of the access logger (which does not propagate to the root logger caplog watches)."""
    logger = logging.getLogger("feedsvc.access")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_one_json_log_line_per_request(client, app, make_record, access_log):
    write(app, make_record())
    client.get("/feeds/rss.xml?limit=3", headers={"Accept-Encoding": "gzip"})
    lines = [json.loads(r.getMessage()) for r in access_log.records if r.name == "feedsvc.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["path"] == "/feeds/rss.xml?limit=3"
    assert line["route"] == "feed" and line["status"] == 200 and line["encoding"] == "gzip"
    assert line["bytes"] > 0 and line["ms"] >= 0 and line["conditional"] is False
    assert isinstance(line["pid"], int)


def test_health_checks_are_their_own_route_class(client, app, access_log):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    line, = [json.loads(r.getMessage()) for r in access_log.records if r.name == "feedsvc.access"]
    assert line["route"] == "health"
    assert {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == "/healthz"} == {"health.healthz"}


@pytest.mark.parametrize("path", [
    "/partner/fsk_{key}/feeds/rss.xml",
    "/partner/fsk_{key}/feeds/section/sports/atom.xml?limit=5",
])
def test_partner_keys_never_reach_the_log(client, access_log, path):
    key = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    client.get(path.format(key=key), headers={"Authorization": "Bearer secret-token-value"})
    text = "\n".join(r.getMessage() for r in access_log.records if r.name == "feedsvc.access")
    assert text and key not in text and "secret-token-value" not in text
    assert "/partner/[redacted]/feeds/" in text


@pytest.mark.slow  # a full mirror sync (about 1,300 files): 20-40 s
@pytest.mark.sqlite_only  # counters, not SQL
def test_the_exporters_requests_are_not_traffic(app, make_record, tmp_path):
    write(app, make_record())
    client = app.test_client()
    before = value(scrape(client), "feedsvc_http_requests_total", route="feed", status="200")
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
    finally:
        mirror.close()
    assert value(scrape(client), "feedsvc_http_requests_total", route="feed", status="200") == before


# ---- who may read /metrics -----------------------------------------------------------------------

METRICS_TOKEN = "metrics-token-दो-0123456789abcdef0123"


def metrics_from(client, address: str, **headers):
    return client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_tokens_metrics_answers_a_loopback_client(client, address):
    response = metrics_from(client, address)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.5", "2001:db8::1", "::ffff:203.0.113.9"])
def test_without_tokens_metrics_refuses_every_other_client(client, address):
    response = metrics_from(client, address)
    assert response.status_code == 403 and b"FEEDSVC_METRICS_TOKENS" in response.data
    assert b"feedsvc_" not in response.data


def test_behind_a_trusted_proxy_the_forwarded_client_decides(database_url, make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1)
    client = app.test_client()
    assert metrics_from(client, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert metrics_from(client, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize("configured", [METRICS_TOKEN, f"sha256:{token_digest(METRICS_TOKEN)}"])
def test_with_tokens_metrics_needs_one_of_them_from_anywhere(database_url, configured, make_app):
    app = make_app(METRICS_TOKENS=[configured])
    client = app.test_client()
    missing = metrics_from(client, "127.0.0.1")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert metrics_from(client, "127.0.0.1", Authorization="Bearer wrong").status_code == 403
    assert metrics_from(client, "127.0.0.1", Authorization=f"Basic {METRICS_TOKEN}").status_code == 401
    granted = metrics_from(client, "203.0.113.9", Authorization=f"Bearer {METRICS_TOKEN}")
    assert granted.status_code == 200 and b"feedsvc_" in granted.data
    assert app.config["METRICS_TOKENS"] == []  # only digests are kept


def test_metrics_tokens_come_from_the_environment_like_the_api_tokens():
    assert config.from_environ({"FEEDSVC_METRICS_TOKENS": "one, two"})["METRICS_TOKENS"] == ["one", "two"]
    with pytest.raises(config.ConfigError, match="FEEDSVC_METRICS_TOKENS"):
        config.parse_token_digests(["sha256:abc"], "METRICS_TOKENS")
