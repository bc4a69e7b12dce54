"""Embed card /embed/<slug>, headline widget /embed/latest, the partner snippet and the discovery global."""
import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone

import lxml.html
import pytest
from flask import render_template_string
from lxml import etree

from feedsvc import store
from feedsvc.web.embed import widget_date, widget_snippet
from tests.support.records import put_record

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

SITE = "http://news.example"


@pytest.fixture
def record(client, api_headers, make_record):
    # The seed article's moment: 2025-07-23T10:00:00Z, 3:30 in the afternoon in India.
    record = make_record(published="2025-07-23T15:30:00+05:30", updated="2025-07-23T15:30:00+05:30",
                         authors=[{"key": "test-reporter", "name": "परीक्षा संवाददाता"},
                                  {"key": "second", "name": "दूसरी लेखिका"}])
    put_record(client, api_headers, record)
    return record


def page(response):
    return lxml.html.document_fromstring(response.get_data(as_text=True))


def by_class(node, name):
    return node.xpath(f"//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def directives(response) -> dict:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def test_card_shows_image_headline_summary_byline_and_hindi_date(client, record):
    response = client.get(f"/embed/{record['slug']}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    doc = page(response)
    assert doc.get("lang") == "hi"
    assert by_class(doc, "card-title")[0].text_content() == record["title"]
    assert by_class(doc, "card-summary")[0].text_content() == record["summary"]
    assert by_class(doc, "card-byline")[0].text_content() == "परीक्षा संवाददाता, दूसरी लेखिका"
    time = doc.xpath("//time")[0]
    assert time.text_content() == "23 जुलाई 2025, 3:30 दोपहर IST"
    assert time.get("datetime") == "2025-07-23T15:30:00+05:30"
    image = doc.xpath("//img")[0]
    assert (image.get("src"), image.get("width"), image.get("height")) == (f"{SITE}/media/test.jpg", "1200", "675")


def test_every_card_link_goes_out_in_a_new_tab_without_opener(client, record):
    links = page(client.get(f"/embed/{record['slug']}")).xpath(".//a")
    assert links
    for link in links:
        assert link.get("href") == f"{SITE}/articles/{record['slug']}"
        assert link.get("target") == "_blank" and "noopener" in link.get("rel").split()


def test_card_has_no_script_and_a_strict_policy(client, record):
    response = client.get(f"/embed/{record['slug']}")
    doc = page(response)
    assert not doc.xpath("//script") and not doc.xpath("//*[@style]")
    assert not any(name.startswith("on") for el in doc.iter() for name in el.attrib)
    policy = directives(response)
    assert policy["default-src"] == ["'none'"] and "script-src" not in policy
    assert policy["frame-ancestors"] == ["*"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers


def test_card_stylesheet_is_allowed_by_its_hash(client, record):
    response = client.get(f"/embed/{record['slug']}")
    css = page(response).xpath("//style")[0].text
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    assert directives(response)["style-src"] == [f"'sha256-{digest}'"]


def test_card_images_come_from_allowed_origins(client, make_record, api_headers):
    record = make_record(id="cdn", slug="cdn-image",
                         image={"url": "https://img.cdn.example/a.jpg", "width": 800, "height": 450})
    put_record(client, api_headers, record)
    response = client.get("/embed/cdn-image")
    assert set(directives(response)["img-src"]) == {"'self'", SITE, "https://img.cdn.example"}


def test_card_is_cacheable_and_conditional(client, record):
    first = client.get(f"/embed/{record['slug']}")
    assert "public" in first.headers["Cache-Control"] and first.headers["ETag"]
    again = client.get(f"/embed/{record['slug']}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("url", ["/embed/{slug}", "/embed/latest", "/oembed?url=" + SITE + "/articles/{slug}"])
def test_embeds_answer_conditional_requests_as_every_document_does(client, record, url):
    """The one conditional-GET path (feedsvc.web.http): a tag of any encoding, weak or strong, or an
    If-None-Match listing several, is current; an If-Modified-Since alone decides nothing without a date."""
    url = url.format(slug=record["slug"])
    first = client.get(url)
    tag = first.headers["ETag"].strip('"')
    assert first.headers["Cache-Control"] == "public, max-age=300" and "Accept-Encoding" in first.headers["Vary"]
    for header in (f'"{tag}-gzip"', f'W/"{tag}"', f'"other", "{tag}-br"'):
        again = client.get(url, headers={"If-None-Match": header})
        assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", first.headers["ETag"]), header
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_unknown_card_is_a_small_404_page(client):
    response = client.get("/embed/no-such-article")
    assert response.status_code == 404 and by_class(page(response), "message")


def test_withdrawn_card_is_410(client, api_headers, record):
    client.delete(f"/api/articles/{record['id']}", headers=api_headers)
    response = client.get(f"/embed/{record['slug']}")
    assert response.status_code == 410 and "हटा" in by_class(page(response), "message")[0].text_content()


def test_old_slug_redirects_to_the_new_card(client, api_headers, record):
    put_record(client, api_headers, dict(record, slug="renamed-slug", updated="2025-07-23T16:00:00+05:30"))
    response = client.get(f"/embed/{record['slug']}")
    assert response.status_code == 301 and response.headers["Location"].endswith("/embed/renamed-slug")


# ---- the headline widget ---------------------------------------------------------------------------

@pytest.fixture
def several(client, api_headers, make_record):
    titles = []
    for day in range(1, 8):
        section = {"key": "sports", "name": "खेल"} if day % 2 else {"key": "national", "name": "देश"}
        record = make_record(id=f"w-{day}", slug=f"widget-story-{day}", title=f"ख़बर नंबर {day}", section=section,
                             published=f"2025-08-0{day}T09:00:00+05:30", updated=f"2025-08-0{day}T09:00:00+05:30")
        put_record(client, api_headers, record)
        titles.append((section["key"], record["title"]))
    return titles


def widget_titles(response):
    return [a.text_content() for a in page(response).xpath("//ol[@class='latest-list']//a")]


def test_widget_lists_newest_headlines_of_a_section(client, several):
    response = client.get("/embed/latest?section=sports&limit=3")
    assert response.status_code == 200
    assert widget_titles(response) == ["ख़बर नंबर 7", "ख़बर नंबर 5", "ख़बर नंबर 3"]
    assert by_class(page(response), "latest-head")[0].text_content() == "समाचार दर्पण: खेल की ताज़ा ख़बरें"
    assert directives(response)["frame-ancestors"] == ["*"]


def test_widget_without_section_lists_the_whole_site(client, several):
    assert widget_titles(client.get("/embed/latest")) == [f"ख़बर नंबर {d}" for d in (7, 6, 5, 4, 3)]


def test_widget_links_open_in_a_new_tab(client, several):
    for link in page(client.get("/embed/latest")).xpath(".//a"):
        assert link.get("target") == "_blank" and "noopener" in link.get("rel").split()


def test_widget_unknown_section_is_404(client, several):
    assert client.get("/embed/latest?section=nowhere").status_code == 404


@pytest.mark.parametrize("limit", ["0", "21", "many", "-1"])
def test_widget_bad_limit_is_400(client, limit):
    assert client.get(f"/embed/latest?limit={limit}").status_code == 400


def test_snippet_is_a_sandboxed_iframe_with_a_readable_fallback(app):
    with app.test_request_context():
        snippet = widget_snippet("sports", "खेल", limit=8)
    iframe, blockquote = lxml.html.fragments_fromstring(snippet)
    assert iframe.tag == "iframe" and iframe.get("src") == f"{SITE}/embed/latest?section=sports&limit=8"
    sandbox = set(iframe.get("sandbox").split())
    assert sandbox == {"allow-popups", "allow-popups-to-escape-sandbox"}
    assert "allow-top-navigation" not in iframe.get("sandbox") and "allow-scripts" not in sandbox
    assert blockquote.tag == "blockquote"
    links = {a.get("href"): a.text_content() for a in blockquote.xpath(".//a")}
    assert links == {f"{SITE}/": "समाचार दर्पण: खेल की ताज़ा ख़बरें", f"{SITE}/feeds/section/sports/rss.xml": "RSS"}
    assert "<script" not in snippet


def test_snippet_for_the_whole_site(app):
    with app.test_request_context():
        iframe, blockquote = lxml.html.fragments_fromstring(widget_snippet())
    assert iframe.get("src") == f"{SITE}/embed/latest"
    feeds = [a.get("href") for a in blockquote.xpath(".//a") if a.text_content() == "RSS"]
    assert feeds == [f"{SITE}/feeds/rss.xml"]


def test_the_snippets_feed_links_are_feeds_the_app_serves(sample_app, sample_client):
    with sample_app.test_request_context():
        snippets = [widget_snippet(), widget_snippet("sports", "खेल")]
    for snippet in snippets:
        _, blockquote = lxml.html.fragments_fromstring(snippet)
        (href,) = [a.get("href") for a in blockquote.xpath(".//a") if a.text_content() == "RSS"]
        answer = sample_client.get(href.removeprefix(SITE))
        assert answer.status_code == 200 and answer.mimetype == "application/rss+xml", href


def test_oembed_discovery_template_global(app):
    with app.test_request_context():
        html = render_template_string("{{ oembed_discovery(url) }}", url=f"{SITE}/articles/x")
    types = [link.get("type") for link in lxml.html.fragments_fromstring(html)]
    assert types == ["application/json+oembed", "text/xml+oembed"]


def test_feeds_page_shows_the_snippet_as_text_to_copy(client, several):
    doc = page(client.get("/feeds"))
    shown = [code.text_content() for code in doc.xpath("//pre/code") if "<iframe" in code.text_content()]
    assert len(shown) == 1 and not doc.xpath("//pre/code//iframe")
    iframe, blockquote = lxml.html.fragments_fromstring(shown[0])
    assert iframe.get("src") == f"{SITE}/embed/latest" and blockquote.tag == "blockquote"


# ---- dates with their year, the site's font face, names in Hindi order -----------------------------

IST = timezone(timedelta(hours=5, minutes=30))


def test_widget_date_shows_the_year_only_when_it_is_not_this_year(app):
    with app.test_request_context():
        now = datetime(2025, 8, 1, 12, 0, tzinfo=IST)
        assert widget_date(datetime(2025, 7, 23, 15, 30, tzinfo=IST), now) == "23 जुलाई, 3:30 दोपहर IST"
        assert widget_date(datetime(2024, 10, 15, 9, 0, tzinfo=IST), now) == "15 अक्टूबर 2024, 9:00 सुबह IST"
        # The year as the publication's readers count it: 31 December 23:00 UTC is already 1 January in India.
        new_year = datetime(2025, 1, 1, 0, 30, tzinfo=IST)
        assert "2024" not in widget_date(datetime(2024, 12, 31, 19, 30, tzinfo=timezone.utc), new_year)


def test_widget_dates_of_another_year_carry_it(client, api_headers, make_record):
    now = datetime.now(IST).replace(microsecond=0)
    last_year = now.replace(year=now.year - 1, month=10, day=15)
    for name, moment in (("this-year", now - timedelta(minutes=5)), ("last-year", last_year)):
        put_record(client, api_headers, make_record(id=name, slug=name, published=moment.isoformat(),
                                                    updated=moment.isoformat()))
    doc = page(client.get("/embed/latest"))
    dates = {li.xpath(".//a/@href")[0].rsplit("/", 1)[1]: li.xpath(".//time")[0].text_content()
             for li in doc.xpath("//ol[@class='latest-list']/li")}
    assert str(now.year - 1) in dates["last-year"]
    assert not re.search(r"\b\d{4}\b", dates["this-year"]), dates["this-year"]


def font_urls(css: str) -> list[str]:
    return re.findall(r'url\("([^"]+)"\)', css[css.index("@font-face"):])


@pytest.mark.parametrize("url", ["/embed/{slug}", "/embed/latest", "/feeds"])
def test_embeds_and_the_feeds_page_serve_the_sites_devanagari_face(client, record, url):
    response = client.get(url.format(slug=record["slug"]))
    css = "".join(page(response).xpath("//style/text()"))
    assert "@font-face" in css and 'font-family: "Noto Sans Devanagari"' in css
    urls = font_urls(css)
    assert urls == ["/static/fonts/NotoSansDevanagari-Regular.ttf", "/static/fonts/NotoSansDevanagari-Bold.ttf"]
    for font in urls:
        served = client.get(font)
        assert served.status_code == 200 and served.get_data()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    if url.startswith("/embed"):
        assert directives(response)["font-src"] == ["'self'"]


HINDI_ORDER = ["अमित", "आरती", "कमल", "विकास", "सुनीता"]


@pytest.fixture
def hindi_names(engine):
    """Authors and sections whose Latin keys sort otherwise than their Hindi names."""
    keys = {"amit": "अमित", "zaarti": "आरती", "b-kamal": "कमल", "vikas": "विकास", "sunita": "सुनीता"}
    with engine.begin() as conn:
        store.record_changes(conn, {**{f"author:{k}": n for k, n in keys.items()},
                                    **{f"section:{k}": n for k, n in keys.items()}}, datetime(2025, 7, 1))


def test_feeds_page_lists_sections_and_authors_in_hindi_order(client, hindi_names):
    doc = page(client.get("/feeds"))
    for kind in ("section", "author"):
        names = [li.xpath("./span[1]")[0].text_content() for li in doc.xpath(f"//li[starts-with(@id, '{kind}-')]")]
        assert names == HINDI_ORDER, kind
    names = [li.xpath("./span[1]")[0].text_content()
             for li in page(client.get("/feeds/author")).xpath("//li[starts-with(@id, 'author-')]")]
    assert names == HINDI_ORDER


def test_opml_lists_them_in_hindi_order_too(client, hindi_names):
    opml = etree.fromstring(client.get("/feeds.opml").data)
    for kind in ("section", "author"):
        urls = [o.get("xmlUrl") for o in opml.iter("outline") if f"/feeds/{kind}/" in o.get("xmlUrl", "")]
        keys = [url.split("/")[-2] for url in urls]
        assert keys == ["amit", "zaarti", "b-kamal", "vikas", "sunita"], kind
