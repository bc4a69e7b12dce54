"""Devanagari in URL fields: every output writes a URI (RFC 3987 §3.1), people still read Devanagari.

The W3C Feed Validation Service reports "IRI found where URL expected" for a raw non-ASCII URL in
link, guid, media:content, img src, Atom author/uri or JSON Feed url; HTML pages, AMP and oEmbed
get the same URIs. Entry ids are minted from the record id, never from its URL, so they stay
byte for byte what they were.
"""
from __future__ import annotations

import copy
import json
from unittest import mock
from urllib.parse import quote

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.ingest import sanitize
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.sanitize import sanitize_html
from feedsvc.ingest.urls import uri
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD, put_record

ARTICLE_URL = "https://news.example.in/समाचार/बाढ़-से-हाल-बेहाल?स्रोत=फ़ीड"
IMAGE_URL = "https://news.example.in/चित्र/बाढ़-2025.jpg"
AUTHOR_URL = "https://सरकार.भारत/लेखक/राहुल"
EMBED_URL = "https://www.google.com/maps/place/गुवाहाटी"


@pytest.mark.parametrize("iri, expected", [
    ("https://e.example/समाचार", "https://e.example/%E0%A4%B8%E0%A4%AE%E0%A4%BE%E0%A4%9A%E0%A4%BE%E0%A4%B0"),
    ("https://सरकार.भारत/", "https://xn--11b7cb3a6a.xn--h2brj9c/"),
    ("https://सरकार.भारत:8443/a", "https://xn--11b7cb3a6a.xn--h2brj9c:8443/a"),
    ("https://e.example/a b?q=क#ख", "https://e.example/a%20b?q=%E0%A4%95#%E0%A4%96"),
    ("https://e.example/%E0%A4%95/50%", "https://e.example/%E0%A4%95/50%25"),  # an escape kept, a stray % encoded
    ('https://e.example/"<x>"', "https://e.example/%22%3Cx%3E%22"),
])
def test_an_iri_maps_to_the_uri_of_rfc_3987(iri, expected):
    assert uri(iri) == expected
    assert uri(expected) == expected  # mapping a URI again changes nothing


@pytest.mark.parametrize("url", ["https://news.example/articles/a-b?x=1&y=%20#top", "http://[::1]:8080/p"])
def test_an_ascii_uri_is_returned_unchanged(url):
    assert uri(url) is url


def test_body_links_are_uris_and_relative_links_resolve_against_the_article():
    body = sanitize_html('<a href="relative/page.html">एक</a><a href="../ऊपर.html">दो</a><img src="चित्र.jpg">',
                         "https://news.example.in/राज्य/असम/बाढ़.html")
    root = lxml.html.fragment_fromstring(body, create_parent="div")
    assert [a.get("href") for a in root.iter("a")] == [
        "https://news.example.in/%E0%A4%B0%E0%A4%BE%E0%A4%9C%E0%A5%8D%E0%A4%AF/%E0%A4%85%E0%A4%B8%E0%A4%AE/"
        "relative/page.html",
        "https://news.example.in/%E0%A4%B0%E0%A4%BE%E0%A4%9C%E0%A5%8D%E0%A4%AF/%E0%A4%8A%E0%A4%AA%E0%A4%B0.html"]
    assert root.find("img").get("src") == uri("https://news.example.in/राज्य/असम/चित्र.jpg")


def test_a_record_without_its_own_url_resolves_relative_links_against_its_page_here():
    record = copy.deepcopy(VALID_RECORD)
    record.update(body_html='<p><a href="relative/page.html">आगे</a></p>')
    record.pop("url", None)
    article = parse_record(record, site_url=SITE_URL)
    href = lxml.html.fragment_fromstring(article.body_html, create_parent="div").find(".//a").get("href")
    assert href == "/articles/relative/page.html"  # a site path, made absolute per document


# URLs whose resolution reads none, some or all of the base (sanitize._base_needed), and bases on and off site.
_LINKS = ["https://e.example/a", "HTTPS://E.example/x/../y", "https:foo", "mailto:a@e.example", "/media/x.jpg",
          "/", "//cdn.example/y", "/\\cdn.example/y", "/\t/cdn.example", " /x", "x.html", "../ऊपर.html", "?q=1",
          "#top", "", "चित्र.jpg", "/चित्र.jpg", "a:b", "1a:b", "javascript:alert(1)"]
_BASES = ["/articles/baadh", "/articles/a/b/", "https://news.example.in/राज्य/असम/बाढ़.html",
          "http://news.example:8080/p?q=1#f"]


@settings(deadline=None)  # examples: the profile (tests/conftest.py)
@given(st.lists(st.tuples(st.sampled_from(["a href", "img src", "video poster", "source src", "blockquote cite"]),
                          st.sampled_from(_LINKS)), max_size=4),
       st.sampled_from(_BASES))
def test_relative_links_resolve_as_against_a_cleaner_of_the_article_s_own_base(links, base):
    """sanitize cleans against one shared base and again against the article's only when a link needs it."""
    body = "".join(f'<p><{tag.split()[0]} {tag.split()[1]}="{link}">t</{tag.split()[0]}></p>' for tag, link in links)
    expected_with = mock.patch.object(sanitize, "_clean", lambda text, own, on_site: sanitize._cleaner(own).clean(text))
    with expected_with:
        expected = sanitize_html(body, base)
    assert sanitize_html(body, base) == expected


# ---- every output of a record with Devanagari URL fields ------------------------------------------

@pytest.fixture
def stored(client, api_headers):
    record = copy.deepcopy(VALID_RECORD)
    record.update(url=ARTICLE_URL, image={"url": IMAGE_URL, "width": 1200, "height": 800, "caption": "बाढ़"},
                  authors=[{"key": "rahul", "name": "राहुल", "url": AUTHOR_URL}],
                  embeds=[{"provider": "other", "url": EMBED_URL, "title": "नक्शा"}],
                  body_html='<p>पाठ <a href="https://news.example.in/पिछली-ख़बर">पिछली ख़बर</a></p>')
    put_record(client, api_headers, record)
    return record


def _is_uri(value: str) -> bool:
    return value.isascii() and " " not in value and '"' not in value


def _urls_in_html(fragment: str) -> list[str]:
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return [e.get(name) for e in root.iter() for name in ("href", "src", "poster", "cite") if e.get(name)]


XML_URL_ELEMENTS = {"link", "uri", "url", "comments", "docs", "icon", "logo"}


@pytest.mark.parametrize("path", ["/feeds/rss.xml", "/feeds/atom.xml"])
def test_xml_feeds_write_every_url_as_a_uri(client, stored, path):
    root = etree.fromstring(client.get(path).data)
    urls, contents = [], []
    for element in root.iter(etree.Element):
        name = etree.QName(element).localname
        urls += [v for k, v in element.attrib.items() if etree.QName(k).localname in ("href", "url", "src", "uri")]
        if name in XML_URL_ELEMENTS and element.text and element.text.strip():
            urls.append(element.text.strip())
        if name in ("encoded", "content") and element.text:
            contents.append(element.text)
    urls += [u for html in contents for u in _urls_in_html(html)]
    assert uri(ARTICLE_URL) in urls and uri(IMAGE_URL) in urls
    assert [u for u in urls if not _is_uri(u)] == []


def test_atom_author_uri_and_ids_are_as_before(client, stored):
    root = etree.fromstring(client.get("/feeds/atom.xml").data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert root.xpath("//a:entry/a:author/a:uri/text()", namespaces=ns) == [uri(AUTHOR_URL)]
    # The id comes from the record id, so the Devanagari URL leaves it exactly as any other entry's.
    assert root.xpath("//a:entry/a:id/text()", namespaces=ns) == [f"tag:news.example,2025:articles/{stored['id']}"]
    assert root.xpath("//a:entry/a:title/text()", namespaces=ns) == [stored["title"]]


def test_json_feed_writes_every_url_as_a_uri(client, stored):
    item = json.loads(client.get("/feeds/feed.json").data)["items"][0]
    assert item["url"] == uri(ARTICLE_URL)
    assert item["authors"][0]["url"] == uri(AUTHOR_URL)
    assert all(_is_uri(u) for u in _urls_in_html(item["content_html"]))
    assert item["id"] == f"tag:news.example,2025:articles/{stored['id']}"


def test_pages_write_uris_and_show_devanagari_text(client, stored):
    page = lxml.html.document_fromstring(client.get(f"/articles/{stored['slug']}").data)
    assert page.find(".//link[@rel='canonical']").get("href") == uri(ARTICLE_URL)
    og = {m.get("property"): m.get("content") for m in page.iter("meta") if m.get("property")}
    assert og["og:url"] == uri(ARTICLE_URL) and og["og:image"] == uri(IMAGE_URL)
    json_ld = json.loads(page.find(".//script[@type='application/ld+json']").text)
    assert json_ld["mainEntityOfPage"]["@id"] == uri(ARTICLE_URL) and json_ld["image"] == [uri(IMAGE_URL)]
    assert json_ld["author"][0]["url"] == uri(AUTHOR_URL)
    story = page.find(".//article")
    assert all(_is_uri(u) for e in story.iter() for u in (e.get("href"), e.get("src")) if u)
    assert "पिछली ख़बर" in story.text_content() and stored["title"] in story.text_content()


def test_amp_page_writes_uris(client, stored):
    page = lxml.html.document_fromstring(client.get(f"/amp/{stored['slug']}").data)
    assert page.find(".//link[@rel='canonical']").get("href") == uri(ARTICLE_URL)
    urls = [u for e in page.find(".//body").iter() for u in (e.get("href"), e.get("src")) if u]
    assert uri(IMAGE_URL) in urls and [u for u in urls if not _is_uri(u)] == []


def test_oembed_writes_uris(client, stored):
    url = f"{SITE_URL}/articles/{stored['slug']}"
    response = json.loads(client.get(f"/oembed?url={quote(url, safe='')}&format=json").data)
    assert response["thumbnail_url"] == uri(IMAGE_URL) and response["author_url"] == uri(AUTHOR_URL)
