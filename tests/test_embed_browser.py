"""A real headless Chromium embeds our card on a partner page from another origin and sees it render.

The app is served on 127.0.0.1, the partner page on 127.0.0.2 (another origin and another site, so
Chromium puts our frame in its own process). The partner page holds what a partner would paste:
the `html` of our oEmbed response and the widget snippet, plus a frame of a page that must not be
framed. DevTools (over a pipe) reads each frame's own DOM and layout, without running any script.
"""
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import lxml.html
import pytest
from werkzeug.serving import make_server

from tests.support.chromium import Chromium, executable

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(executable() is None, reason="needs Debian's chromium (make system-deps)")]


def png(width: int, height: int, rgb=(0x1f, 0x6f, 0xb5)) -> bytes:
    """A solid-colour PNG, so the card has a real image to decode."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def serve_in_thread(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def site(tmp_path, make_record, make_app):
    """(app origin, record) with the app answering on 127.0.0.1 and SITE_URL set to that origin."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "card.png").write_bytes(png(320, 180))
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    app = holder["app"] = make_app(SITE_URL=origin, MEDIA_DIR=str(media))
    record = make_record(image={"url": "/media/card.png", "width": 320, "height": 180, "caption": "चित्र"})
    client = app.test_client()
    assert client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                      content_type="application/json",
                      headers={"Authorization": "Bearer test-token-एक"}).status_code == 201
    thread = serve_in_thread(server)
    yield origin, record, client
    server.shutdown()
    thread.join()


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


# The shared launch flags make every host name fail; both loopback origins must still be reachable.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2"


def text_of(html: str) -> str:
    return lxml.html.fragment_fromstring(html).text_content().strip()


def frames(browser) -> dict[str, str]:
    """URL -> session of every cross-origin frame of the loaded page (blocked ones show chrome-error://)."""
    # A frame attaches before its URL is known, so ask each one where it ended up.
    sessions = [e["params"]["sessionId"] for e in browser.events
                if e.get("method") == "Target.attachedToTarget" and e["params"]["targetInfo"]["type"] == "iframe"]
    return {browser.evaluate(session, "location.href"): session for session in sessions}


@pytest.fixture
def browser(tmp_path, partner_page):
    """(Chromium, page session, frames by URL) with the partner page loaded."""
    with Chromium(tmp_path, LOOPBACK_ONLY) as chromium:
        page = chromium.open_page(partner_page[0], width=1000, height=1400)
        yield chromium, page, frames(chromium)


def test_card_renders_inside_a_cross_origin_iframe(tmp_path, site, partner_page, browser):
    origin, record, _ = site
    chromium, page, by_url = browser
    frame = by_url[f"{origin}/embed/{record['slug']}"]

    title = chromium.query(frame, ".card-title")
    assert title, "the card's headline is not in the framed document"
    assert text_of(chromium.outer_html(frame, title)) == record["title"]
    width, height = chromium.box(frame, title)
    assert width > 100 and height > 10

    image = chromium.query(frame, ".card-media img")
    assert min(chromium.box(frame, image)) > 50
    # Fetched and decoded under the card's CSP (DevTools evaluates even where the page may run no script).
    assert chromium.evaluate(frame, "document.querySelector('.card-media img').naturalWidth") == 320
    # The stylesheet applied (allowed by its hash): the brand rule on top of the card.
    assert chromium.evaluate(frame, "getComputedStyle(document.querySelector('.frame')).borderTopWidth") == "4px"

    meta = text_of(chromium.outer_html(frame, chromium.query(frame, ".card-meta")))
    assert "परीक्षा संवाददाता" in meta and meta.endswith("IST")

    # On the partner's page the iframe has the size the oEmbed response promised.
    iframe = chromium.query(page, "#card iframe")
    assert chromium.box(page, iframe) == (partner_page[1]["width"], partner_page[1]["height"])
    chromium.screenshot(page, tmp_path / "partner-page.png")


def test_widget_renders_inside_a_cross_origin_iframe(site, browser):
    origin, record, _ = site
    chromium, _, by_url = browser
    frame = by_url[f"{origin}/embed/latest?section=national"]
    link = chromium.query(frame, ".latest-list a")
    assert text_of(chromium.outer_html(frame, link)) == record["title"]
    assert min(chromium.box(frame, link)) > 0


def test_a_page_that_must_not_be_framed_is_refused(site, browser):
    origin, _, _ = site
    chromium, page, by_url = browser
    assert chromium.query(page, "#forbidden")
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
                          headers={"Authorization": "Bearer test-token-एक"}).status_code == 201
    return origin


def widget_layout(chromium, session) -> dict:
    """The viewport, the list's visible box and, per headline, its item's box and its link's box and lines."""
    return chromium.evaluate(session, """(() => {
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
    })()""")


def inside(box, outer) -> bool:
    return (box["top"] >= outer["top"] - 0.5 and box["bottom"] <= outer["bottom"] + 0.5
            and box["left"] >= outer["left"] - 0.5 and box["right"] <= outer["right"] + 0.5)


def snippet_size(client, limit: int) -> tuple[str, int, int]:
    with client.application.test_request_context():
        from feedsvc.web.embed import widget_snippet
        iframe = lxml.html.fragments_fromstring(widget_snippet(limit=limit))[0]
    return iframe.get("src"), int(iframe.get("width")), int(iframe.get("height"))


@pytest.mark.parametrize("limit", [1, 5, 10])
def test_widget_shows_every_headline_whole_at_the_size_the_snippet_suggests(tmp_path, site, many_headlines, limit):
    src, width, height = snippet_size(site[2], limit)
    with Chromium(tmp_path, LOOPBACK_ONLY) as chromium:
        session = chromium.open_page(src, width=width, height=height)
        layout = widget_layout(chromium, session)
        chromium.screenshot(session, tmp_path / f"widget-{limit}.png")
    viewport = {"top": 0, "left": 0, "bottom": layout["viewport"]["height"], "right": layout["viewport"]["width"]}
    assert len(layout["items"]) == limit
    for n, item in enumerate(layout["items"]):
        assert inside(item["box"], viewport) and inside(item["box"], layout["list"]), (n, item, viewport)
        assert inside(item["link"], item["box"]) and inside(item["date"], item["box"]) and not item["cut"], (n, item)
    # Drawn in the site's own face (an @font-face rule of the widget), not whatever the visitor has.
    assert "Noto Sans Devanagari" in {family.strip('"') for family in layout["fonts"]}


@pytest.mark.parametrize("height", [300, 440])  # a frame smaller than asked for; the size once suggested
def test_widget_in_a_smaller_frame_shows_fewer_headlines_none_cut(tmp_path, site, many_headlines, height):
    with Chromium(tmp_path, LOOPBACK_ONLY) as chromium:
        session = chromium.open_page(f"{many_headlines}/embed/latest", width=360, height=height)
        layout = widget_layout(chromium, session)
    shown = [item for item in layout["items"] if inside(item["box"], layout["list"])]
    hidden = [item for item in layout["items"] if item not in shown]
    assert shown and hidden and shown == layout["items"][:len(shown)]
    for item in hidden:  # wholly out of sight, not half shown
        assert item["box"]["left"] >= layout["viewport"]["width"], item
    assert layout["list"]["bottom"] <= height


@pytest.mark.parametrize("height", [None, 900, 300])  # oEmbed's own height, a taller frame, a shorter one
def test_card_image_keeps_its_proportions_in_any_frame(tmp_path, site, height):
    origin, record, client = site
    data = client.get(f"/oembed?url={quote(origin + '/articles/' + record['slug'], safe='')}").get_json()
    with Chromium(tmp_path, LOOPBACK_ONLY) as chromium:
        session = chromium.open_page(f"{origin}/embed/{record['slug']}", width=data["width"],
                                     height=height or data["height"])
        image = chromium.evaluate(session, """(() => {
            const img = document.querySelector('.card-media img'), r = img.getBoundingClientRect();
            return {width: r.width, height: r.height, bottom: r.bottom, natural: [img.naturalWidth, img.naturalHeight],
                    title: document.querySelector('.card-title').getBoundingClientRect().top};
        })()""")
    natural_width, natural_height = image["natural"]
    assert natural_width == 320 and image["width"] > 50
    assert image["width"] / image["height"] == pytest.approx(natural_width / natural_height, abs=0.02)
    assert image["bottom"] <= image["title"]  # above the headline, not under it
