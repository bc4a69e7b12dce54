"""The desk in a real headless Chromium: signed in through its form, every section opened at a phone's
and a desktop's width, with JavaScript on and off; the plots (server-side SVG) must be laid out with a
size, their lines drawn, and nothing may be refused by the page's Content-Security-Policy.

The live server holds the sample articles and 30 days of counts written as the counters write them
(tests/test_desk.py checks the counting itself). With FEEDSVC_UPDATE_SCREENSHOTS=1 (`make screenshots`)
a few screenshots are written to docs/screenshots/ (otherwise to the test's tmp folder).
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from feedsvc import store
from feedsvc.ops import desk_checks, desk_counters, partners
from feedsvc.validate.command import Outcome
from feedsvc.validate.problems import Problem
from feedsvc.web import db
from tests.support.apps import ARTICLES, AppFactory
from tests.support.servers import serving

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("desk-browser")]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TOKEN = "desk-browser-token-0123456789abcdef"   # typed into the form: ASCII like any header-borne token
PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1280, "height": 900}
# Section path -> plots it draws.
SECTIONS = {"/desk/": 0, "/desk/audience": 3, "/desk/partners": 3, "/desk/outbox": 0, "/desk/alerts": 0}
# (section, viewport name, JavaScript) -> file name: a few, small, made on request only.
SHOTS = {("/desk/", "desktop", True): "desk-feeds.png", ("/desk/audience", "phone", False): "desk-audience-phone.png",
         ("/desk/partners", "desktop", False): "desk-partners.png", ("/desk/alerts", "phone", True): "desk-alerts-phone.png"}


def thirty_days_of_counts(app) -> None:
    """What a month of polling leaves behind, written through the counters' own batched writes."""
    counters = desk_counters.counters(app)
    today, hour = counters.now()
    with db.engine(app).begin() as conn:
        partner, _key = partners.add(conn, "Acme News")
        other, _key = partners.add(conn, "Khabar Digest", "msn")
        pending = desk_counters._Pending.empty()
        for back in range(30):
            day, when = today - timedelta(days=back), hour - back * 86400
            for feed, share in (("/feeds/rss.xml", 3), ("/feeds/atom.xml", 2), ("/feeds/section/desh/rss.xml", 1)):
                pending.feeds[(day, when, feed)] = [40 * share + back, 300 * share - 4 * back, back % 3, int(back == 4)]
            for family, base in (("feedly", 180), ("inoreader", 40)):
                pending.readers[(day, "/feeds/rss.xml", family)] = [50, base + 30 - back, store.now_utc()]
                pending.pollers |= {(day, family, f"{family}-{day}-{n}") for n in range(8 + (30 - back) // 3)}
            pending.partners[(day, partner.id, "/feeds/rss.xml")] = [96 + back % 7 * 3, 70 + back % 5, (26 + back % 5) * 400_000]
            pending.partners[(day, other.id, "/feeds/profile/msn/rss.xml")] = [48 - back // 2, 30 - back // 3,
                                                                              (18 - back % 4) * 250_000]
        desk_counters.write(conn, pending)
        desk_checks.record_validations(conn, [
            Outcome("/feeds/rss.xml", "rss", []),
            Outcome("/feeds/atom.xml", "atom", [Problem("atom.updated", "entry's updated is before its published",
                                                        41, 7)])])
        conn.execute(store.websub_outbox.insert().values(
            kind="websub", hub_url="https://pubsubhubbub.appspot.com/", topic_url=app.config["SITE_URL"] + "/feeds/rss.xml",
            created_at=store.now_utc(), next_attempt_at=store.now_utc() + timedelta(minutes=10), attempts=3,
            last_error="HTTP 503 from the hub"))


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """The origin of a live server with the sample articles and a month of desk counts."""
    folder = tmp_path_factory.mktemp("live-desk")
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    with AppFactory(f"sqlite:///{folder / 'feedsvc.db'}", instance=folder / "instance") as make_app:
        app = holder["app"] = make_app(SITE_URL=origin, DESK_TOKENS=[TOKEN], ACCESS_LOG=False, RATELIMIT_ENABLED=False)
        result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
        assert result.exit_code == 0, result.output
        thirty_days_of_counts(app)
        with serving(server):
            yield origin


@pytest.fixture
def screenshot_dir(tmp_path):
    return SCREENSHOTS if os.environ.get("FEEDSVC_UPDATE_SCREENSHOTS") == "1" else tmp_path


def signed_in(new_context, origin: str, viewport: dict, javascript: bool):
    """A page signed in through the login form, as a person would (a form POST: no script needed)."""
    context = new_context(viewport=viewport, is_mobile=viewport is PHONE, java_script_enabled=javascript)
    page = context.new_page()
    assert page.goto(f"{origin}/desk/").status == 401   # the form, answered with 401 (a console error)
    page.fill("input[name=token]", TOKEN)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")
    assert page.url == f"{origin}/desk/"
    cookie = next(c for c in context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/desk/"
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    return page, refused


def plots(page) -> list[dict]:
    """Each plot's laid-out box and the drawn length of its longest series line."""
    return page.evaluate("""() => [...document.querySelectorAll('figure.chart svg')].map(svg => {
        const box = svg.getBoundingClientRect();
        const lines = [...svg.querySelectorAll('path.line')].map(p => p.getTotalLength());
        return {width: box.width, height: box.height, right: box.right, line: Math.max(0, ...lines),
                visible: getComputedStyle(svg).visibility === 'visible' && getComputedStyle(svg).display !== 'none'};
    })""")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_every_section_shows_its_plots_on_a_phone_and_a_desktop(new_context, origin, screenshot_dir, viewport,
                                                                javascript):
    size = PHONE if viewport == "phone" else DESKTOP
    page, refused = signed_in(new_context, origin, size, javascript)
    for path, expected in SECTIONS.items():
        response = page.goto(origin + path)
        assert response.status == 200, path
        assert page.locator("h1").is_visible() and page.locator("nav.desk-nav a[aria-current=page]").count() == 1
        drawn = plots(page)
        assert len(drawn) == expected, path
        for plot in drawn:
            assert plot["visible"] and plot["width"] > 200 and plot["height"] > 80, (path, plot)
            assert plot["right"] <= size["width"] and plot["line"] > 50, (path, plot)
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], path
        shot = SHOTS.get((path, viewport, javascript))
        if shot:
            assert len(page.screenshot(path=screenshot_dir / shot)) < 300_000
    assert not refused, refused   # a CSP refusal (inline style, a script) shows up as a console error


def test_the_feeds_section_lists_problem_feeds_first_in_the_browser(new_context, origin):
    page, _ = signed_in(new_context, origin, DESKTOP, False)
    first = page.locator("table#feeds tbody tr").first
    assert "problem" in (first.get_attribute("class") or "")
    page.locator("table#feeds tr[data-path='/feeds/atom.xml'] td.validation summary").click()
    assert page.locator("table#feeds tr[data-path='/feeds/atom.xml'] td.validation li").first.is_visible()
