"""The WSGI fast path (feedsvc/web/middleware/fastpath.py) answers exactly as the app does, and only while that is current."""
from __future__ import annotations

import pytest

from feedsvc.web.middleware.fastpath import feed_scope
from tests.support.apps import fast_path_replays
from tests.support.records import write

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

REQUESTS = [
    ("GET", {}),
    ("GET", {"Accept-Encoding": "gzip"}),
    ("GET", {"Accept-Encoding": "br;q=1, gzip;q=0.5"}),
    ("GET", {"Accept-Encoding": "identity, *;q=0"}),
    ("HEAD", {"Accept-Encoding": "gzip"}),
]
PATHS = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/national/rss.xml",
         "/feeds/tag/parliament/feed.json", "/feeds/profile/smartnews/rss.xml",
         "/feeds/profile/readers/section/national/feed.json", "/feeds/profile/msn/tag/parliament/atom.xml"]


@pytest.fixture
def pair(database_url, make_record, make_app):
    """(fast, plain): the same database behind an app with the fast path and one without."""
    fast = make_app(FAST_PATH=True, RATELIMIT_ENABLED=False)
    plain = make_app(FAST_PATH=False, RATELIMIT_ENABLED=False)
    write(fast, make_record())
    return fast, plain



def answer(client, method, path, headers):
    response = client.open(path, method=method, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def app_dispatches(app) -> list[str]:
    """The paths of the requests the app behind the fast path answers from now on (it records each)."""
    fast = app.wsgi_app if hasattr(app.wsgi_app, "replays") else app.wsgi_app.app
    inner, seen = fast.wsgi_app, []

    def counted(environ, start_response):
        seen.append(environ["PATH_INFO"])
        return inner(environ, start_response)
    fast.wsgi_app = counted
    return seen


def newer(make_record, n: int = 1) -> dict:
    """A record in every scope of PATHS, newer than make_record()'s."""
    return make_record(id=f"newer-{n}", slug=f"newer-{n}", title=f"नई ख़बर अभी-अभी {n}",
                       published=f"2025-08-0{n + 1}T09:00:00+05:30", updated=f"2025-08-0{n + 1}T09:00:00+05:30")



def test_replayed_answers_are_the_apps_byte_for_byte(pair):
    fast, plain = pair
    fast_client, plain_client = fast.test_client(), plain.test_client()
    for path in PATHS:
        for method, headers in REQUESTS:
            expected = answer(plain_client, method, path, headers)
            first = answer(fast_client, method, path, headers)     # the app answers, and it is kept
            again = answer(fast_client, method, path, headers)     # the replay answers
            assert first == expected == again, (path, method, headers)
    # GET identity (asked for twice, two ways), gzip, br and HEAD gzip: four answers kept per URL
    assert fast_path_replays(fast) == len(PATHS) * 4


def test_conditional_requests_get_the_apps_304(pair):
    fast, plain = pair
    fast_client = fast.test_client()
    tag = plain.test_client().get("/feeds/rss.xml", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    modified = plain.test_client().get("/feeds/rss.xml").headers["Last-Modified"]
    for headers in ({"If-None-Match": tag, "Accept-Encoding": "gzip"}, {"If-None-Match": tag},
                    {"If-Modified-Since": modified}, {"If-None-Match": '"other", ' + tag}):
        expected = answer(plain.test_client(), "GET", "/feeds/rss.xml", headers)
        assert expected[0] == 304
        assert answer(fast_client, "GET", "/feeds/rss.xml", headers) == expected
        assert answer(fast_client, "GET", "/feeds/rss.xml", headers) == expected
    stale = {"If-None-Match": '"something-old"'}
    assert answer(fast_client, "GET", "/feeds/rss.xml", stale)[0] == 200


def test_replayed_304_keeps_the_last_modified_of_the_200(pair):
    fast, _ = pair
    client = fast.test_client()
    fresh = client.get("/feeds/rss.xml")
    since = {"If-Modified-Since": fresh.headers["Last-Modified"]}
    for _ in range(2):   # the app's 304, then its replay
        response = client.get("/feeds/rss.xml", headers=since)
        assert response.status_code == 304 and response.headers.get("Last-Modified") == fresh.headers["Last-Modified"]
    assert fast_path_replays(fast) == 2


def test_a_write_ends_the_replay(pair, make_record):
    fast, _ = pair
    client = fast.test_client()
    before = client.get("/feeds/rss.xml")
    assert client.get("/feeds/rss.xml").get_data() == before.get_data()
    write(fast, make_record(id="newer", slug="newer", title="नई ख़बर अभी-अभी",
                            published="2025-08-02T09:00:00+05:30", updated="2025-08-02T09:00:00+05:30"))
    after = client.get("/feeds/rss.xml")
    assert "नई ख़बर अभी-अभी".encode() in after.get_data()
    assert after.headers["ETag"] != before.headers["ETag"]
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": before.headers["ETag"]}).status_code == 200


def test_a_documents_next_state_is_answered_as_the_app_answers_it(pair, make_record):
    """After a write, each URL the app answered before is answered at its new state by the fast path
    (the document built there, the app's headers of the previous state restamped): byte for byte the
    app's answer, 200 and then 304, and the app itself is not asked."""
    fast, plain = pair
    fast_client, plain_client = fast.test_client(), plain.test_client()
    conditional = [(method, {**headers, "If-None-Match": fast_client.open(path, method=method, headers=headers)
                             .headers["ETag"]}, path)
                   for path in PATHS for method, headers in REQUESTS]
    for method, headers, path in conditional:
        assert answer(fast_client, method, path, headers)[0] == 304   # the app's 304, its shape kept too
    before = {(path, method, str(headers)): answer(fast_client, method, path, headers)
              for path in PATHS for method, headers in REQUESTS}
    dispatched = app_dispatches(fast)
    write(fast, newer(make_record))
    for method, headers, path in conditional:   # a poller's next request, with the ETag it holds
        expected = answer(plain_client, method, path, headers)
        assert expected[0] == 200 and expected != before[(path, method, str({k: v for k, v in headers.items()
                                                                             if k != "If-None-Match"}))]
        assert answer(fast_client, method, path, headers) == expected, (path, method, headers)
        new_tag = dict(expected[1])["ETag"]
        polled_again = {**headers, "If-None-Match": new_tag}
        assert answer(fast_client, method, path, polled_again) == answer(plain_client, method, path, polled_again)
    for path in PATHS:
        for method, headers in REQUESTS:
            assert answer(fast_client, method, path, headers) == answer(plain_client, method, path, headers)
    assert dispatched == []


def test_workers_answer_the_next_state_of_urls_another_worker_answered(database_url, make_record, make_app):
    """With several processes serving (two apps on one instance folder), a URL one of them answered is
    answered at its next state by the other without its app's dispatch, as the app answers it."""
    settings = {"FAST_PATH": True, "RATELIMIT_ENABLED": False, "SERVER_PROCESSES": 2}
    first, second = make_app(**settings), make_app(**settings)
    plain = make_app(FAST_PATH=False, RATELIMIT_ENABLED=False)
    write(first, make_record())
    for path in PATHS:
        for method, headers in REQUESTS:
            first.test_client().open(path, method=method, headers=headers)
    dispatched = app_dispatches(second)
    write(first, newer(make_record))
    for path in PATHS:
        for method, headers in REQUESTS:
            expected = answer(plain.test_client(), method, path, headers)
            assert answer(second.test_client(), method, path, headers) == expected, (path, method, headers)
    assert dispatched == []


def test_the_next_state_of_a_url_never_answered_is_the_apps(pair, make_record):
    fast, plain = pair
    dispatched = app_dispatches(fast)
    write(fast, newer(make_record))
    for path in PATHS:
        assert answer(fast.test_client(), "GET", path, {}) == answer(plain.test_client(), "GET", path, {})
    assert dispatched == PATHS


@pytest.mark.parametrize("path", ["/feeds/rss.xml?limit=5", "/feeds/section/no-such-section/rss.xml",
                                  "/feeds/section/Bad_Key/rss.xml", "/feeds.opml", "/feeds",
                                  "/feeds/profile/nope/rss.xml", "/feeds/profile/smartnews/atom.xml",
                                  "/feeds/profile/msn/feeds.opml", "/feeds/profiles.json"])
def test_everything_else_is_left_to_the_app(pair, path):
    fast, plain = pair
    for _ in range(2):
        assert answer(fast.test_client(), "GET", path, {}) == answer(plain.test_client(), "GET", path, {})
    assert fast_path_replays(fast) == 0


def test_partner_credentials_are_left_to_the_app(pair):
    fast, _ = pair
    client = fast.test_client()
    for _ in range(2):
        client.get("/feeds/rss.xml", headers={"Authorization": "Bearer fsk_" + "x" * 43})
        client.get("/feeds/rss.xml", headers={"X-Partner-Key": "fsk_" + "y" * 43})
    assert fast_path_replays(fast) == 0


@pytest.mark.parametrize("factor, expected", [
    # 304s and cached copies cost nothing against the render budget (3/minute): none is refused ...
    (10, [304] * 10 + [200, 200, 200]),
    # ... but all count against the ceiling (factor x budget = 6, the first 200 included).
    (2, [304] * 5 + [429, 429]),
])
def test_rate_limits_hold_as_without_the_fast_path(database_url, make_record, factor, expected, make_app):
    results = {}
    for fast_path in (False, True):
        app = make_app(FAST_PATH=fast_path, RATELIMIT_PUBLIC="3/minute",
                       RATELIMIT_CEILING_FACTOR=factor, RATELIMIT_KEY_PREFIX=f"test-{fast_path}")
        if fast_path is False:
            write(app, make_record())
        client = app.test_client()
        tag = client.get("/feeds/rss.xml").headers["ETag"]
        statuses = [client.get("/feeds/rss.xml", headers={"If-None-Match": tag}).status_code
                    for _ in range(expected.count(304) + (1 if factor == 2 else 0))]
        statuses += [client.get("/feeds/rss.xml").status_code for _ in range(len(expected) - len(statuses))]
        results[fast_path] = statuses
    assert results[False] == expected
    assert results[True] == expected


def test_renders_after_writes_are_limited_as_without_the_fast_path(database_url, make_record, make_app):
    """The budget (2 renders) and the ceiling (6 requests) refuse at the same requests when documents are
    built by the fast path after writes: what it counted before handing a request to the app (a refused
    render) is not counted again."""
    def refusal(response) -> int | str:
        if response.status_code != 429:
            return response.status_code
        return "budget" if "renders" in response.get_json()["message"] else "ceiling"

    results = {}
    for fast_path in (False, True):
        app = make_app(FAST_PATH=fast_path, RATELIMIT_PUBLIC="2/minute", RATELIMIT_CEILING_FACTOR=3,
                       RATELIMIT_KEY_PREFIX=f"writes-{fast_path}")
        write(app, make_record())
        client, got = app.test_client(), []
        first = client.get("/feeds/rss.xml")
        tag = first.headers["ETag"]
        got += [refusal(first), refusal(client.get("/feeds/rss.xml", headers={"If-None-Match": tag}))]
        write(app, newer(make_record, 1 + 2 * fast_path))
        again = client.get("/feeds/rss.xml", headers={"If-None-Match": tag})
        got.append(refusal(again))
        write(app, newer(make_record, 2 + 2 * fast_path))
        got += [refusal(client.get("/feeds/rss.xml")) for _ in range(2)]
        got.append(refusal(client.get("/feeds/rss.xml", headers={"If-None-Match": again.headers["ETag"]})))
        got.append(refusal(client.get("/feeds/rss.xml")))
        results[fast_path] = got
    assert results[False] == [200, 304, 200, "budget", "budget", "budget", "ceiling"]
    assert results[True] == results[False]


def test_behind_a_proxy_limits_count_the_client_address(database_url, make_record, make_app):
    """With TRUSTED_PROXY_HOPS the fast path sits inside ProxyFix, so two clients have two ceilings."""
    app = make_app(FAST_PATH=True, TRUSTED_PROXY_HOPS=1, RATELIMIT_PUBLIC="2/minute", RATELIMIT_CEILING_FACTOR=1)
    write(app, make_record())
    client = app.test_client()
    first = [client.get("/feeds/rss.xml", headers={"X-Forwarded-For": "203.0.113.1"}).status_code for _ in range(3)]
    second = [client.get("/feeds/rss.xml", headers={"X-Forwarded-For": "203.0.113.2"}).status_code for _ in range(3)]
    assert first == second == [200, 200, 429]
    assert fast_path_replays(app) > 0


@pytest.mark.parametrize(("profile_path", "public_path"), [
    ("/feeds/profile/flipboard/rss.xml", "/feeds/rss.xml"),
    ("/feeds/profile/msn/tag/parliament/atom.xml", "/feeds/tag/parliament/atom.xml"),
    ("/feeds/profile/readers/section/national/feed.json", "/feeds/section/national/feed.json"),
])
def test_a_profile_feed_follows_the_counter_of_its_public_feeds_scope(profile_path, public_path):
    assert feed_scope(profile_path) == feed_scope(public_path) is not None
    for path in ("/feeds/profile/msn/feeds.opml", "/feeds/profiles.json", "/feeds/profile/msn", "/feeds.opml"):
        assert feed_scope(path) is None
