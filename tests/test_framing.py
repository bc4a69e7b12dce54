"""Framing headers on every route class: only /embed/* may be framed (by anyone); everything else by nobody."""
import re

import pytest

from feedsvc.web import security_headers
from tests.api_records import record  # noqa: F401  (a fixture)


def frame_ancestors(response) -> list[list[str]]:
    """The frame-ancestors sources of every CSP header sent (a browser enforces them all)."""
    found = []
    for policy in response.headers.getlist("Content-Security-Policy"):
        for directive in policy.split(";"):
            name, *sources = directive.split()
            if name.lower() == "frame-ancestors":
                found.append(sources)
    return found


def assert_frameable_by_anyone(response):
    assert frame_ancestors(response) == [["*"]]
    assert "X-Frame-Options" not in response.headers


def assert_never_framed(response):
    assert frame_ancestors(response) == [["'none'"]]
    assert response.headers["X-Frame-Options"] == "DENY"


EMBED_PATHS = ["/embed/monsoon-session-begins", "/embed/latest", "/embed/latest?section=national",
               "/embed/no-such-article", "/embed/latest?limit=999"]
OTHER_PATHS = ["/oembed?url=http://news.example/articles/monsoon-session-begins", "/oembed",
               "/feeds/rss.xml", "/feeds/section/national/atom.xml", "/feeds/feed.json", "/feeds", "/feeds.opml",
               "/partner/feeds/rss.xml", "/api/articles/test-2025-08-01-monsoon",
               "/articles/monsoon-session-begins", "/amp/monsoon-session-begins", "/healthz",
               "/media/test.jpg", "/no/such/route", "/embed", "/embedded/x", "/"]


@pytest.mark.parametrize("path", EMBED_PATHS)
def test_embed_routes_may_be_framed_by_any_site(client, record, path):
    assert_frameable_by_anyone(client.get(path))


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_every_other_route_refuses_framing(client, record, path):
    assert_never_framed(client.get(path))


def test_conditional_and_head_answers_carry_the_same_headers(client, record):
    first = client.get("/embed/monsoon-session-begins")
    assert_frameable_by_anyone(client.get("/embed/monsoon-session-begins",
                                          headers={"If-None-Match": first.headers["ETag"]}))
    assert_frameable_by_anyone(client.head("/embed/monsoon-session-begins"))
    assert_never_framed(client.head("/feeds/rss.xml"))


def test_every_registered_get_route_is_covered(app, client, record):
    """Whatever blueprints register, each GET route answers with exactly one framing rule."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a route that fails on dummy arguments still answers 500
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        response = client.get(path)
        if security_headers.frameable(path):
            assert_frameable_by_anyone(response)
        else:
            assert_never_framed(response)


def test_a_view_policy_is_kept_and_gets_the_directive(app, client):
    @app.get("/test-own-policy")
    def own_policy():
        return "ok", 200, {"Content-Security-Policy": "default-src 'self'; frame-ancestors https://x.example"}

    response = client.get("/test-own-policy")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and frame_ancestors(response) == [["'none'"]]
