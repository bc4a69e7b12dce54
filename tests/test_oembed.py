"""oEmbed 1.0 provider: JSON and XML responses checked against the spec's fields, types, sizes and errors."""
import io
import json
from urllib.parse import parse_qs, quote, urlsplit

import lxml.html
import pytest
from lxml import etree
from PIL import Image

from feedsvc.render import oembed
from tests.support.records import put_record

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

SITE = "http://news.example"
SPEC_KEYS = {"type", "version", "title", "author_name", "author_url", "provider_name", "provider_url",
             "cache_age", "thumbnail_url", "thumbnail_width", "thumbnail_height", "html", "width", "height"}
INT_KEYS = {"cache_age", "thumbnail_width", "thumbnail_height", "width", "height"}


def ask(client, url, **params):
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in {"url": url, **params}.items())
    return client.get(f"/oembed?{query}")


def article_url(record, kind="articles"):
    return f"{SITE}/{kind}/{record['slug']}"


def xml_values(body: bytes) -> dict:
    root = etree.fromstring(body)
    assert root.tag == "oembed"
    return {child.tag: child.text for child in root}


def test_json_response_has_the_spec_fields_and_types(client, record):
    response = ask(client, article_url(record))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = json.loads(response.get_data(as_text=True))
    assert data["version"] == "1.0" and data["type"] == "rich"
    assert set(data) <= SPEC_KEYS and {"html", "width", "height"} <= set(data)
    for key in INT_KEYS & set(data):
        assert type(data[key]) is int and data[key] > 0, key
    assert data["title"] == record["title"]
    assert data["author_name"] == "परीक्षा संवाददाता"
    assert data["author_url"] == f"{SITE}/author/test-reporter"
    assert data["provider_name"] == "समाचार दर्पण" and data["provider_url"] == f"{SITE}/"
    assert data["cache_age"] == 3600


def test_devanagari_is_sent_as_utf8_not_escaped(client, record):
    raw = ask(client, article_url(record)).get_data()
    assert record["title"].encode("utf-8") in raw and b"\\u" not in raw


def test_html_is_a_sandboxed_iframe_of_the_embed_card(client, record):
    data = ask(client, article_url(record)).get_json()
    fragment = lxml.html.fragment_fromstring(data["html"])
    assert fragment.tag == "iframe"
    assert fragment.get("src") == f"{SITE}/embed/{record['slug']}"
    sandbox = set(fragment.get("sandbox").split())
    assert sandbox == {"allow-popups", "allow-popups-to-escape-sandbox"}
    assert int(fragment.get("width")) == data["width"] and int(fragment.get("height")) == data["height"]
    etree.fromstring(data["html"])  # well-formed markup, as the spec asks of rich html


def test_amp_and_https_urls_name_the_same_article(client, record):
    canonical = ask(client, article_url(record)).get_json()
    assert ask(client, article_url(record, "amp")).get_json() == canonical
    assert ask(client, article_url(record).replace("http:", "https:") + "?utm_source=x").get_json() == canonical


def test_xml_response_follows_the_spec_format(client, record):
    response = ask(client, article_url(record), format="xml", maxwidth=400)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    body = response.get_data()
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8' standalone='yes'?>")
    values = xml_values(body)
    as_json = ask(client, article_url(record), format="json", maxwidth=400).get_json()
    assert values == {k: str(v) for k, v in as_json.items()}
    assert lxml.html.fragment_fromstring(values["html"]).tag == "iframe"  # html travels as escaped text


@pytest.mark.parametrize("maxwidth,maxheight", [(None, None), (300, None), (None, 200), (120, 90), (2000, 2000)])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_sizes_never_exceed_maxwidth_and_maxheight(client, record, fmt, maxwidth, maxheight):
    params = {"format": fmt, **({"maxwidth": maxwidth} if maxwidth else {}),
              **({"maxheight": maxheight} if maxheight else {})}
    response = ask(client, article_url(record), **params)
    data = response.get_json() if fmt == "json" else {k: int(v) if k in INT_KEYS else v
                                                      for k, v in xml_values(response.get_data()).items()}
    for limit, keys in ((maxwidth, ("width", "thumbnail_width")), (maxheight, ("height", "thumbnail_height"))):
        for key in keys:
            if limit and key in data:
                assert data[key] <= limit, (key, data[key], limit)
    thumbnail_keys = {"thumbnail_url", "thumbnail_width", "thumbnail_height"} & set(data)
    assert thumbnail_keys in (set(), {"thumbnail_url", "thumbnail_width", "thumbnail_height"})


def test_thumbnail_is_the_lead_image_when_it_fits(client, record):
    data = ask(client, article_url(record)).get_json()
    assert (data["thumbnail_url"], data["thumbnail_width"], data["thumbnail_height"]) == (
        f"{SITE}/media/test.jpg", 1200, 675)


def served_image_size(client, url: str) -> tuple[int, int]:
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.get_data())) as image:
        return image.size


def test_without_a_lead_image_that_fits_the_thumbnail_is_the_site_logo_at_its_real_size(
        client, api_headers, make_record, record):
    put_record(client, api_headers, make_record(id="no-image", slug="no-image", image=None))
    for url, params in ((f"{SITE}/articles/no-image", {}), (article_url(record), {"maxwidth": 600})):
        data = ask(client, url, **params).get_json()
        assert data["thumbnail_url"] == f"{SITE}/static/logo.png"
        assert (data["thumbnail_width"], data["thumbnail_height"]) == served_image_size(client, data["thumbnail_url"])


def test_no_thumbnail_when_nothing_fits_or_the_logo_size_is_unknown(app, client, api_headers, make_record):
    put_record(client, api_headers, make_record(id="no-image", slug="no-image", image=None))
    data = ask(client, f"{SITE}/articles/no-image", maxwidth=100).get_json()  # the logo is 144px wide
    assert not {"thumbnail_url", "thumbnail_width", "thumbnail_height"} & set(data)
    app.config["SITE_LOGO"] = "https://cdn.example/logo.png"  # not ours to measure
    assert "thumbnail_url" not in ask(client, f"{SITE}/articles/no-image").get_json()


def test_author_url_is_the_authors_page_on_the_site(client, record):
    author_url = ask(client, article_url(record)).get_json()["author_url"]
    assert urlsplit(author_url).path == "/author/test-reporter"
    response = client.get(urlsplit(author_url).path)
    assert response.status_code == 200 and response.mimetype == "text/html"


def test_article_without_image_still_embeds(client, api_headers, make_record):
    record = make_record(id="no-image", slug="no-image", image=None)
    put_record(client, api_headers, record)
    data = ask(client, article_url(record)).get_json()
    assert data["height"] == oembed.CARD_TEXT_HEIGHT


@pytest.mark.parametrize("url", [
    f"{SITE}/articles/no-such-article",
    "http://elsewhere.example/articles/monsoon-session-begins",
    f"{SITE}/feeds/rss.xml",
    f"{SITE}/articles/",
    "javascript:alert(1)",
])
def test_unknown_url_is_404(client, record, url):
    response = ask(client, url)
    assert response.status_code == 404 and "error" in response.get_json()


def test_withdrawn_article_is_404(client, api_headers, record):
    assert client.delete(f"/api/articles/{record['id']}", headers=api_headers).status_code == 200
    assert ask(client, article_url(record)).status_code == 404


def test_renamed_article_embeds_under_its_new_slug(client, api_headers, record):
    put_record(client, api_headers, dict(record, slug="monsoon-session-renamed", updated="2025-08-01T10:00:00+05:30"))
    data = ask(client, article_url(record)).get_json()
    assert "/embed/monsoon-session-renamed" in data["html"]


@pytest.mark.parametrize("fmt", ["yaml", "JSON", "html"])
def test_unsupported_format_is_501(client, record, fmt):
    assert ask(client, article_url(record), format=fmt).status_code == 501


@pytest.mark.parametrize("params", [{"maxwidth": "wide"}, {"maxheight": "0"}, {"maxwidth": "-5"}])
def test_malformed_size_is_400(client, record, params):
    assert ask(client, article_url(record), **params).status_code == 400


def test_missing_url_is_400(client):
    assert client.get("/oembed").status_code == 400


def test_conditional_request_gets_304(client, record):
    first = ask(client, article_url(record))
    again = client.get(f"/oembed?url={quote(article_url(record), safe='')}",
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_discovery_links_point_at_the_endpoint_with_url_and_format_only():
    links = lxml.html.fragments_fromstring(str(oembed.discovery_links(f"{SITE}/articles/x-y", SITE, "शीर्षक")))
    assert [(link.get("rel"), link.get("type")) for link in links] == [
        ("alternate", "application/json+oembed"), ("alternate", "text/xml+oembed")]
    for link, fmt in zip(links, ("json", "xml"), strict=True):
        href = urlsplit(link.get("href"))
        assert f"{href.scheme}://{href.netloc}{href.path}" == f"{SITE}/oembed"
        assert parse_qs(href.query) == {"url": [f"{SITE}/articles/x-y"], "format": [fmt]}
        assert link.get("title") == "शीर्षक"


def test_discovery_link_leads_to_a_working_response(client, record):
    link = lxml.html.fragments_fromstring(str(oembed.discovery_links(article_url(record), SITE)))[1]
    href = urlsplit(link.get("href"))
    response = client.get(f"{href.path}?{href.query}")
    assert response.status_code == 200 and xml_values(response.get_data())["title"] == record["title"]


@pytest.mark.parametrize("url,slug", [
    (f"{SITE}/articles/abc", "abc"), (f"{SITE}/amp/abc/", "abc"), ("https://NEWS.example/articles/abc#x", "abc"),
    (f"{SITE}/articles/abc/def", None), (f"{SITE}/articles", None), ("ftp://news.example/articles/abc", None),
])
def test_slug_from_url(url, slug):
    assert oembed.slug_from_url(url, SITE) == slug


def test_site_under_a_path_prefix():
    assert oembed.slug_from_url("https://x.example/hindi/articles/abc", "https://x.example/hindi") == "abc"
    assert oembed.slug_from_url("https://x.example/articles/abc", "https://x.example/hindi") is None


def test_article_page_announces_its_oembed_endpoint(app, client, record):
    if "pages" not in app.blueprints:
        pytest.skip("the article pages (feedsvc/web/pages.py) are not registered yet")
    page = lxml.html.document_fromstring(client.get(f"/articles/{record['slug']}").get_data(as_text=True))
    links = {link.get("type"): link.get("href") for link in page.xpath("//head/link[@rel='alternate']")}
    for fmt, mimetype in (("json", "application/json+oembed"), ("xml", "text/xml+oembed")):
        href = urlsplit(links[mimetype])
        assert parse_qs(href.query) == {"url": [article_url(record)], "format": [fmt]}
        assert client.get(f"{href.path}?{href.query}").status_code == 200
