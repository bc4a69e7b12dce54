"""A real headless Chromium reads a canonical article page and its AMP page from a live local server.

The app serves every sample article on 127.0.0.1 (SITE_URL set to that origin, so images and fonts
come from it); everything else fails to resolve, the AMP runtime included, so the AMP page is
loaded with JavaScript disabled, as a reader without the runtime would see it. All checks read the
rendered DOM and layout through Playwright. With FEEDSVC_UPDATE_SCREENSHOTS=1 the phone-sized
screenshots for the README are written to docs/screenshots/ (otherwise to the test's tmp folder).
"""
import os
import re
from pathlib import Path

import pytest

from feedsvc.ingest.records import parse_record
from feedsvc.ingest.sanitize import plain_text
from tests.support.apps import SITE_URL, import_samples
from tests.support.chromium import platform_fonts
from tests.support.records import sample_records
from tests.support.servers import live_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("pages-browser")]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 412, "height": 915}
DEVANAGARI = re.compile("[\u0900-\u097f]")
# Has a lead image, a table, a social embed and a correction.
SLUG = "hill-districts-landslides-roads-closed-advisory"
ARTICLE = next(a for a in (parse_record(r, site_url=SITE_URL) for r in sample_records()) if a.slug == SLUG)
FIRST_WORDS = plain_text(ARTICLE.body_html)[:60]


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """The origin of a live server with every sample article imported."""
    with live_app(tmp_path_factory.mktemp("live-site")) as (origin, app):
        import_samples(app)
        yield origin


@pytest.fixture
def screenshot_dir(tmp_path):
    return SCREENSHOTS if os.environ.get("FEEDSVC_UPDATE_SCREENSHOTS") == "1" else tmp_path


def rendered(page, selector: str) -> dict:
    """Text, laid-out box and (for images) decoded width of the first element matching `selector`."""
    return page.evaluate("""selector => {
        const e = document.querySelector(selector);
        if (!e) return null;
        const box = e.getBoundingClientRect();
        return {text: e.innerText, width: box.width, height: box.height, natural: e.naturalWidth || 0,
                source: e.currentSrc || ""};
    }""", selector)


def open_on_a_phone(new_context, url: str, *, javascript: bool = True):
    page = new_context(viewport=PHONE, is_mobile=True, java_script_enabled=javascript).new_page()
    page.goto(url)  # returns once the load event fired: images, fonts and frames loaded or failed
    return page


def assert_reads_as_an_article_on_a_phone(page, *, body: str, image: str):
    """Headline and body text in Devanagari, drawn in a Devanagari face; the lead image laid out and decoded."""
    headline = rendered(page, "h1")
    assert headline["text"] == ARTICLE.title and DEVANAGARI.search(headline["text"])
    fonts = platform_fonts(page, "h1")
    assert any("Devanagari" in font["familyName"] and font["glyphCount"] > 0 for font in fonts), fonts
    text = rendered(page, body)
    assert FIRST_WORDS in text["text"] and text["height"] > 100
    lead = rendered(page, image)
    assert lead["width"] > 300 and lead["height"] > 150
    # Fetched from the live server and decoded: the candidate the browser chose for a phone (a
    # rendition from the srcset), so its density-corrected width is the slot's, not the original's.
    assert 0 < lead["natural"] <= ARTICLE.image["width"] and "/media/" in lead["source"]
    # Nothing wider than the screen: no sideways scrolling (wide tables scroll inside themselves).
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_canonical_page_renders_headline_body_and_lead_image(new_context, origin, screenshot_dir):
    page = open_on_a_phone(new_context, f"{origin}/articles/{SLUG}")

    assert_reads_as_an_article_on_a_phone(page, body=".article-body", image="figure.lead img")
    assert "सुधार" in rendered(page, ".corrections")["text"]
    assert len(page.screenshot(path=screenshot_dir / "canonical.png")) < 500_000


def test_amp_page_without_javascript_renders_headline_body_and_lead_image(new_context, origin, screenshot_dir):
    page = open_on_a_phone(new_context, f"{origin}/amp/{SLUG}", javascript=False)

    # The boilerplate hides the body until the runtime starts; its <noscript> style must undo that.
    assert page.evaluate("getComputedStyle(document.body).animationName") == "none"
    assert page.evaluate("getComputedStyle(document.body).visibility") == "visible"
    # Without the runtime an amp-img has no box of its own: the <noscript><img> inside it gives one.
    assert_reads_as_an_article_on_a_phone(page, body=".body", image="figure.lead amp-img img")
    assert len(page.screenshot(path=screenshot_dir / "amp.png")) < 500_000
