"""Headless Chromium opens article pages whose bodies try to frame third-party pages: none loads.

The app answers on 127.0.0.1; a "phishing" server on 127.0.0.2 draws a fake sign-in form and counts
every request it gets. Two articles carry frames:
- one sent through the API: a frame of a host not on the list and one of a look-alike host (the
  sanitiser makes both links) plus an allowed YouTube player;
- one written to the store as a body from before the frame rule (no sanitiser ran over its frames):
  a plain frame of the phishing page, which only the page's Content-Security-Policy can stop.
Chromium resolves no other host, so the allowed player's load fails; that it is tried at all shows
the policy lets allowed players through.
"""
import dataclasses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page

from feedsvc.ingest import write
from feedsvc.ingest.records import parse_record
from feedsvc.web import db
from tests.support.apps import API_TOKEN
from tests.support.records import VALID_RECORD
from tests.support.servers import live_app, serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("frames-browser")]

PLAYER = "https://www.youtube.com/embed/dQw4w9WgXcQ"
FORBIDDEN_HOSTS = ("evil.example", "www.youtube.com.evil.example")


class Phishing(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        Phishing.hits.append(self.path)
        body = b"<!doctype html><form><p>Session expired, sign in</p><input type=password></form>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def phishing_origin():
    server = ThreadingHTTPServer(("127.0.0.2", 0), Phishing)
    thread = serve_in_thread(server)
    yield f"http://127.0.0.2:{server.server_port}"
    server.shutdown()
    thread.join()


def record(slug: str, body: str) -> dict:
    fields = dict(VALID_RECORD, id=f"frames-{slug}", slug=slug, body_html=body)
    fields.pop("image")  # nothing else to load: the page's only requests are its own and the frames'
    return fields


@pytest.fixture(scope="module")
def site(tmp_path_factory, phishing_origin):
    """The app's origin, serving an article sent through the API and one stored from before the rule."""
    with live_app(tmp_path_factory.mktemp("frames-site")) as (origin, app):
        sent = record("sent-through-api", f'<p>पहला अनुच्छेद।</p><iframe src="{PLAYER}" title="वीडियो"></iframe>'
                      + "".join(f'<iframe src="https://{host}/login" width="600" height="400"></iframe>'
                                for host in FORBIDDEN_HOSTS)
                      + f'<iframe src="{phishing_origin}/http-frame"></iframe><p>अंतिम अनुच्छेद।</p>')
        answer = app.test_client().put(f"/api/articles/{sent['id']}", json=sent,
                                       headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert answer.status_code == 201, answer.get_json()
        legacy = parse_record(record("stored-before-the-rule", "<p>पुराना लेख।</p>"), site_url=origin)
        legacy = dataclasses.replace(legacy, body_html=f'<p>पुराना लेख।</p><iframe src="{phishing_origin}/legacy" '
                                                       'width="600" height="400"></iframe>')
        write.commit_write(db.engine(app), write.upsert, legacy, site_name="x")
        yield origin


@pytest.fixture
def open_with_request_log(new_context):
    """Opens a URL in a fresh page; returns (page, every URL the page and its frames requested, in order)."""
    def open_page(url: str) -> tuple[Page, list[str]]:
        page = new_context(viewport={"width": 1000, "height": 2000}).new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        return page, requested
    return open_page


def frame_urls(page: Page) -> list[str]:
    return [frame.url for frame in page.frames if frame is not page.main_frame]


@pytest.mark.parametrize("path", ["/articles/sent-through-api", "/articles/stored-before-the-rule",
                                  "/section/national"])
def test_a_page_loads_no_frame_from_a_host_off_the_list(site, phishing_origin, open_with_request_log, path):
    Phishing.hits.clear()
    page, requested = open_with_request_log(site + path)
    assert page.evaluate("document.readyState") == "complete"
    assert Phishing.hits == []
    assert not [url for url in requested if any(f"//{host}/" in url for host in FORBIDDEN_HOSTS)]
    assert not [url for url in frame_urls(page) if url.startswith(phishing_origin)]


def test_forbidden_frames_are_links_and_the_allowed_player_is_still_tried(site, phishing_origin, open_with_request_log):
    page, requested = open_with_request_log(site + "/articles/sent-through-api")
    frames = page.evaluate("""[...document.querySelectorAll('.article-body iframe')]
        .map(f => [f.src, f.sandbox.value, f.referrerPolicy])""")
    assert frames == [[PLAYER, "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox "
                               "allow-presentation", "strict-origin-when-cross-origin"]]
    links = page.evaluate("[...document.querySelectorAll('.article-body a')].map(a => a.href)")
    # An http: frame is no player either: it too becomes a link (no embed disappears silently).
    assert links == [f"https://{host}/login" for host in FORBIDDEN_HOSTS] + [f"{phishing_origin}/http-frame"]
    assert PLAYER in requested


def test_the_legacy_frame_is_refused_by_the_policy_not_by_chance(site, phishing_origin, open_with_request_log):
    """The stored frame is still in the page, so what keeps it from loading is the page's CSP."""
    Phishing.hits.clear()
    page, _ = open_with_request_log(site + "/articles/stored-before-the-rule")
    sources = page.evaluate("[...document.querySelectorAll('iframe')].map(f => f.src)")
    assert sources == [f"{phishing_origin}/legacy"]
    assert Phishing.hits == []
