"""AMP article pages /amp/<slug> as served: the official validator, the house rules, and what each page holds.

The official validator costs a node start per call, so every sample's page goes to it in one batch
(a module fixture, and one xdist group so that a single worker runs it once).
"""
import json

import lxml.html
import pytest

from feedsvc.ingest.records import parse_record
from feedsvc.render.links import resolved
from feedsvc.validate import validate_document
from feedsvc.validate.amp_rules import check_house_rules
from feedsvc.validate.amp_validator import validate_amp_many
from tests.support.apps import SITE_URL as SITE
from tests.support.records import sample_records

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("amp-pages")]  # the official validator

# As the renderers read them: stored site paths made absolute (render.links.resolved).
LIVE = [resolved(a, SITE) for a in (parse_record(r, site_url=SITE) for r in sample_records()) if a.live]
COMPONENTS = {"youtube": "amp-youtube", "twitter": "amp-twitter", "instagram": "amp-instagram"}


@pytest.fixture(scope="module")
def amp_pages(sample_app):
    """slug -> (page HTML, the official validator's problems), all validated in one run."""
    client = sample_app.test_client()
    documents = {}
    for article in LIVE:
        response = client.get(f"/amp/{article.slug}")
        assert response.status_code == 200 and response.content_type == "text/html; charset=utf-8"
        documents[article.slug] = response.get_data(as_text=True)
    results = validate_amp_many(list(documents.values()))
    return {slug: (html, problems) for (slug, html), problems in zip(documents.items(), results, strict=True)}


def json_ld(html: str) -> dict:
    (script,) = lxml.html.document_fromstring(html).xpath("//script[@type='application/ld+json']")
    return json.loads(script.text)


@pytest.mark.parametrize("article", LIVE, ids=lambda a: a.id)
def test_every_amp_page_passes_the_official_validator_and_the_house_rules(amp_pages, article):
    html, problems = amp_pages[article.slug]
    assert [str(p) for p in problems] == []  # no errors, and no warnings either
    assert check_house_rules(html) == []
    assert validate_document(html.encode("utf-8"), "amp", url=f"{SITE}/amp/{article.slug}") == []


@pytest.mark.parametrize("article", LIVE, ids=lambda a: a.id)
def test_amp_page_points_to_its_canonical_page_and_carries_its_news_article(amp_pages, sample_client, article):
    html, _ = amp_pages[article.slug]
    page = lxml.html.document_fromstring(html)
    assert page.get("lang") == "hi" and "⚡" in page.attrib
    assert page.xpath("//head/link[@rel='canonical']/@href") == [article.url]
    assert page.xpath("//h1")[0].text_content() == article.title
    assert page.xpath("//header[@class='masthead']/a/@href") == [f"{SITE}/"]
    canonical = sample_client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert json_ld(html) == json_ld(canonical)


@pytest.mark.parametrize("article", LIVE, ids=lambda a: a.id)
def test_lead_image_is_a_sized_amp_img_with_a_noscript_fallback(amp_pages, article):
    figure = lxml.html.document_fromstring(amp_pages[article.slug][0]).find_class("lead")[0]
    image = figure.find("amp-img")
    size = (str(article.image["width"]), str(article.image["height"]))
    # The lead rendition ingest made of the image (same file name, 1200×675 like the samples), or the image itself.
    name = article.image["url"].rsplit("/", 1)[1]
    src, shown = image.get("src"), (image.get("width"), image.get("height"))
    if src == article.image["url"]:
        assert shown == size
    else:   # the lead rendition: 16:9, never wider than the image it was cut from
        assert src.startswith(f"{SITE}/media/renditions/lead/") and f"/{name}." in src
        width, height = map(int, shown)
        assert width <= article.image["width"] and abs(width * 9 - height * 16) <= 16
    assert image.get("layout") == "responsive"
    fallback = image.find("noscript/img")
    assert (fallback.get("src"), fallback.get("width"), fallback.get("height")) == (src, *shown)


@pytest.mark.parametrize("article", [a for a in LIVE if a.embeds], ids=lambda a: a.id)
def test_embeds_become_amp_components_with_their_scripts_or_links(amp_pages, article):
    page = lxml.html.document_fromstring(amp_pages[article.slug][0])
    scripts = set(page.xpath("//head/script/@custom-element"))
    for embed in article.embeds:
        component = COMPONENTS.get(embed["provider"])
        if component:
            assert page.xpath(f"//div[@class='embed']/{component}"), embed
            assert component in scripts
        else:
            assert embed["url"] in page.xpath("//div[@class='embed']//a/@href"), embed


@pytest.mark.parametrize("article", [a for a in LIVE if a.corrections], ids=lambda a: a.id)
def test_corrections_are_a_dated_note_on_the_amp_page_as_on_the_canonical_one(amp_pages, sample_client, article):
    """The note passes the validator with the rest of the page (the first test); here, what it says."""
    def said(page: str) -> list[tuple[str, str, str]]:
        (note,) = lxml.html.document_fromstring(page).find_class("corrections")
        assert note.find("h2").text == "सुधार"
        return [(p.find("time").get("datetime"), *p.text_content().split(": ", 1)) for p in note.findall("p")]

    amp_note = said(amp_pages[article.slug][0])
    assert [(when, text) for when, _, text in amp_note] == [(c["date"], c["text"]) for c in article.corrections]
    assert amp_note == said(sample_client.get(f"/articles/{article.slug}").get_data(as_text=True))


def test_amp_page_is_cacheable_and_compressed(sample_client):
    response = sample_client.get(f"/amp/{LIVE[0].slug}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and response.headers["ETag"]
    assert sample_client.get(f"/amp/{LIVE[0].slug}", headers={"If-None-Match": response.headers["ETag"]}
                             ).status_code == 304
