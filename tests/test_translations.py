"""Translations (the record's `translations`): pages carry hreflang alternates for each live translation
that lists the article back, and never a link to a draft, scheduled or withdrawn one."""
import json

import lxml.html
import pytest

from feedsvc.validate import validate_document
from tests.support.apps import SITE_URL
from tests.support.records import put_record

HINDI = {"id": "budget-hi", "slug": "budget-hi", "language": "hi", "title": "बजट में किसानों के लिए नई योजना"}
ENGLISH = {"id": "budget-en", "slug": "budget-en", "language": "en", "title": "Budget brings a new scheme for farmers"}


def _pair(make_record, hindi_lists=("budget-en",), english_lists=("budget-hi",), **english):
    hindi = make_record(**HINDI, translations=list(hindi_lists) or None)
    return hindi, make_record(**{**ENGLISH, "translations": list(english_lists) or None, **english})


def _alternates(client, path: str) -> dict[str, str]:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    head = lxml.html.fromstring(response.data).find("head")
    links = head.findall("link[@rel='alternate'][@hreflang]")
    found = {link.get("hreflang"): link.get("href") for link in links}
    assert len(found) == len(links)  # one link per language
    return found


def _both_pages(client) -> dict[str, dict[str, str]]:
    return {path: _alternates(client, path) for path in
            ("/articles/budget-hi", "/articles/budget-en", "/amp/budget-hi", "/amp/budget-en")}


def test_a_hindi_article_and_its_english_translation_link_each_other(client, api_headers, make_record):
    for record in _pair(make_record):
        put_record(client, api_headers, record)
    canonical = {"hi": f"{SITE_URL}/articles/budget-hi", "en": f"{SITE_URL}/articles/budget-en"}
    amp = {"hi": f"{SITE_URL}/amp/budget-hi", "en": f"{SITE_URL}/amp/budget-en"}
    # Each version lists itself and the other, the same set on both (Google's localized-versions rules);
    # AMP pages link the AMP pages (amp.dev's internationalization guide).
    assert _both_pages(client) == {"/articles/budget-hi": canonical, "/articles/budget-en": canonical,
                                   "/amp/budget-hi": amp, "/amp/budget-en": amp}
    for path, kind in (("/articles/budget-hi", "html"), ("/amp/budget-en", "amp")):
        assert validate_document(client.get(path).data, kind, url=SITE_URL + path) == []


def test_a_translation_at_its_own_canonical_url_is_linked_there(client, api_headers, make_record):
    hindi, english = _pair(make_record, url="https://english.news.example/budget/स्कीम")
    for record in (hindi, english):
        put_record(client, api_headers, record)
    assert _alternates(client, "/articles/budget-hi")["en"] == \
        "https://english.news.example/budget/%E0%A4%B8%E0%A5%8D%E0%A4%95%E0%A5%80%E0%A4%AE"


@pytest.mark.parametrize("hindi_lists, english_lists", [(("budget-en",), ()), ((), ("budget-hi",))])
def test_a_one_sided_declaration_links_nothing_on_either_side(client, api_headers, make_record,
                                                               hindi_lists, english_lists):
    for record in _pair(make_record, hindi_lists, english_lists):
        put_record(client, api_headers, record)
    assert _both_pages(client) == dict.fromkeys(
        ("/articles/budget-hi", "/articles/budget-en", "/amp/budget-hi", "/amp/budget-en"), {})


@pytest.mark.parametrize("hidden", [
    {"status": "draft"},
    {"published": "2099-01-01T10:00:00+05:30", "updated": "2099-01-01T10:00:00+05:30"},  # scheduled
    {"embargo_until": "2099-01-01T10:00:00+05:30"},
], ids=["draft", "scheduled", "embargoed"])
def test_a_translation_not_yet_public_is_never_linked(client, api_headers, make_record, hidden):
    hindi, english = _pair(make_record, **hidden)
    for record in (hindi, english):
        put_record(client, api_headers, record)
    page = client.get("/articles/budget-hi").get_data(as_text=True)
    assert _alternates(client, "/articles/budget-hi") == {} and _alternates(client, "/amp/budget-hi") == {}
    assert "budget-en" not in page and ENGLISH["title"] not in page


def test_withdrawing_a_translation_takes_its_link_off_the_cached_pages(client, api_headers, make_record):
    for record in _pair(make_record):
        put_record(client, api_headers, record)
    before = {path: client.get(path).headers["ETag"] for path in ("/articles/budget-hi", "/amp/budget-hi")}
    assert "en" in _alternates(client, "/articles/budget-hi")
    assert client.delete("/api/articles/budget-en", headers=api_headers).status_code in (200, 204)
    for path, etag in before.items():
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 200  # not a stale 304
        assert _alternates(client, path) == {}


def test_a_translation_that_arrives_later_is_linked_from_then_on(client, api_headers, make_record):
    hindi, english = _pair(make_record)
    put_record(client, api_headers, hindi)
    assert _alternates(client, "/articles/budget-hi") == {}  # an id not stored yet: nothing, nothing broken
    put_record(client, api_headers, english)
    assert set(_alternates(client, "/articles/budget-hi")) == {"hi", "en"}


def test_two_translations_in_one_language_link_only_the_first_by_id(client, api_headers, make_record):
    hindi = make_record(**HINDI, translations=["budget-en", "budget-en-2"])
    second = make_record(**{**ENGLISH, "id": "budget-en-2", "slug": "budget-en-2", "translations": ["budget-hi"]})
    for record in (hindi, _pair(make_record)[1], second):
        put_record(client, api_headers, record)
    assert _alternates(client, "/articles/budget-hi") == {"hi": f"{SITE_URL}/articles/budget-hi",
                                                          "en": f"{SITE_URL}/articles/budget-en"}


def test_an_article_listing_itself_as_its_translation_is_refused(client, api_headers, make_record):
    record = make_record(**HINDI, translations=["budget-en", "budget-hi"])
    response = client.put("/api/articles/budget-hi", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code == 422
    assert [p["field"] for p in response.get_json()["problems"]] == ["translations[1]"]


@pytest.mark.parametrize("translations", [["not an id"], ["budget-en", "budget-en"], "budget-en"])
def test_malformed_translations_are_refused_by_the_record_contract(client, api_headers, make_record, translations):
    record = make_record(**HINDI, translations=translations)
    response = client.put("/api/articles/budget-hi", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code == 422
    assert all(p["field"].startswith("translations") for p in response.get_json()["problems"])
