"""A real headless Chromium embeds our card on a partner page from another origin and sees it render.

The app is served on 127.0.0.1, the partner page on 127.0.0.2 (another origin and another site, so
Chromium puts our frame in its own process). The partner page holds what a partner would paste:
the `html` of our oEmbed response and the widget snippet, plus a frame of a page that must not be
framed. Playwright reads each frame's own DOM and layout, without running any of the page's scripts.
"""
import json
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import lxml.html
import pytest
from playwright.sync_api import Frame, Locator, Page

from tests.support.apps import API_TOKEN
from tests.support.servers import live_app, serve_in_thread

pytestmark = pytest.mark.browser


def png(width: int, height: int, rgb=(0x1f, 0x6f, 0xb5)) -> bytes:
    """A solid-colour PNG, so the card has a real image to decode."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def site(tmp_path, make_record, api_headers):
    """(app origin, record, client) with the app answering on 127.0.0.1 and SITE_URL set to that origin."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "card.png").write_bytes(png(320, 180))
    with live_app(tmp_path, MEDIA_DIR=str(media)) as (origin, app):
        record = make_record(image={"url": "/media/card.png", "width": 320, "height": 180, "caption": "चित्र"})
        client = app.test_client()
        assert client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json",
                          headers=api_headers).status_code == 201
        yield origin, record, client


@pytest.fixture
def partner_page(site):
    """The URL of a partner's page on 127.0.0.2 that embeds our card, our widget and a forbidden page."""
    origin, record, client = site
    oembed = client.get(f"/oembed?url={quote(origin + '/articles/' + record['slug'], safe='')}").get_json()
    with client.application.test_request_context():
        from feedsvc.web.embed import widget_snippet
        snippet = widget_snippet("national", "देश")
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner</title></head><body>'
            f'<h1>A partner site</h1><div id="card">{oembed["html"]}</div><div id="widget">{snippet}</div>'
            f'<iframe id="forbidden" src="{origin}/oembed?url=x" width="300" height="100"></iframe>'
            f'</body></html>').encode("utf-8")

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Page)
    thread = serve_in_thread(server)
    yield f"http://127.0.0.2:{server.server_port}/", oembed
    server.shutdown()
    thread.join()


def frames(page: Page) -> dict[str, Frame]:
    """URL -> frame of every frame of the loaded page (refused ones show chrome-error://chromewebdata/)."""
    return {frame.url: frame for frame in page.frames if frame is not page.main_frame}


def size(locator: Locator) -> tuple[float, float]:
    """(width, height) of the element's border box as laid out; fails if it has none."""
    box = locator.bounding_box()
    assert box, f"{locator} has no box"
    return box["width"], box["height"]


@pytest.fixture
def partner(new_context, partner_page):
    """(page, frames by URL) with the partner page loaded, its frames loaded or refused."""
    page = new_context(viewport={"width": 1000, "height": 1400}).new_page()
    page.goto(partner_page[0])
    # The load event can fire before Playwright has heard of every out-of-process frame's navigation
    # (CI once saw the card and widget frames still at URL ""): wait until every iframe has its URL.
    expected = page.locator("iframe").count()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        children = [frame for frame in page.frames if frame is not page.main_frame]
        if len(children) == expected and all(frame.url not in ("", "about:blank") for frame in children):
            break
        page.wait_for_timeout(50)
    return page, frames(page)


def test_card_renders_inside_a_cross_origin_iframe(tmp_path, site, partner_page, partner):
    origin, record, _ = site
    page, by_url = partner
    frame = by_url[f"{origin}/embed/{record['slug']}"]

    title = frame.locator(".card-title")
    assert title.count(), "the card's headline is not in the framed document"
    assert title.first.text_content().strip() == record["title"]
    width, height = size(title.first)
    assert width > 100 and height > 10

    assert min(size(frame.locator(".card-media img").first)) > 50
    # Fetched and decoded under the card's CSP (Playwright evaluates even where the page may run no script).
    assert frame.evaluate("document.querySelector('.card-media img').naturalWidth") == 320
    # The stylesheet applied (allowed by its hash): the brand rule on top of the card.
    assert frame.evaluate("getComputedStyle(document.querySelector('.frame')).borderTopWidth") == "4px"

    meta = frame.locator(".card-meta").first.text_content().strip()
    assert "परीक्षा संवाददाता" in meta and meta.endswith("IST")

    # On the partner's page the iframe has the size the oEmbed response promised.
    assert size(page.locator("#card iframe").first) == (partner_page[1]["width"], partner_page[1]["height"])
    page.screenshot(path=tmp_path / "partner-page.png")


def test_widget_renders_inside_a_cross_origin_iframe(site, partner):
    origin, record, _ = site
    _, by_url = partner
    link = by_url[f"{origin}/embed/latest?section=national"].locator(".latest-list a").first
    assert link.text_content().strip() == record["title"]
    assert min(size(link)) > 0


def test_a_page_that_must_not_be_framed_is_refused(site, partner):
    origin, _, _ = site
    page, by_url = partner
    assert page.locator("#forbidden").count()
    assert not [url for url in by_url if url.startswith(f"{origin}/oembed")]
    assert "chrome-error://chromewebdata/" in by_url  # what Chromium shows in place of a refused frame


# ---- fitting the size offered: the widget at the snippet's size, the card's image in any frame -----

LONG_TITLES = [  # two lines and more at the widget's width, in Devanagari with a little Latin
    "मानसून सत्र में कई अहम विधेयक पेश होंगे, विपक्ष ने महंगाई और बेरोज़गारी पर चर्चा की माँग की",
    "IPL 2025: आख़िरी ओवर में छक्का लगाकर टीम ने सेमीफ़ाइनल में जगह बनाई, कप्तान ने कहा यह जीत सबकी है",
    "पहाड़ी ज़िलों में भूस्खलन से कई सड़कें बंद, प्रशासन ने यात्रियों के लिए परामर्श जारी किया",
    "शेयर बाज़ार में लगातार तीसरे दिन तेज़ी, सेंसेक्स नई ऊँचाई पर पहुँचा",
    "नई शिक्षा नीति के तहत स्कूलों में मातृभाषा में पढ़ाई शुरू, शिक्षकों को प्रशिक्षण दिया जाएगा",
    "स्वास्थ्य मंत्रालय ने डेंगू से बचाव के लिए राज्यों को दिशानिर्देश भेजे",
    "अंतरराष्ट्रीय अंतरिक्ष स्टेशन से लौटे यात्रियों का स्वागत, वैज्ञानिकों ने प्रयोगों के नतीजे साझा किए",
    "छोटी ख़बर",
    "किसानों के लिए नई बीमा योजना: प्रीमियम आधा, दावों का निपटारा तीस दिन में",
    "रेलवे ने त्योहारों के लिए विशेष गाड़ियाँ चलाने की घोषणा की, आरक्षण कल से",
    "राजधानी में वायु गुणवत्ता सुधरी, फिर भी डॉक्टरों ने सावधानी बरतने को कहा",
]


@pytest.fixture
def many_headlines(site, make_record):
    """The site's origin, with more headlines than any widget shows, most of them two lines long or more."""
    origin, _, client = site
    for n, title in enumerate(LONG_TITLES):
        moment = f"2025-09-{n + 1:02d}T09:00:00+05:30"
        record = make_record(id=f"long-{n}", slug=f"long-{n}", title=title, image=None, published=moment,
                             updated=moment)
        assert client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json",
                          headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 201
    return origin


def widget_layout(page: Page) -> dict:
    """The viewport, the list's visible box and, per headline, its item's box and its link's box and lines."""
    return page.evaluate("""() => {
        const rect = e => { const r = e.getBoundingClientRect();
                            return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
        return {
            viewport: {width: innerWidth, height: innerHeight},
            list: rect(document.querySelector('.latest-list')),
            items: [...document.querySelectorAll('.latest-list li')].map(li => ({
                box: rect(li), link: rect(li.querySelector('a')), date: rect(li.querySelector('time')),
                cut: li.scrollHeight > li.clientHeight})),
            fonts: [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family),
        };
    }""")


def open_in_a_frame_of(new_context, url: str, width: int, height: int) -> Page:
    """`url` alone in a window the size of the frame it would be shown in."""
    page = new_context(viewport={"width": width, "height": height}, is_mobile=True).new_page()
    page.goto(url)
    return page


def inside(box, outer) -> bool:
    return (box["top"] >= outer["top"] - 0.5 and box["bottom"] <= outer["bottom"] + 0.5
            and box["left"] >= outer["left"] - 0.5 and box["right"] <= outer["right"] + 0.5)


def snippet_size(client, limit: int) -> tuple[str, int, int]:
    with client.application.test_request_context():
        from feedsvc.web.embed import widget_snippet
        iframe = lxml.html.fragments_fromstring(widget_snippet(limit=limit))[0]
    return iframe.get("src"), int(iframe.get("width")), int(iframe.get("height"))


@pytest.mark.parametrize("limit", [1, 5, 10])
def test_widget_shows_every_headline_whole_at_the_size_the_snippet_suggests(tmp_path, site, many_headlines,
                                                                            new_context, limit):
    src, width, height = snippet_size(site[2], limit)
    page = open_in_a_frame_of(new_context, src, width, height)
    layout = widget_layout(page)
    page.screenshot(path=tmp_path / f"widget-{limit}.png")
    viewport = {"top": 0, "left": 0, "bottom": layout["viewport"]["height"], "right": layout["viewport"]["width"]}
    assert len(layout["items"]) == limit
    for n, item in enumerate(layout["items"]):
        assert inside(item["box"], viewport) and inside(item["box"], layout["list"]), (n, item, viewport)
        assert inside(item["link"], item["box"]) and inside(item["date"], item["box"]) and not item["cut"], (n, item)
    # Drawn in the site's own face (an @font-face rule of the widget), not whatever the visitor has.
    assert "Noto Sans Devanagari" in {family.strip('"') for family in layout["fonts"]}


@pytest.mark.parametrize("height", [300, 440])  # a frame smaller than asked for; the size once suggested
def test_widget_in_a_smaller_frame_shows_fewer_headlines_none_cut(site, many_headlines, new_context, height):
    layout = widget_layout(open_in_a_frame_of(new_context, f"{many_headlines}/embed/latest", 360, height))
    shown = [item for item in layout["items"] if inside(item["box"], layout["list"])]
    hidden = [item for item in layout["items"] if item not in shown]
    assert shown and hidden and shown == layout["items"][:len(shown)]
    for item in hidden:  # wholly out of sight, not half shown
        assert item["box"]["left"] >= layout["viewport"]["width"], item
    assert layout["list"]["bottom"] <= height


@pytest.mark.parametrize("height", [None, 900, 300])  # oEmbed's own height, a taller frame, a shorter one
def test_card_image_keeps_its_proportions_in_any_frame(site, new_context, height):
    origin, record, client = site
    data = client.get(f"/oembed?url={quote(origin + '/articles/' + record['slug'], safe='')}").get_json()
    page = open_in_a_frame_of(new_context, f"{origin}/embed/{record['slug']}", data["width"],
                              height or data["height"])
    image = page.evaluate("""() => {
        const img = document.querySelector('.card-media img'), r = img.getBoundingClientRect();
        return {width: r.width, height: r.height, bottom: r.bottom, natural: [img.naturalWidth, img.naturalHeight],
                title: document.querySelector('.card-title').getBoundingClientRect().top};
    }""")
    natural_width, natural_height = image["natural"]
    assert natural_width == 320 and image["width"] > 50
    assert image["width"] / image["height"] == pytest.approx(natural_width / natural_height, abs=0.02)
    assert image["bottom"] <= image["title"]  # above the headline, not under it
