"""Browser-facing headers on every route class: only /embed/* may be framed (by anyone), everything else by
nobody; HTML pages say what they may run and frame; /embed/* is never sniffed; /api/* is never stored."""
import json
import re

import lxml.html
import pytest

from feedsvc import config, create_app, store
from feedsvc.ingest.records import article_from_json
from feedsvc.web import db, security_headers

pytestmark = pytest.mark.sqlite_only  # response headers: the same whichever store answered


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


@pytest.mark.parametrize("path", ["/feeds/rss.xml", "/feeds/feed.json", "/", "/articles/monsoon-session-begins",
                                  "/amp/monsoon-session-begins"])
def test_a_304_carries_the_security_policy_of_its_200(client, record, path):
    """A cache replaces a stored answer's fields with a 304's (RFC 9111 §4.3.4): a feed's 304 must not
    bring a page's policy, nor a page's 304 lose it."""
    first = client.get(path)
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and "Content-Type" not in again.headers
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]


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


# ---- what pages may load: Content-Security-Policy ---------------------------------------------

def directives(response) -> dict[str, list[str]]:
    """The directives of the one CSP header sent, by name."""
    (policy,) = response.headers.getlist("Content-Security-Policy")
    found = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name.lower() not in found, f"{name} appears twice in {policy!r}"
        found[name.lower()] = sources
    return found


DEFAULT_FRAME_SOURCES = ["https://www.youtube.com/embed", "https://www.youtube.com/embed/",
                         "https://www.youtube-nocookie.com/embed", "https://www.youtube-nocookie.com/embed/",
                         "https://player.vimeo.com/video", "https://player.vimeo.com/video/",
                         "https://www.facebook.com/plugins", "https://www.facebook.com/plugins/",
                         "https://platform.twitter.com/embed", "https://platform.twitter.com/embed/",
                         "https://www.instagram.com",
                         "https://open.spotify.com/embed", "https://open.spotify.com/embed/",
                         "https://www.google.com/maps/embed", "https://www.google.com/maps/embed/"]
PAGE_PATHS = ["/articles/monsoon-session-begins", "/", "/section/national", "/tag/parliament",
              "/author/test-reporter", "/articles/no-such-article", "/feeds"]


@pytest.mark.usefixtures("record")
@pytest.mark.parametrize("path", PAGE_PATHS)
def test_html_pages_run_no_script_and_frame_only_the_listed_players(client, path):
    response = client.get(path)
    assert response.mimetype == "text/html"
    found = directives(response)
    assert found["script-src"] == ["'none'"] and found["object-src"] == ["'none'"]
    assert found["base-uri"] == ["'none'"] and found["frame-ancestors"] == ["'none'"]
    assert found["frame-src"] == DEFAULT_FRAME_SOURCES


@pytest.mark.usefixtures("record")
def test_amp_pages_allow_the_amp_runtime_and_its_frames(client):
    found = directives(client.get("/amp/monsoon-session-begins"))
    assert set(found["script-src"]) == {"blob:", "https://cdn.ampproject.org/v0.js", "https://cdn.ampproject.org/v0/",
                                        "https://cdn.ampproject.org/viewer/", "https://cdn.ampproject.org/rtv/"}
    assert "'unsafe-inline'" in found["style-src"]  # amp-custom, the boilerplate and the runtime's own rules
    assert found["frame-src"] == DEFAULT_FRAME_SOURCES + ["https://*.ampproject.net"]
    assert found["object-src"] == ["'none'"] and found["frame-ancestors"] == ["'none'"]


def test_frame_src_follows_the_frame_hosts_setting(database_url, make_app):
    app = make_app(FRAME_HOSTS=["player.vimeo.com/video", "charts.example.com"])
    assert directives(app.test_client().get("/"))["frame-src"] == [
        "https://player.vimeo.com/video", "https://player.vimeo.com/video/", "https://charts.example.com"]
    none = make_app(FRAME_HOSTS=[])
    assert directives(none.test_client().get("/"))["frame-src"] == ["'none'"]


@pytest.mark.usefixtures("record")
@pytest.mark.parametrize("path", ["/feeds/rss.xml", "/feeds/feed.json", "/api/articles/test-2025-08-01-monsoon",
                                  "/oembed?url=http://news.example/articles/monsoon-session-begins"])
def test_documents_that_are_not_pages_get_only_the_framing_rule(client, path):
    assert directives(client.get(path)) == {"frame-ancestors": ["'none'"]}


@pytest.mark.usefixtures("record")
def test_the_embed_card_keeps_its_own_policy(client):
    found = directives(client.get("/embed/monsoon-session-begins"))
    assert found["frame-ancestors"] == ["*"] and "frame-src" not in found


# ---- sniffing and storing ---------------------------------------------------------------------

@pytest.mark.usefixtures("record")
@pytest.mark.parametrize("path", EMBED_PATHS)
def test_embed_routes_are_never_sniffed(client, path):
    assert client.get(path).headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.usefixtures("record")
@pytest.mark.parametrize("method, path, authorised", [
    ("get", "/api/articles/test-2025-08-01-monsoon", True),
    ("get", "/api/articles/no-such-record", True),
    ("get", "/api/articles/test-2025-08-01-monsoon", False),
    ("put", "/api/articles/test-2025-08-01-monsoon", True),
    ("delete", "/api/articles/no-such-record", True),
])
def test_api_answers_are_never_stored(client, make_record, api_headers, method, path, authorised):
    response = getattr(client, method)(path, headers=api_headers if authorised else {},
                                       json=make_record() if method == "put" else None)
    assert response.headers.getlist("Cache-Control") == ["no-store"], response.status


# ---- the setting reaches every way in ---------------------------------------------------------

def test_frame_hosts_is_read_from_the_environment_and_refuses_what_is_not_a_host():
    assert config.from_environ({"FEEDSVC_FRAME_HOSTS": "player.vimeo.com/video, charts.example.com"}) == {
        "FRAME_HOSTS": ["player.vimeo.com/video", "charts.example.com"]}
    for bad in ("https://charts.example.com", "charts.example.com; script-src *", "charts.example.com:8443",
                "Charts.Example.com", "charts.example.com/*", "*.example.com"):
        with pytest.raises(config.ConfigError, match="FEEDSVC_FRAME_HOSTS"):
            create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "FRAME_HOSTS": [bad]})


def stored_body(app):
    """The body of the conftest's record as the store keeps it (the API answers the record as sent)."""
    with db.engine(app).connect() as conn:
        stored = article_from_json(store.article_row(conn, "test-2025-08-01-monsoon").article).body_html
    return lxml.html.fragment_fromstring(stored, create_parent="div")


def test_the_api_sanitises_with_the_configured_list(database_url, make_record, api_headers, make_app):
    app = make_app(FRAME_HOSTS=["charts.example.com"])
    client = app.test_client()
    body = ('<p>पाठ</p><iframe src="https://charts.example.com/7"></iframe>'
            '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>')
    assert client.put("/api/articles/test-2025-08-01-monsoon", json=make_record(body_html=body),
                      headers=api_headers).status_code == 201
    stored = stored_body(app)
    assert [f.get("src") for f in stored.iter("iframe")] == ["https://charts.example.com/7"]
    assert [a.get("href") for a in stored.iter("a")] == ["https://www.youtube.com/embed/dQw4w9WgXcQ"]


def test_the_import_command_sanitises_with_the_configured_list(database_url, make_record, tmp_path, make_app):
    app = make_app(FRAME_HOSTS=["charts.example.com"])
    source = tmp_path / "record.json"
    body = '<iframe src="https://charts.example.com/7"></iframe><iframe src="https://player.vimeo.com/video/1"></iframe>'
    source.write_text(json.dumps(make_record(body_html=body)), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-articles", str(source)])
    assert result.exit_code == 0, result.output
    fragment = stored_body(app)
    assert [f.get("src") for f in fragment.iter("iframe")] == ["https://charts.example.com/7"]
    assert [a.get("href") for a in fragment.iter("a")] == ["https://player.vimeo.com/video/1"]
