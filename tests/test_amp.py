"""The AMP converter rule by rule, the AMP document, the house rules and the official validator."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import html5lib
import lxml.html
import pytest

from feedsvc.ingest.frames import AUDIO_PLAYER, DEFAULT_FRAME_HOSTS, OTHER_PLAYER
from feedsvc.ingest.records import parse_record
from feedsvc.render import pages
from feedsvc.render.amp import AmpBody, amp_document, convert_body, embed_to_amp
from feedsvc.render.feeds import Site
from feedsvc.render.feeds.entries import feed_html
from feedsvc.render.jsonld import news_article
from feedsvc.validate import Problem, validate_document
from feedsvc.validate.amp_rules import check_house_rules
from feedsvc.validate.amp_validator import AmpValidatorUnavailable, errors_only, validate_amp, validate_amp_many
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD

DATA = Path(__file__).parent / "data" / "amp"


def tree(markup: str):
    """A comparable form of an HTML fragment: tags, attributes and whitespace-collapsed text."""
    def node(element):
        return (element.tag, dict(element.attrib), norm(element.text),
                [node(child) + (norm(child.tail),) for child in element])

    def norm(text):
        return " ".join((text or "").split())

    return node(lxml.html.fragment_fromstring(markup, create_parent="div"))


def assert_converts(source: str, expected: str, extensions: set[str] = frozenset(), **options) -> None:
    body = convert_body(source, **options)
    assert tree(body.html) == tree(expected), body.html
    assert body.extensions == set(extensions)


def amp_img(src, alt, width, height):
    size = f'width="{width}" height="{height}"'
    return (f'<amp-img src="{src}" alt="{alt}" layout="responsive" {size}>'
            f'<noscript><img src="{src}" alt="{alt}" {size}></noscript></amp-img>')


# --- images ---------------------------------------------------------------------------------------

def test_img_becomes_responsive_amp_img_with_noscript_img_inside():
    assert_converts('<figure><img src="https://example.org/a.jpg" alt="बाढ़" width="800" height="600">'
                    '<figcaption>कैप्शन</figcaption></figure>',
                    f'<figure>{amp_img("https://example.org/a.jpg", "बाढ़", 800, 600)}'
                    '<figcaption>कैप्शन</figcaption></figure>')


@pytest.mark.parametrize("size", ['', 'width="100%" height="auto"', 'width="0" height="0"'])
def test_img_of_unknown_size_gets_a_16_by_9_fallback(size):
    assert_converts(f'<p><img src="https://example.org/a.jpg" alt="" {size}></p>',
                    f'<p>{amp_img("https://example.org/a.jpg", "", 1200, 675)}</p>')


@pytest.mark.parametrize("size, width, height", [
    ('width="800"', 800, 450), ('height="90px"', 160, 90), ('width="99999999" height="2"', 4, 2),
    ('width="640px" height="480px"', 640, 480)])
def test_img_keeps_the_size_it_is_given_and_only_the_missing_one_is_made_16_by_9(size, width, height):
    assert_converts(f'<p><img src="https://example.org/a.jpg" alt="" {size}></p>',
                    f'<p>{amp_img("https://example.org/a.jpg", "", width, height)}</p>')


def test_img_size_in_pixels_is_read():
    assert_converts('<img src="https://example.org/a.jpg" alt="" width="640px" height=" 480 ">',
                    amp_img("https://example.org/a.jpg", "", 640, 480))


def test_img_size_comes_from_the_records_image_data_when_given():
    body = convert_body('<img src="https://example.org/a.jpg" alt="">',
                        image_sizes={"https://example.org/a.jpg": (1000, 500)})
    assert tree(body.html) == tree(amp_img("https://example.org/a.jpg", "", 1000, 500))


@pytest.mark.parametrize("src", ['', 'src=""', 'src="javascript:alert(1)"', 'src="data:image/png;base64,AAAA"',
                                 'src="ftp://example.org/a.jpg"'])
def test_img_without_a_usable_src_is_removed_keeping_text(src):
    assert_converts(f'<p>पहले<img {src} alt="x">बाद</p>', '<p>पहलेबाद</p>')


# --- iframes and embeds ---------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://www.youtube.com/embed/dQw4w9WgXcQ?rel=0",
    "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
])
def test_youtube_iframe_becomes_amp_youtube_with_the_video_id(url):
    watch = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert_converts(f'<iframe src="{url}" width="560" height="315" title="गाना" allowfullscreen></iframe>',
                    '<amp-youtube data-videoid="dQw4w9WgXcQ" layout="responsive" width="560" height="315">'
                    f'<p placeholder=""><a href="{watch}">गाना</a></p></amp-youtube>',
                    {"amp-youtube"})


def test_allowed_player_becomes_amp_iframe_sandboxed_as_the_frame_policy_says():
    src = "https://open.spotify.com/embed/track/4uLU6hMCjMI75M1A2tKUQC"
    assert_converts(f'<iframe src="{src}" title="गीत" allowfullscreen></iframe>',
                    f'<amp-iframe src="{src}" sandbox="{AUDIO_PLAYER.sandbox}" referrerpolicy="no-referrer"'
                    ' layout="responsive" width="640" height="360" frameborder="0" title="गीत" allowfullscreen="">'
                    f'<p placeholder=""><a href="{src}">गीत</a></p></amp-iframe>',
                    {"amp-iframe"})


def test_a_host_the_operator_adds_gets_the_generic_player_sandbox():
    src = "https://charts.example.com/embed/7"
    assert_converts(f'<iframe src="{src}" title="चार्ट"></iframe>',
                    f'<amp-iframe src="{src}" sandbox="{OTHER_PLAYER.sandbox}"'
                    ' referrerpolicy="strict-origin-when-cross-origin" layout="responsive" width="640" height="360"'
                    f' frameborder="0" title="चार्ट"><p placeholder=""><a href="{src}">चार्ट</a></p></amp-iframe>',
                    {"amp-iframe"}, frame_hosts=(*DEFAULT_FRAME_HOSTS, "charts.example.com/embed"))


@pytest.mark.parametrize("src, provider", [
    ("https://charts.example.com/embed/7", "charts.example.com"),  # a host not on the list
    ("https://youtu.be/dQw4w9WgXcQ", "YouTube"),  # a YouTube page, not its player
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "YouTube"),
    ("https://www.youtube.com/embed/../redirect?q=x", "YouTube"),  # leaves /embed once normalised
    ("https://evil.example/frame", "evil.example"),
    ("http://insecure.example/embed", "insecure.example"),  # a map over plain http: no frame, but a link
    ("http://maps.google.com/maps?q=Delhi&amp;output=embed", "Google Maps"),
])
def test_iframe_the_frame_policy_refuses_becomes_a_link_naming_its_provider_and_loads_no_component(src, provider):
    assert_converts(f'<p>पाठ</p><iframe src="{src}" title="चार्ट"></iframe>',
                    f'<p>पाठ</p><a href="{src}">{provider} पर देखें: चार्ट</a>')


def test_a_youtube_player_is_a_link_when_youtube_is_not_on_the_list():
    src = "https://www.youtube.com/embed/dQw4w9WgXcQ"
    assert_converts(f'<iframe src="{src}"></iframe>', f'<a href="{src}">YouTube पर देखें</a>',
                    frame_hosts=("player.vimeo.com/video",))


@pytest.mark.parametrize("src", ["javascript:alert(1)", "data:text/html,x", ""])
def test_iframe_without_a_web_source_is_removed(src):
    assert_converts(f'<p>पाठ</p><iframe src="{src}"></iframe><iframe srcdoc="<b>x</b>"></iframe>',
                    '<p>पाठ</p>')


def test_instagram_iframe_becomes_amp_instagram():
    post = "https://www.instagram.com/p/C9xYz123AbC/"
    assert_converts(f'<iframe src="{post}embed" width="400" height="480"></iframe>',
                    '<amp-instagram data-shortcode="C9xYz123AbC" data-captioned="" layout="responsive"'
                    f' width="400" height="400"><p placeholder=""><a href="{post}">{post}</a></p></amp-instagram>',
                    {"amp-instagram"})


def test_video_becomes_amp_video_keeping_https_sources_only():
    assert_converts('<video src="https://example.org/v.mp4" poster="https://example.org/v.jpg" width="1280"'
                    ' height="720" onplay="x()" autoplay><source src="https://example.org/v.webm" type="video/webm">'
                    '<source src="http://example.org/v.ogv" type="video/ogg">पुराना ब्राउज़र</video>',
                    '<amp-video controls="" layout="responsive" width="1280" height="720"'
                    ' poster="https://example.org/v.jpg" src="https://example.org/v.mp4">'
                    '<source src="https://example.org/v.webm" type="video/webm"></amp-video>',
                    {"amp-video"})


def test_audio_becomes_amp_audio():
    assert_converts('<audio controls><source src="https://example.org/a.mp3" type="audio/mpeg"></audio>',
                    '<amp-audio controls="" width="auto" height="50">'
                    '<source src="https://example.org/a.mp3" type="audio/mpeg"></amp-audio>',
                    {"amp-audio"})


def test_video_and_audio_without_an_https_source_are_removed():
    assert_converts('<video src="http://example.org/v.mp4"></video><audio><source src="javascript:x"></audio>'
                    '<p>बाकी</p>', '<p>बाकी</p>')


def test_twitter_blockquote_becomes_amp_twitter_keeping_the_quote_as_placeholder():
    status = "https://twitter.com/imd/status/1816000000000000000"
    assert_converts('<blockquote class="twitter-tweet"><p lang="hi" dir="ltr">बारिश</p>&mdash; IMD '
                    f'<a href="{status}">July 24, 2025</a></blockquote>'
                    '<script async src="https://platform.twitter.com/widgets.js"></script>',
                    '<amp-twitter data-tweetid="1816000000000000000" layout="responsive" width="375" height="472">'
                    '<blockquote placeholder=""><p lang="hi" dir="ltr">बारिश</p>— IMD '
                    f'<a href="{status}">July 24, 2025</a></blockquote></amp-twitter>',
                    {"amp-twitter"})


def test_twitter_blockquote_without_a_status_link_stays_a_plain_quote():
    assert_converts('<blockquote class="twitter-tweet"><p>बिना लिंक</p></blockquote>',
                    '<blockquote><p>बिना लिंक</p></blockquote>')


def test_instagram_blockquote_becomes_amp_instagram_with_the_shortcode():
    post = "https://www.instagram.com/reel/Reel12345x/?utm_source=ig_embed"
    assert_converts(f'<blockquote class="instagram-media" data-instgrm-permalink="{post}" style="margin:0">'
                    f'<div style="padding:8px"><a href="{post}" target="_blank">देखें</a></div></blockquote>',
                    '<amp-instagram data-shortcode="Reel12345x" data-captioned="" layout="responsive" width="400"'
                    f' height="400"><blockquote placeholder=""><a href="{post}">देखें</a></blockquote></amp-instagram>',
                    {"amp-instagram"})


# --- what never passes through --------------------------------------------------------------------

@pytest.mark.parametrize("forbidden", [
    "<script>alert(1)</script>", "<style>p{color:red}</style>", '<link rel="stylesheet" href="https://e.x/a.css">',
    '<meta http-equiv="refresh" content="0">', '<base href="https://evil.example/">',
    '<form action="https://e.x/"><input name="q"><button>भेजो</button><textarea>t</textarea></form>',
    '<object data="https://e.x/a.swf"><param name="m" value="x">फ़्लैश</object>',
    '<frameset><frame src="https://e.x/"></frameset>', "<template><p>छिपा</p></template>",
    '<svg onload="alert(1)"><script>alert(2)</script></svg>', '<noscript><img src="https://e.x/a.jpg"></noscript>',
    "<!-- टिप्पणी -->", '<amp-img src="https://e.x/a.jpg" width="1" height="1"></amp-img>',
    '<amp-analytics><script type="application/json">{}</script></amp-analytics>',
])
def test_forbidden_elements_never_pass_through(forbidden):
    assert_converts(f"<p>पहले</p>{forbidden}<p>बाद</p>", "<p>पहले</p><p>बाद</p>")


@pytest.mark.parametrize("void", ['<embed src="https://e.x/a.swf">', '<source src="https://e.x/a.mp4">',
                                  '<track src="https://e.x/a.vtt">', "<wbr>"])
def test_text_after_an_html5_void_element_survives_its_removal(void):
    # libxml2 nests what follows these elements inside them; removing them must not lose it.
    assert_converts(f"<p>पहले{void}बाद</p><p>अगला</p>", "<p>पहलेबाद</p><p>अगला</p>")


def test_forbidden_attributes_are_removed():
    assert_converts('<p style="color:red" onclick="x()" ONMOUSEOVER="y()" class="i-amphtml-x" id="AMP">'
                    '<a href="https://example.org/" target="_blank" ping="https://e.x/" onclick="z()"'
                    ' rel="noopener evil">लिंक</a></p>',
                    '<p><a href="https://example.org/" rel="noopener">लिंक</a></p>')


@pytest.mark.parametrize("href", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " java&#x09;script:alert(1)",
                                  "java\nscript:alert(1)", "&#106;avascript:alert(1)", "vbscript:x",
                                  "data:text/html,x"])
def test_script_urls_are_removed_from_links(href):
    assert_converts(f'<p><a href="{href}">लिंक</a></p>', "<p><a>लिंक</a></p>")


def test_unknown_tags_are_unwrapped_keeping_their_text():
    assert_converts('<div style="x"><span onmouseover="x()">अंदर</span> <font color="red">फॉन्ट</font>'
                    ' <center>केंद्र</center></div> <label>लेबल</label>',
                    "अंदर फॉन्ट केंद्र लेबल")


# --- what survives --------------------------------------------------------------------------------

def test_tables_lists_quotes_headings_and_links_survive():
    safe = ('<h2>मुख्य</h2><h3>उप</h3><h4>4</h4><h5>5</h5><h6>6</h6>'
            '<ul><li><a href="https://example.org/1" title="खबर" rel="noopener">लिंक</a></li></ul><ol><li>एक</li></ol>'
            '<blockquote cite="https://example.org/q"><p>उद्धरण <cite>मंत्री</cite></p></blockquote>'
            '<p><q>हम तैयार</q> H<sub>2</sub>O x<sup>2</sup> <code>c</code> <strong>s</strong> <em>e</em>'
            ' <b>b</b> <i>i</i> <u>u</u> <s>s</s><br>नई पंक्ति</p><hr><pre>पंक्ति 1\nपंक्ति 2</pre>'
            '<table><caption>वर्षा</caption><thead><tr><th scope="col">शहर</th></tr></thead>'
            '<tbody><tr><td colspan="2" rowspan="1">दिल्ली</td></tr></tbody></table>')
    assert_converts(safe, safe)


def test_body_h1_becomes_h2_since_the_headline_is_the_pages_h1():
    assert_converts("<h1>शीर्षक</h1>", "<h2>शीर्षक</h2>")


def test_devanagari_is_written_as_characters_not_escapes():
    assert "नई दिल्ली में बारिश" in convert_body("<p>नई दिल्ली में बारिश</p>").html


def test_extensions_name_only_the_components_the_body_uses():
    body = convert_body((DATA / "safe-everything.html").read_text(encoding="utf-8"))
    assert body.extensions == {"amp-youtube", "amp-iframe", "amp-video", "amp-audio", "amp-twitter",
                               "amp-instagram"}
    assert convert_body("<p>सिर्फ़ पाठ <img src='https://e.x/a.jpg'></p>").extensions == set()


# --- the record's embeds list ---------------------------------------------------------------------

@pytest.mark.parametrize("provider, url, expected, extensions", [
    ("youtube", "https://youtu.be/dQw4w9WgXcQ",
     '<amp-youtube data-videoid="dQw4w9WgXcQ" layout="responsive" width="640" height="360"><p placeholder="">'
     '<a href="https://www.youtube.com/watch?v=dQw4w9WgXcQ">गाना</a></p></amp-youtube>', {"amp-youtube"}),
    ("twitter", "https://x.com/imd/status/99",
     '<amp-twitter data-tweetid="99" layout="responsive" width="375" height="472"><blockquote placeholder="">'
     '<p><a href="https://x.com/imd/status/99">गाना</a></p></blockquote></amp-twitter>', {"amp-twitter"}),
    ("instagram", "https://www.instagram.com/p/C9xYz123AbC/",
     '<amp-instagram data-shortcode="C9xYz123AbC" data-captioned="" layout="responsive" width="400" height="400">'
     '<blockquote placeholder=""><p><a href="https://www.instagram.com/p/C9xYz123AbC/">गाना</a></p></blockquote>'
     '</amp-instagram>', {"amp-instagram"}),
    ("vimeo", "https://vimeo.com/76979871",
     '<p><a href="https://vimeo.com/76979871">Vimeo पर वीडियो देखें: गाना</a></p>', set()),
    ("youtube", "https://www.youtube.com/channel/UC1",
     '<p><a href="https://www.youtube.com/channel/UC1">YouTube पर वीडियो देखें: गाना</a></p>', set()),
    ("facebook", "https://www.facebook.com/imd/posts/1",
     '<p><a href="https://www.facebook.com/imd/posts/1">Facebook पर पोस्ट देखें: गाना</a></p>', set()),
    ("other", "https://www.google.com/maps/place/दिल्ली",
     '<p><a href="https://www.google.com/maps/place/%E0%A4%A6%E0%A4%BF%E0%A4%B2%E0%A5%8D%E0%A4%B2%E0%A5%80">'
     'Google Maps पर देखें: गाना</a></p>', set()),
    ("other", "javascript:alert(1)", "<p>गाना</p>", set()),
])
def test_embed_to_amp(provider, url, expected, extensions):
    embed = embed_to_amp(provider, url, "गाना")
    assert tree(embed.html) == tree(expected)
    assert embed.extensions == extensions


# --- the document, the house rules and the official validator -------------------------------------

HEADLINE = 'बारिश </script><!-- "अलर्ट" & <b>'


def article_page(body: AmpBody, embeds=()) -> str:
    url = "https://news.example.in/articles/delhi-rain"
    return amp_document(
        headline=HEADLINE, canonical_url=url, body=body, embeds=embeds,
        json_ld=news_article(headline=HEADLINE, url=url, published="2025-07-23T15:30:00+05:30",
                             authors=[{"name": "रीना शर्मा", "url": "https://news.example.in/authors/reena"}],
                             publisher_name="समाचार", publisher_logo="https://news.example.in/logo.png",
                             images=["https://news.example.in/media/lead.jpg"]),
        lead_image={"url": "https://news.example.in/media/lead.jpg", "width": 1200, "height": 800,
                    "caption": "दिल्ली में जलभराव", "credit": "फोटो: एजेंसी"},
        byline="रीना शर्मा", published_iso="2025-07-23T15:30:00+05:30",
        published_text="23 जुलाई 2025, 3:30 दोपहर IST")


TRICKY_BODIES = sorted(DATA.glob("*.html"))
EMBEDS = [embed_to_amp("youtube", "https://youtu.be/dQw4w9WgXcQ", "वीडियो"),
          embed_to_amp("twitter", "https://x.com/imd/status/99", ""),
          embed_to_amp("facebook", "https://www.facebook.com/post/1", "फ़ेसबुक")]


@pytest.fixture(scope="module")
def tricky_pages():
    pages = [article_page(convert_body(path.read_text(encoding="utf-8"))) for path in TRICKY_BODIES]
    pages.append(article_page(convert_body("<p>केवल एम्बेड</p>"), EMBEDS))
    return pages, validate_amp_many(pages)


# One group, so that under xdist the fixture's single validator run serves every case.
@pytest.mark.slow
@pytest.mark.xdist_group("amp-tricky-pages")
@pytest.mark.parametrize("number", range(len(TRICKY_BODIES) + 1),
                         ids=[path.stem for path in TRICKY_BODIES] + ["embeds-list"])
def test_tricky_bodies_make_pages_that_pass_the_official_validator_and_the_house_rules(tricky_pages, number):
    pages, problems = tricky_pages
    assert [str(problem) for problem in problems[number]] == []
    assert [str(violation) for violation in check_house_rules(pages[number])] == []


def test_page_has_the_amp_head_in_order_and_loads_only_used_extensions():
    page = article_page(convert_body('<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>'))
    doc = lxml.html.document_fromstring(page)
    head = doc.find("head")
    assert page.startswith("<!doctype html>")
    assert doc.get("⚡") == "" and doc.get("lang") == "hi"
    assert head[0].tag == "meta" and head[0].get("charset") == "utf-8"
    assert head.find("meta[@name='viewport']").get("content") == "width=device-width"
    assert head.find("link[@rel='canonical']").get("href") == "https://news.example.in/articles/delhi-rain"
    scripts = [(s.get("custom-element"), s.get("src")) for s in head.iter("script") if s.get("src")]
    assert scripts == [(None, "https://cdn.ampproject.org/v0.js"),
                       ("amp-youtube", "https://cdn.ampproject.org/v0/amp-youtube-0.1.js")]
    assert len(head.xpath("style[@amp-boilerplate]")) == 1 and len(head.xpath("noscript/style[@amp-boilerplate]")) == 1


def test_page_css_has_a_self_hosted_devanagari_face_and_a_fallback_stack():
    css = lxml.html.document_fromstring(article_page(AmpBody(""))).xpath("//style[@amp-custom]")[0].text
    assert re.search(r'@font-face\s*{[^}]*font-family:\s*"Noto Sans Devanagari"[^}]*'
                     r'url\("/static/fonts/NotoSansDevanagari-Regular\.ttf"\) format\("truetype"\)', css)
    assert re.search(r'body\s*{[^}]*font-family:\s*"Noto Sans Devanagari",[^;]*"Mangal"[^;]*sans-serif', css)


def test_page_json_ld_escapes_script_end_and_keeps_the_headline():
    page = article_page(AmpBody("<p>पाठ</p>"))
    raw = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in raw and "रीना शर्मा" in raw
    data = json.loads(raw)
    assert data["@type"] == "NewsArticle" and data["headline"] == HEADLINE
    headline = lxml.html.document_fromstring(page).find(".//h1")
    assert headline.text_content() == HEADLINE


def test_page_lead_image_is_an_amp_img_with_caption_and_credit():
    doc = lxml.html.document_fromstring(article_page(AmpBody("")))
    lead = doc.find(".//figure")
    assert lead.find("amp-img").get("src") == "https://news.example.in/media/lead.jpg"
    assert lead.find("amp-img/noscript/img").get("width") == "1200"
    assert "दिल्ली में जलभराव" in lead.find("figcaption").text_content()
    assert "फोटो: एजेंसी" in lead.find("figcaption").text_content()


GOOD_PAGE = article_page(convert_body('<p>पाठ <img src="https://e.x/a.jpg"></p>'
                                      '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>'))


@pytest.mark.parametrize("rule, before, after", [
    ("no-bare-img", "<p>पाठ", '<p><img src="https://e.x/b.jpg">पाठ'),
    ("no-style-attribute", "<p>पाठ", '<p style="color:red">पाठ'),
    ("no-event-handler", "<p>पाठ", '<p onclick="x()">पाठ'),
    ("no-javascript-url", "<p>पाठ", '<p><a href=" JavaScript:alert(1)">x</a>पाठ'),
    ("one-amp-custom", "</head>", "<style amp-custom>p{}</style></head>"),
    ("no-important", "<style amp-custom>", "<style amp-custom>p{color:red ! IMPORTANT}"),
    ("amp-custom-size", "<style amp-custom>", "<style amp-custom>" + "p{}" * 25000),
    ("charset-first", '<meta charset="utf-8">\n<meta name="viewport" content="width=device-width">',
     '<meta name="viewport" content="width=device-width">\n<meta charset="utf-8">'),
    ("only-used-extensions", "</head>", '<script async custom-element="amp-video" '
                                        'src="https://cdn.ampproject.org/v0/amp-video-0.1.js"></script></head>'),
    ("only-used-extensions", "<p>पाठ", "<p><amp-audio src='https://e.x/a.mp3'></amp-audio>पाठ"),
    ("json-ld-escaped", "\\u003c/script\\u003e", "</b>"),
    ("no-own-scripts", "</body>", "<script>alert(1)</script></body>"),
    ("no-own-scripts", '<script async src="https://cdn.ampproject.org/v0.js">',
     '<script src="https://cdn.ampproject.org/v0.js">'),
])
def test_house_rules_catch_what_the_converter_must_never_emit(rule, before, after):
    assert check_house_rules(GOOD_PAGE) == []
    assert before in GOOD_PAGE
    broken = GOOD_PAGE.replace(before, after, 1)
    assert rule in {violation.rule for violation in check_house_rules(broken)}


def test_house_rules_are_validator_problems_and_run_on_every_amp_document():
    broken = GOOD_PAGE.replace("<p>पाठ", '<p><img src="https://e.x/b.jpg">पाठ', 1)
    line = broken[:broken.index('<img src="https://e.x/b.jpg">')].count("\n") + 1
    assert Problem("no-bare-img", "<img> is outside <noscript>", line) in check_house_rules(broken)
    assert "no-bare-img" in {problem.rule for problem in validate_document(broken.encode("utf-8"), "amp")}


def test_house_rules_do_not_mistake_text_for_a_script_url():
    page = GOOD_PAGE.replace('alt=""', 'alt="JavaScript: एक भाषा"').replace("<p>पाठ", '<p title="javascript:">पाठ', 1)
    assert check_house_rules(page) == []


@pytest.mark.slow
def test_official_validator_reports_errors_in_order_for_a_batch():
    broken = GOOD_PAGE.replace("<p>पाठ", '<p onclick="x()">पाठ', 1).replace("</body>", "<form></form></body>")
    good, bad = validate_amp_many([GOOD_PAGE, broken])
    assert good == []
    codes = {(problem.rule, problem.severity) for problem in bad}
    assert ("DISALLOWED_ATTR", "error") in codes
    assert ("MISSING_REQUIRED_EXTENSION", "error") in codes  # <form> needs amp-form
    assert all(isinstance(problem, Problem) and problem.line for problem in bad)
    assert errors_only(validate_amp(broken))


def test_missing_node_modules_raise_an_error_that_says_how_to_install(tmp_path):
    with pytest.raises(AmpValidatorUnavailable, match=r"make node_modules.*npm ci"):
        validate_amp(GOOD_PAGE, root=tmp_path)


# --- embeds are faithful: shown once, at their start time, never dropped without a link ------------

def _article_with(body_html: str, embeds: list[dict]):
    record = copy.deepcopy(VALID_RECORD)
    record.update(body_html=body_html, embeds=embeds)
    return parse_record(record, site_url=SITE_URL)


def _site():
    return Site(url="http://news.example", name="समाचार", description="", language="hi",
                logo="http://news.example/logo.png", icon="http://news.example/icon.png", copyright="")


def _amp_body(article):
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("lxml"), namespaceHTMLElements=False)
    return parser.parse(pages.amp_page(article, _site())).find(".//body")


YOUTUBE_BODY = '<p>भाषण:</p><iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ?start=42" title="भाषण"></iframe>'


@pytest.mark.parametrize("embed_url", ["https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                                       "https://youtu.be/dQw4w9WgXcQ?t=42"])
def test_a_video_in_the_body_and_in_embeds_is_shown_once_on_amp_and_canonical_pages(embed_url):
    article = _article_with(YOUTUBE_BODY, [{"provider": "youtube", "url": embed_url, "title": "भाषण"}])
    assert len(list(_amp_body(article).iter("amp-youtube"))) == 1
    assert pages.article_page(article, _site(), []).embeds == []


def test_youtube_start_times_reach_amp_feeds_and_the_canonical_player():
    article = _article_with("<p>पाठ</p>", [{"provider": "youtube", "url": "https://youtu.be/dQw4w9WgXcQ?t=1m2s"}])
    (player,) = _amp_body(article).iter("amp-youtube")
    assert player.get("data-param-start") == "62"
    feed = lxml.html.fragment_fromstring(feed_html(article), create_parent="div")
    assert "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=62s" in [a.get("href") for a in feed.iter("a")]
    (embed,) = pages.article_page(article, _site(), []).embeds
    assert embed.frame_url == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=62"


def test_a_facebook_post_and_an_http_map_leave_a_link_naming_the_provider_everywhere():
    body = '<p>नक्शा:</p><iframe src="http://maps.google.com/maps?q=Delhi&amp;output=embed" width="600"></iframe>'
    post = "https://www.facebook.com/PIBIndia/posts/1234567890"
    article = _article_with(body, [{"provider": "facebook", "url": post}])
    amp_links = [(a.get("href"), " ".join("".join(a.itertext()).split())) for a in _amp_body(article).iter("a")]
    feed_root = lxml.html.fragment_fromstring(feed_html(article), create_parent="div")
    feed_links = [(a.get("href"), " ".join(a.text_content().split())) for a in feed_root.iter("a")]
    body_links = [(a.get("href"), a.text) for a in
                  lxml.html.fragment_fromstring(article.body_html, create_parent="div").iter("a")]
    map_link = ("http://maps.google.com/maps?q=Delhi&output=embed", "Google Maps पर देखें")
    assert map_link in amp_links and map_link in feed_links and map_link in body_links
    assert (post, "Facebook पर पोस्ट देखें") in amp_links
    assert (post, "▶ Facebook पर पोस्ट देखें") in feed_links
    assert [(e.kind, e.url) for e in pages.article_page(article, _site(), []).embeds] == [("post", post)]
