"""Canonical article pages, listings, and their 301/404/410 answers and caching (web/pages.py, render/pages.py)."""
import json
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import urlsplit

import lxml.html
import pytest

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.render import pages
from feedsvc.render.links import resolved
from feedsvc.validate import validate_document
from tests.support.apps import SITE_URL as SITE
from tests.support.records import sample_image_settings, sample_records

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

# As pages show them: site paths under SITE (the store keeps them as paths).
SAMPLES = [resolved(parse_record(r, site_url=SITE, images=sample_image_settings()), SITE) for r in sample_records()]
LIVE = [a for a in SAMPLES if a.live]
DRAFT = next(a for a in SAMPLES if a.status == "draft")
WITH_CORRECTION = next(a for a in LIVE if a.corrections)
WITH_EMBEDS = {provider: next(a for a in LIVE if any(e["provider"] == provider for e in a.embeds))
               for provider in ("youtube", "twitter", "instagram", "vimeo")}
NEWS_ARTICLE_REQUIRED = ("headline", "image", "datePublished", "dateModified", "author", "publisher")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def put(client, api_headers, record):
    response = client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def doc(response):
    return lxml.html.document_fromstring(response.get_data(as_text=True))


def json_ld(document) -> dict:
    (script,) = document.xpath("//script[@type='application/ld+json']")
    return json.loads(script.text)


class _TagBalance(HTMLParser):
    """Every element opened is closed, in order (our templates and the sanitiser close everything)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open, self.problems = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag):
        if tag in VOID:
            self.problems.append(f"line {self.getpos()[0]}: end tag for the void element {tag}")
        elif not self.open or self.open[-1][0] != tag:
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes {self.open[-1] if self.open else 'nothing'}")
        else:
            self.open.pop()


def unbalanced(html: str) -> list[str]:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    return parser.problems + [f"<{tag}> from line {line} is never closed" for tag, line in parser.open]


# ---- every sample article ------------------------------------------------------------------------

@pytest.mark.parametrize("article", LIVE, ids=lambda a: a.id)
def test_every_canonical_page_is_well_formed_html5_with_a_news_article(sample_client, article):
    url = f"{SITE}/articles/{article.slug}"
    response = sample_client.get(url)
    assert response.status_code == 200 and response.content_type == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    assert html.startswith("<!doctype html>\n<html lang=\"hi\">")
    assert validate_document(response.data, "html", url=url) == []
    assert unbalanced(html) == []
    assert article.title.replace("&", "&amp;") in html  # Devanagari as characters, never as &#...; escapes

    data = json_ld(doc(response))
    assert data["@context"] == "https://schema.org" and data["@type"] == "NewsArticle"
    assert all(data.get(name) for name in NEWS_ARTICLE_REQUIRED)
    assert data["headline"] == article.title and data["mainEntityOfPage"]["@id"] == url
    assert datetime.fromisoformat(data["datePublished"]) == article.published
    assert data["publisher"]["logo"]["url"] == f"{SITE}/static/logo.png"
    # The lead image's 16x9, 4x3 and 1x1 renditions (tests/test_images.py decodes them).
    assert data["image"] == pages.structured_data_images(article.image) and len(data["image"]) == 3
    assert [a["name"] for a in data["author"]] == [a.name for a in article.authors]


# ---- one article, in detail ----------------------------------------------------------------------

@pytest.fixture
def article(client, api_headers, make_record):
    record = make_record(
        published="2025-07-23T15:30:00+05:30", updated="2025-07-23T18:05:00+05:30",
        authors=[{"key": "test-reporter", "name": "परीक्षा संवाददाता"}, {"key": "second", "name": "दूसरी लेखिका"}],
        tags=[{"key": "parliament", "name": "संसद"}, {"key": "monsoon-session", "name": "मानसून सत्र"}],
        embeds=[{"provider": "youtube", "url": "https://www.youtube.com/watch?v=Hq2aIch4tB0", "title": "सत्र का वीडियो"},
                {"provider": "twitter", "url": "https://x.com/desk/status/1929512345678901234", "title": "पोस्ट"},
                {"provider": "vimeo", "url": "https://vimeo.com/1012345678"}],
        corrections=[{"date": "2025-07-23T18:05:00+05:30", "text": "पहले संस्करण में तारीख़ ग़लत थी।"}])
    put(client, api_headers, record)
    return record


def test_hindi_date_uses_babel_month_and_part_of_day_with_the_newsroom_zone():
    moment = datetime(2025, 7, 23, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert pages.hindi_datetime(moment) == "23 जुलाई 2025, 3:30 दोपहर IST"
    # A UTC time is shown in India's time; morning and night have their own words.
    assert pages.hindi_datetime(datetime(2025, 1, 5, 3, 15, tzinfo=timezone.utc)) == "5 जनवरी 2025, 8:45 सुबह IST"
    assert pages.hindi_datetime(datetime(2025, 1, 5, 17, 0, tzinfo=timezone.utc)) == "5 जनवरी 2025, 10:30 रात IST"
    # Remembered by instant: the same instant in another offset reads the same, the next minute does not.
    assert pages.hindi_datetime(datetime(2025, 1, 5, 22, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))) \
        == "5 जनवरी 2025, 10:30 रात IST"
    assert pages.hindi_datetime(datetime(2025, 1, 5, 17, 1, tzinfo=timezone.utc)) == "5 जनवरी 2025, 10:31 रात IST"


def test_page_shows_headline_summary_byline_and_dates_for_people_and_machines(client, article):
    page = doc(client.get(f"/articles/{article['slug']}"))
    assert page.xpath("//h1")[0].text_content() == article["title"]
    assert page.find_class("summary")[0].text_content() == article["summary"]
    published, updated = page.xpath("//p[@class='dates']/time")
    assert (published.get("datetime"), published.text) == ("2025-07-23T15:30:00+05:30", "23 जुलाई 2025, 3:30 दोपहर IST")
    assert (updated.get("datetime"), updated.text) == ("2025-07-23T18:05:00+05:30", "23 जुलाई 2025, 6:05 शाम IST")
    byline = page.find_class("byline")[0]
    assert [(a.text, a.get("href")) for a in byline.xpath("a[@rel='author']")] == [
        ("परीक्षा संवाददाता", f"{SITE}/author/test-reporter"), ("दूसरी लेखिका", f"{SITE}/author/second")]
    assert [a.get("href") for a in byline.find_class("feed")] == [
        f"{SITE}/feeds/author/test-reporter/rss.xml", f"{SITE}/feeds/author/second/rss.xml"]


def test_no_update_line_when_the_article_was_not_changed(client, api_headers, make_record):
    record = make_record()
    put(client, api_headers, record)
    page = doc(client.get(f"/articles/{record['slug']}"))
    assert len(page.xpath("//p[@class='dates']/time")) == 1 and "अपडेट" not in page.find_class("dates")[0].text_content()


def test_lead_image_has_size_caption_and_credit(client, article):
    figure = doc(client.get(f"/articles/{article['slug']}")).find_class("lead")[0]
    image = figure.find("picture/img")
    assert (image.get("src"), image.get("width"), image.get("height")) == (f"{SITE}/media/test.jpg", "1200", "675")
    assert image.get("alt") == "संसद भवन"
    assert figure.find("figcaption").text_content() == "संसद भवन (फ़ोटो: फ़ाइल)"


def test_embeds_youtube_without_cookies_and_posts_as_links_without_third_party_script(client, article):
    page = doc(client.get(f"/articles/{article['slug']}"))
    (frame,) = page.xpath("//figure[contains(@class, 'embed-video')]//iframe")
    assert frame.get("src") == "https://www.youtube-nocookie.com/embed/Hq2aIch4tB0"
    assert frame.get("loading") == "lazy" and frame.get("title") == "सत्र का वीडियो"
    (post,) = page.xpath("//blockquote[contains(@class, 'embed-post')]")
    assert post.get("cite") == "https://x.com/desk/status/1929512345678901234"
    assert post.xpath(".//a/@href") == ["https://x.com/desk/status/1929512345678901234"]
    (link,) = page.xpath("//p[contains(@class, 'embed-link')]/a")
    assert link.get("href") == "https://vimeo.com/1012345678"
    assert page.xpath("//script[@src]") == []


@pytest.mark.parametrize("provider, kind", [("youtube", "video"), ("twitter", "post"), ("instagram", "post"),
                                            ("vimeo", "link")])
def test_sample_embeds_are_shown(sample_client, provider, kind):
    article = WITH_EMBEDS[provider]
    page = doc(sample_client.get(f"/articles/{article.slug}"))
    (embed,) = [e for e in article.embeds if e["provider"] == provider]
    assert page.find_class(f"embed-{kind}"), provider
    assert embed["url"] in page.xpath("//*[contains(@class, 'embed')]//a/@href")


def test_corrections_are_shown_with_their_date(sample_client):
    aside = doc(sample_client.get(f"/articles/{WITH_CORRECTION.slug}")).find_class("corrections")[0]
    correction = WITH_CORRECTION.corrections[0]
    assert aside.find("h2").text == "सुधार"
    assert correction["text"] in aside.text_content()
    assert aside.find(".//time").get("datetime") == correction["date"]


def test_section_and_tag_links_and_their_feeds_are_discoverable(client, article):
    page = doc(client.get(f"/articles/{article['slug']}"))
    assert page.find_class("kicker")[0].find("a").get("href") == f"{SITE}/section/national"
    assert page.xpath("//a[@rel='tag']/@href") == [f"{SITE}/tag/parliament", f"{SITE}/tag/monsoon-session"]
    feeds = page.xpath("//head/link[@rel='alternate'][@type='application/rss+xml']/@href")
    assert feeds == [f"{SITE}/feeds/rss.xml", f"{SITE}/feeds/section/national/rss.xml",
                     f"{SITE}/feeds/tag/parliament/rss.xml", f"{SITE}/feeds/tag/monsoon-session/rss.xml",
                     f"{SITE}/feeds/author/test-reporter/rss.xml", f"{SITE}/feeds/author/second/rss.xml",
                     f"{SITE}/feeds/video/rss.xml"]   # the article embeds a YouTube player
    assert len(page.xpath("//head/link[@rel='alternate'][@type='application/atom+xml']")) == 7
    assert len(page.xpath("//head/link[@rel='alternate'][@type='application/feed+json']")) == 7


def test_head_has_canonical_amphtml_open_graph_and_oembed_discovery(client, article):
    url = f"{SITE}/articles/{article['slug']}"
    page = doc(client.get(url))
    assert page.xpath("//head/link[@rel='canonical']/@href") == [url]
    assert page.xpath("//head/link[@rel='amphtml']/@href") == [f"{SITE}/amp/{article['slug']}"]
    og = {}
    for meta in page.xpath("//head/meta[@property]"):
        og.setdefault(meta.get("property"), []).append(meta.get("content"))
    assert og["og:type"] == ["article"] and og["og:title"] == [article["title"]] and og["og:url"] == [url]
    assert og["og:image"] == [f"{SITE}/media/test.jpg"] and og["og:image:width"] == ["1200"]
    assert og["og:locale"] == ["hi_IN"] and og["og:site_name"] == ["समाचार दर्पण"]
    assert og["article:published_time"] == ["2025-07-23T15:30:00+05:30"]
    assert og["article:tag"] == ["संसद", "मानसून सत्र"]
    oembed = page.xpath("//head/link[@type='application/json+oembed']/@href")
    assert len(oembed) == 1 and urlsplit(oembed[0]).path == "/oembed"
    assert page.xpath("//head/meta[@name='viewport']/@content") == ["width=device-width, initial-scale=1"]


def test_every_link_to_our_site_answers(sample_client):
    client = sample_client
    page = doc(client.get(f"/articles/{WITH_CORRECTION.slug}"))
    links = {href for href in page.xpath("//a/@href | //link/@href | //img/@src") if href.startswith(SITE)}
    links |= {SITE + path for path in re.findall(r'url\("(/static/[^"]+)"\)', lxml.html.tostring(page, encoding=str))}
    assert len(links) > 15
    for link in sorted(links):
        assert client.get(link).status_code == 200, link


def test_self_hosted_devanagari_fonts_are_served(client):
    for weight in ("Regular", "Bold"):
        response = client.get(f"/static/fonts/NotoSansDevanagari-{weight}.ttf")
        assert response.status_code == 200 and response.data[:4] == b"\x00\x01\x00\x00"  # a TrueType font
        assert len(response.data) < 300_000


def test_related_articles_are_the_newest_others_of_the_same_section(sample_client):
    article = LIVE[0]
    page = doc(sample_client.get(f"/articles/{article.slug}"))
    related = page.xpath("//section[@class='related']//h3/a/@href")
    same_section = [slug for slug in newest_first(LIVE) if slug != article.slug
                    and next(a for a in LIVE if a.slug == slug).section == article.section]
    assert related == [f"{SITE}/articles/{slug}" for slug in same_section[:pages.RELATED_LIMIT]]


def test_a_newer_article_of_the_section_joins_the_related_articles_of_every_page(client, api_headers, make_record):
    """The section's newest articles are held per state of its counter (web/pages.section_newest): a write
    to the section shows on the next page rendered, one rendered before it included."""
    first = make_record(id="first", slug="first", published="2025-07-20T10:00:00+05:30")
    second = make_record(id="second", slug="second", published="2025-07-21T10:00:00+05:30")
    for record in (first, second):
        put(client, api_headers, record)
    related = lambda slug: doc(client.get(f"/articles/{slug}")).xpath("//section[@class='related']//h3/a/@href")  # noqa: E731
    assert related("first") == [f"{SITE}/articles/second"]
    put(client, api_headers, make_record(id="third", slug="third", published="2025-07-22T10:00:00+05:30"))
    assert related("first") == [f"{SITE}/articles/third", f"{SITE}/articles/second"]
    assert related("second") == [f"{SITE}/articles/third", f"{SITE}/articles/first"]


# ---- what a URL names ----------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["articles", "amp"])
def test_unknown_slug_is_a_hindi_404_page(client, prefix):
    response = client.get(f"/{prefix}/no-such-article")
    assert response.status_code == 404 and response.mimetype == "text/html"
    page = doc(response)
    assert page.get("lang") == "hi" and page.xpath("//h1")[0].text == "यह पन्ना नहीं मिला"
    assert page.xpath("//meta[@name='robots']/@content") == ["noindex"]


@pytest.mark.parametrize("prefix", ["articles", "amp"])
def test_drafts_are_not_public(sample_client, prefix):
    assert sample_client.get(f"/{prefix}/{DRAFT.slug}").status_code == 404


@pytest.mark.parametrize("prefix", ["articles", "amp"])
def test_withdrawn_article_is_410_gone(client, api_headers, article, prefix):
    assert client.delete(f"/api/articles/{article['id']}", headers=api_headers).status_code == 200
    response = client.get(f"/{prefix}/{article['slug']}")
    assert response.status_code == 410
    assert doc(response).xpath("//h1")[0].text == "यह ख़बर हटा ली गई है"


@pytest.mark.parametrize("prefix", ["articles", "amp"])
def test_old_slug_redirects_permanently_to_the_new_one(client, api_headers, article, prefix):
    put(client, api_headers, dict(article, slug="renamed-article", updated="2025-07-24T09:00:00+05:30"))
    response = client.get(f"/{prefix}/{article['slug']}")
    assert response.status_code == 301 and response.location == f"/{prefix}/renamed-article"
    assert client.get(response.location).status_code == 200


# ---- caching ---------------------------------------------------------------------------------------

def test_page_answers_304_until_the_article_or_its_section_changes(client, api_headers, article, make_record):
    url = f"/articles/{article['slug']}"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert first.headers["Last-Modified"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

    # Another section changing does not touch this page.
    put(client, api_headers, make_record(id="other-1", slug="other-1", section={"key": "sports", "name": "खेल"}))
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

    # A new article in the same section changes its related articles.
    put(client, api_headers, make_record(id="same-1", slug="same-1", published="2025-08-02T09:00:00+05:30",
                                         updated="2025-08-02T09:00:00+05:30"))
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "/articles/same-1" in changed.get_data(as_text=True)


def test_amp_page_etag_follows_the_article_version(client, api_headers, article):
    url = f"/amp/{article['slug']}"
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    put(client, api_headers, dict(article, title="नया शीर्षक: सत्र स्थगित", updated="2025-07-24T09:00:00+05:30"))
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and "नया शीर्षक: सत्र स्थगित" in changed.get_data(as_text=True)


def test_pages_are_served_compressed_when_asked(sample_client):
    response = sample_client.get(f"/articles/{LIVE[0].slug}", headers={"Accept-Encoding": "br, gzip"})
    assert response.headers["Content-Encoding"] == "br" and "Accept-Encoding" in response.headers["Vary"]


# ---- listings --------------------------------------------------------------------------------------

def listed(response) -> list[str]:
    return [urlsplit(href).path.rsplit("/", 1)[-1] for href in doc(response).xpath("//li[@class='teaser']//h3/a/@href")]


def newest_first(articles) -> list[str]:
    return [a.slug for a in sorted(articles, key=lambda a: (a.published, a.id), reverse=True)]


def test_home_lists_the_newest_live_articles_and_pages_back(sample_client):
    first = sample_client.get("/")
    assert first.status_code == 200
    assert validate_document(first.data, "html", url=f"{SITE}/") == []
    slugs = listed(first)
    assert slugs == newest_first(LIVE)[:pages.LISTING_LIMIT] and DRAFT.slug not in slugs
    seen = list(slugs)
    next_href = doc(first).xpath("//a[@rel='next']/@href")
    while next_href:
        page = sample_client.get(next_href[0])
        assert page.status_code == 200 and doc(page).xpath("//meta[@name='robots']/@content") == ["noindex, follow"]
        seen += listed(page)
        next_href = doc(page).xpath("//a[@rel='next']/@href")
    assert seen == newest_first(LIVE)


@pytest.mark.parametrize("kind", ["section", "tag", "author"])
def test_scope_page_lists_its_articles_and_links_its_feeds(sample_client, kind):
    article = LIVE[0]
    key = {"section": article.section.key, "tag": article.tags[0].key, "author": article.authors[0].key}[kind]
    members = [a for a in LIVE if f"{kind}:{key}" in store.article_scopes(a)]
    response = sample_client.get(f"/{kind}/{key}")
    assert response.status_code == 200
    assert validate_document(response.data, "html", url=f"{SITE}/{kind}/{key}") == []
    assert listed(response) == newest_first(members)[:pages.LISTING_LIMIT]
    page = doc(response)
    feeds = f"{SITE}/feeds/{kind}/{key}/"
    assert page.xpath("//head/link[@rel='alternate']/@href")[3:] == [feeds + "rss.xml", feeds + "atom.xml",
                                                                     feeds + "feed.json"]
    assert page.find_class("feed-links")[0].xpath("a/@href") == [feeds + "rss.xml", feeds + "atom.xml",
                                                                  feeds + "feed.json"]


@pytest.mark.parametrize("path", ["/section/no-such-section", "/tag/nope", "/author/nobody", "/section/Bad_Key"])
def test_unknown_scope_page_is_404(sample_client, path):
    response = sample_client.get(path)
    assert response.status_code == 404 and doc(response).get("lang") == "hi"


def test_malformed_page_cursor_is_a_400_page(sample_client):
    response = sample_client.get("/?after=yesterday")
    assert response.status_code == 400 and "पन्ने का पता ग़लत है" in response.get_data(as_text=True)


def test_listing_etag_follows_its_scope(client, api_headers, article, make_record):
    etag = client.get("/section/national").headers["ETag"]
    put(client, api_headers, make_record(id="sport-1", slug="sport-1", section={"key": "sports", "name": "खेल"}))
    assert client.get("/section/national", headers={"If-None-Match": etag}).status_code == 304
    put(client, api_headers, make_record(id="national-2", slug="national-2"))
    assert client.get("/section/national", headers={"If-None-Match": etag}).status_code == 200
