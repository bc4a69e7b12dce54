"""Real-world CMS markup (tests/data/cms/) through ingest, feeds, AMP and the canonical page.

Each fixture is checked by parsing what comes out: the sanitised body (as a browser parses it,
html5lib), the feed content (with html5lib's parse errors, which a feed validator reports too) and
the AMP body; `EXPECTED` says what a reader of each must get.
"""
from __future__ import annotations

import copy
from pathlib import Path

import html5lib
import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.ingest import cms
from feedsvc.ingest.records import Article, parse_record
from feedsvc.ingest.sanitize import sanitize_html
from feedsvc.render import pages
from feedsvc.render.feeds import Site
from feedsvc.render.feeds.entries import feed_html
from tests.support.records import VALID_RECORD, put_record

CMS = Path(__file__).parent / "data" / "cms"
FIXTURES = sorted(path.stem for path in CMS.glob("*.html"))
ARTICLE_URL = "https://news.example.in/rajya/mumbai/baarish.html"
SITE = Site(url="https://news.example.in", name="समाचार", description="ख़बरें", language="hi",
            logo="https://news.example.in/logo.png", icon="https://news.example.in/icon.png", copyright="")
UPLOADS = "https://news.example.in/wp-content/uploads/2025/07/"
GHOST = "https://news.example.in/content/"

# fixture -> images (src, width, height) in body order; links (href, text) a feed reader gets;
# players (tag, sources, poster) on pages; YouTube starts on AMP.
EXPECTED = {
    "wordpress-image-block": {
        "images": [(UPLOADS + "flood-1024x683.jpg", "1024", "683")],
        "links": [("https://news.example.in/rajya/rajya/assam-baadh.html", "हालात बिगड़े")],
        "captions": ["असम के धेमाजी में बाढ़ (फ़ोटो: पीटीआई)"],
    },
    "wordpress-lazy-load": {
        "images": [(UPLOADS + "parliament.jpg", "1200", "800"), (UPLOADS + "map.png", "640", "480"),
                   (UPLOADS + "chart-960.png", None, None), (UPLOADS + "only-noscript.jpg", None, None)],
        "captions": ["नया संसद भवन"],
    },
    "wordpress-embed-block": {
        "links": [("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=62s", "▶ YouTube पर वीडियो देखें"),
                  ("https://twitter.com/PIB_India/status/1816000000000000000", "X (Twitter) पर देखें")],
        "youtube_starts": [("dQw4w9WgXcQ", "62")],
    },
    "ghost-cards": {
        "images": [(GHOST + "images/2025/07/rain.jpg", "2000", "1333"),
                   (GHOST + "images/2025/07/g1.jpg", "1600", "1067"),
                   (GHOST + "images/2025/07/g2.jpg", "1200", "1600")],
        "players": [("video", [GHOST + "media/2025/07/flood.mp4"], GHOST + "media/2025/07/flood_thumb.jpg"),
                    ("audio", [GHOST + "media/2025/07/podcast.mp3"], None)],
        "links": [("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=90s",
                   "▶ YouTube पर वीडियो देखें: मौसम विभाग की चेतावनी"),
                  (GHOST + "media/2025/07/flood.mp4", "▶ वीडियो देखें"),
                  (GHOST + "media/2025/07/podcast.mp3", "▶ ऑडियो सुनें")],
        "youtube_starts": [("dQw4w9WgXcQ", "90")],
        "captions": ["आईटीओ पर जलभराव", "मौसम विभाग की प्रेस वार्ता", "यमुना का बढ़ता जलस्तर"],
    },
    "drupal-media": {
        "images": [("https://news.example.in/sites/default/files/styles/max_1300x1300/public/2025-07/dam.jpg.webp"
                    "?itok=Ef56Gh78", "1300", "867")],
        "links": [("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
                   "▶ YouTube पर वीडियो देखें: बाँध प्रशासन की प्रेस वार्ता")],
        "youtube_starts": [("dQw4w9WgXcQ", "42")],
    },
    "arc-story": {
        "images": [("https://www.news.example.in/resizer/v2/ABC123.jpg?auth=9f8e&width=1440&quality=70",
                    "1440", "960")],
        "players": [("video", ["https://d1.news.example.in/video/mumbai-rain-720.mp4",
                               "https://d1.news.example.in/video/mumbai-rain/master.m3u8"],
                     "https://www.news.example.in/resizer/v2/VIDTHUMB.jpg?auth=1a1a&width=1280")],
        "links": [("https://d1.news.example.in/video/mumbai-rain-720.mp4", "▶ वीडियो देखें"),
                  ("https://www.facebook.com/MumbaiPolice/posts/1234567890", "Facebook पर पोस्ट देखें"),
                  ("http://maps.google.com/maps?q=Kurla+Station&output=embed", "Google Maps पर देखें")],
        "captions": ["कुर्ला स्टेशन के पास (फ़ोटो: एजेंसी)"],
    },
}


def test_every_fixture_has_expectations():
    assert sorted(EXPECTED) == FIXTURES


def ingested(name: str) -> Article:
    record = copy.deepcopy(VALID_RECORD)
    record.update(body_html=(CMS / f"{name}.html").read_text(encoding="utf-8"), url=ARTICLE_URL)
    return parse_record(record, site_url=SITE.url)


def parsed(fragment: str) -> tuple[lxml.html.HtmlElement, list]:
    """The fragment as a browser parses it, and the parse errors html5lib reports."""
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("lxml"), namespaceHTMLElements=False)
    nodes = parser.parseFragment(fragment)
    root = lxml.html.Element("div")
    for node in nodes:
        if isinstance(node, str) and len(root):
            root[-1].tail = (root[-1].tail or "") + node
        elif isinstance(node, str):
            root.text = (root.text or "") + node
        else:
            root.append(node)
    return root, parser.errors


def text_of(element) -> str:
    return " ".join("".join(element.itertext()).split())


def images_of(root) -> list[tuple]:
    return [(img.get("src"), img.get("width"), img.get("height")) for img in root.iter("img")]


def links_of(root) -> list[tuple[str, str]]:
    return [(a.get("href"), text_of(a)) for a in root.iter("a")]


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request):
    article = ingested(request.param)
    return request.param, article


def test_the_sanitised_body_keeps_every_image_with_its_best_source_and_its_size(fixture):
    name, article = fixture
    body, errors = parsed(article.body_html)
    assert errors == []
    assert [image for image in images_of(body) if "ytimg" not in image[0]] == EXPECTED[name].get("images", [])
    assert body.find(".//picture") is None
    assert [s for s in body.iter("source") if s.getparent().tag not in ("video", "audio")] == []
    for caption in EXPECTED[name].get("captions", []):
        assert caption in [text_of(f) for f in body.iter("figcaption")]


def test_the_sanitised_body_keeps_players_with_controls_and_sources(fixture):
    name, article = fixture
    body, _ = parsed(article.body_html)
    players = [(p.tag, [p.get("src")] if p.get("src") else [s.get("src") for s in p.iter("source")], p.get("poster"))
               for p in body.iter("video", "audio")]
    assert players == EXPECTED[name].get("players", [])
    assert all(p.get("controls") is not None for p in body.iter("video", "audio"))


def test_every_url_in_the_body_is_an_ascii_uri(fixture):
    _, article = fixture
    body, _ = parsed(article.body_html)
    urls = [element.get(name) for element in body.iter() for name in ("href", "src", "poster", "cite")
            if element.get(name) is not None]
    assert urls and all(url.isascii() and " " not in url and url.startswith(("http://", "https://")) for url in urls)


def test_feed_content_is_valid_html_with_players_as_poster_and_link(fixture):
    name, article = fixture
    content, errors = parsed(feed_html(article))
    assert errors == []  # no "</source>" or other stray end tags
    assert [e.tag for e in content.iter("video", "audio", "source", "iframe", "picture")] == []
    links = links_of(content)
    for expected in EXPECTED[name].get("links", []):
        assert expected in links
    for _, _, poster in EXPECTED[name].get("players", []):
        if poster:
            assert poster in [img.get("src") for img in content.iter("img")]


def test_amp_body_has_players_given_sizes_and_youtube_start_times(fixture):
    name, article = fixture
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("lxml"), namespaceHTMLElements=False)
    body = parser.parse(pages.amp_page(article, SITE)).find(".//body")
    images = [(i.get("src"), i.get("width"), i.get("height")) for i in body.iter("amp-img")]
    for src, width, height in EXPECTED[name].get("images", []):
        assert (src, width or "1200", height or "675") in images
    assert [s for s in body.iter("source") if s.getparent().tag not in ("amp-video", "amp-audio")] == []
    players = [(p.tag, p.get("src") or next(p.iter("source")).get("src")) for p in body.iter("amp-video", "amp-audio")]
    assert players == [("amp-" + tag, sources[0]) for tag, sources, _ in EXPECTED[name].get("players", [])]
    starts = [(y.get("data-videoid"), y.get("data-param-start")) for y in body.iter("amp-youtube")]
    assert starts == EXPECTED[name].get("youtube_starts", [])


def test_the_canonical_page_plays_a_video_with_its_sources(client, api_headers):
    record = copy.deepcopy(VALID_RECORD)
    record.update(body_html=(CMS / "arc-story.html").read_text(encoding="utf-8"))
    put_record(client, api_headers, record)
    page = lxml.html.document_fromstring(client.get(f"/articles/{record['slug']}").data)
    (video,) = page.findall(".//article//video")
    assert video.get("controls") is not None
    assert [s.get("src") for s in video.iter("source")] == EXPECTED["arc-story"]["players"][0][1]



def test_markup_lxml_cannot_hold_leaves_the_cms_pass_and_is_still_sanitised():
    """Found by the fuzz target: a control character inside CMS-shaped markup made lxml raise."""
    body = '<picture><source srcset="a.jpg 1x"><img data-src="/media/a.jpg" alt="x\x01y"></picture><p>पाठ</p>'
    safe = sanitize_html(body, base_url="https://news.example/articles/x")
    assert "पाठ" in safe


# Pieces of the shapes cms.py looks for, in any case, with the letters re.IGNORECASE matches beyond
# ASCII (ſ, ı, İ, the Kelvin sign) and Devanagari around them.
_SHAPE_PIECES = st.sampled_from(["<", ">", "picture", "source", "noscript", "video", "audio", "data-", "lazy-",
                                 "src", "original", "fb-", "post", "wp-block-embed", "/media/oembed", "=", '"',
                                 "'", "data:", " ", "\u017f", "\u0131", "\u0130", "\u212a", "k", "समाचार",
                                 "<video ", "<source>", "data-src", "data-lazy-src", "data-original", "fb-post",
                                 "fb-video", "wp-block-embed", 'src=""', "src=''", "src=data:", 'src="data:'])


@settings(deadline=None)  # examples: the profile (tests/conftest.py)
@given(st.lists(_SHAPE_PIECES | st.text(max_size=3), max_size=12).map("".join),
       st.lists(st.booleans(), max_size=60))
def test_the_quick_check_for_cms_shapes_agrees_with_the_pattern(body, upper):
    body = "".join(c.upper() if flip else c for c, flip in zip(body, upper, strict=False)) + body[len(upper):]
    assert cms.needs_rewrite(body) == (cms._NEEDS_REWRITE.search(body) is not None)


@pytest.mark.parametrize("body", ["<PICTURE>", "<img \u017fRC=''>", "DATA-\u0131\u0130", "wp-bloc\u212a-embed",
                                  "<p>DATA-ORIGINAL</p>", "<Video>", "<videos>", "<p>पाठ</p>"])
def test_the_quick_check_for_cms_shapes_on_chosen_bodies(body):
    assert cms.needs_rewrite(body) == (cms._NEEDS_REWRITE.search(body) is not None)
