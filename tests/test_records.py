"""The record contract: what is accepted, what is derived, and how refusals name the field."""
import json
from datetime import timedelta

import lxml.html
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.ingest.records import (
    RecordError,
    _text_problems,
    article_from_json,
    article_to_json,
    may_carry_unsafe_chars,
    parse_record,
    slugify,
)

SITE = "http://news.example"


def problems_of(record) -> dict[str, str]:
    with pytest.raises(RecordError) as caught:
        parse_record(record, site_url=SITE, source="t.json")
    return {p.field: p.reason for p in caught.value.problems}


def test_valid_record_keeps_devanagari_and_offset(make_record):
    article = parse_record(make_record(), site_url=SITE)
    assert article.title == "Monsoon | मानसून सत्र आज से शुरू, कई विधेयक पेश होंगे"
    assert article.published.utcoffset() == timedelta(hours=5, minutes=30)
    assert article.url == "/articles/monsoon-session-begins"  # site paths: made absolute per document
    assert article.image["url"] == "/media/test.jpg"


def test_stored_form_round_trips(make_record):
    article = parse_record(make_record(), site_url=SITE)
    again = article_from_json(article_to_json(article))
    assert (again.title, again.published, again.tags, again.authors, again.body_html) == \
        (article.title, article.published, article.tags, article.authors, article.body_html)


def test_naive_time_is_refused_not_guessed(make_record):
    found = problems_of(make_record(published="2025-08-01T09:15:00"))
    assert "offset" in found["published"]


def test_missing_title_names_the_field(make_record):
    assert "title" in problems_of(make_record(title=None))["(record)"]


def test_wrong_types_and_unknown_status_are_all_listed(make_record):
    found = problems_of(make_record(tags="netflix", status="archived", image={"url": "/x.jpg", "width": "wide"}))
    assert set(found) >= {"tags", "status", "image.width"}


def test_unknown_field_is_refused(make_record):
    found = problems_of(make_record(subtitle="x"))
    assert "subtitle" in found["(record)"]


@pytest.mark.parametrize("char", ["\x00", "\x0b", "\x1f", "\x7f", "\x80", "\x9f", "\ufffe", "\ud800"])
def test_xml_illegal_characters_are_refused(make_record, char):
    found = problems_of(make_record(title=f"खबर{char}शीर्षक"))
    assert f"U+{ord(char):04X}" in found["title"]


_UNSAFE = ["\x00", "\x08", "\x0c", "\x1f", "\x7f", "\x80", "\x9f", "\ufffe", "\uffff", "\ud800"]


# A lone surrogate cannot be written as UTF-8: only its escape (ASCII-only JSON) can arrive.
@pytest.mark.parametrize("char,ascii_only", [(c, a) for c in _UNSAFE for a in (True, False) if a or c != "\ud800"])
def test_unsafe_characters_are_found_from_the_json_text_too(make_record, char, ascii_only):
    # The import passes the JSON text so most records skip the walk over every string; a record
    # holding a bad character, escaped or raw, must still be refused with the field named.
    record = make_record(tags=[{"key": "k", "name": f"टैग{char}"}])
    text = json.dumps(record, ensure_ascii=ascii_only).encode()
    with pytest.raises(RecordError) as caught:
        parse_record(json.loads(text), site_url=SITE, json_text=text)
    assert f"U+{ord(char):04X}" in str(caught.value) and caught.value.problems[0].field == "tags[0].name"


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)


@settings(deadline=None)  # examples: the profile (tests/conftest.py)
@given(st.recursive(_ANY_TEXT, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3),
                    max_leaves=8),
       st.sampled_from(["json-ascii", "json-utf8", "orjson"]))
def test_json_text_without_traces_of_unsafe_characters_holds_none(value, writer):
    data = {"v": value}
    try:
        text = {"json-ascii": lambda: json.dumps(data).encode(),
                "json-utf8": lambda: json.dumps(data, ensure_ascii=False).encode(),
                "orjson": lambda: orjson.dumps(data)}[writer]()
    except (UnicodeEncodeError, orjson.JSONEncodeError):
        return  # lone surrogates: no UTF-8 text can carry them, so no parser hands them to us
    if _text_problems(data):
        assert may_carry_unsafe_chars(text)


def test_ten_megabyte_body_is_refused(make_record):
    found = problems_of(make_record(body_html="<p>" + "क" * 10_000_000 + "</p>"))
    assert "at most" in found["body_html"]


def test_scripts_in_body_are_removed(make_record):
    article = parse_record(make_record(body_html='<p onclick="x()">पाठ<script>alert(1)</script>'
                                                 '<a href="javascript:alert(1)">कड़ी</a></p>'), site_url=SITE)
    assert "script" not in article.body_html and "onclick" not in article.body_html
    assert "javascript:" not in article.body_html and "पाठ" in article.body_html


def test_relative_urls_in_body_are_stored_as_site_paths(make_record):
    article = parse_record(make_record(body_html='<p><a href="/articles/x">x</a><img src="../media/a.jpg">'
                                                 '<a href="//other.example/y">y</a></p>'), site_url=SITE)
    root = lxml.html.fragment_fromstring(article.body_html, create_parent="div")
    assert [a.get("href") for a in root.iter("a")] == ["/articles/x", "https://other.example/y"]
    assert root.find(".//img").get("src") == "/media/a.jpg"


def test_updated_before_published_is_refused(make_record):
    assert "earlier" in problems_of(make_record(updated="2025-07-01T09:15:00+05:30"))["updated"]


def test_missing_slug_is_transliterated_from_title(make_record):
    article = parse_record(make_record(slug=None, title="कोरियाई ज़ॉम्बी सीरीज़ का दूसरा सीज़न"), site_url=SITE)
    assert article.slug == "koriyai-zombi-siriz-ka-dusra-sizan"


def test_slug_keeps_vowel_signs_and_cuts_at_a_word():
    slug = slugify("नेटफ्लिक्स " * 20)
    assert len(slug) <= 80 and not slug.endswith("-") and set(slug.split("-")) == {"netphliks"}


def test_missing_summary_is_derived_from_body(make_record):
    article = parse_record(make_record(summary=None), site_url=SITE)
    assert article.summary.startswith("संसद का मानसून सत्र")


def test_bidi_overrides_are_removed_but_joiners_kept(make_record):
    article = parse_record(make_record(title="\u202eउलटा\u202c क्\u200dष"), site_url=SITE)
    assert article.title == "उलटा क्\u200dष"


@pytest.mark.parametrize("url,expected", [
    ("https://www.youtube.com/watch?v=IN5TD4VRcSM", "IN5TD4VRcSM"),
    ("https://youtu.be/IN5TD4VRcSM?t=3", "IN5TD4VRcSM"),
    ("https://www.youtube-nocookie.com/embed/IN5TD4VRcSM", "IN5TD4VRcSM"),
    ("https://m.youtube.com/shorts/IN5TD4VRcSM", "IN5TD4VRcSM"),
    ("https://evilyoutube.com/watch?v=IN5TD4VRcSM", None),
    ("https://www.youtube.com/watch?v=<script>", None),
])
def test_youtube_ids_are_read_only_from_youtube(url, expected):
    from feedsvc.ingest.sanitize import youtube_id
    assert youtube_id(url) == expected


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:30", "9999-12-31T23:59:00-05:00",
                                    "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2101-01-01T00:00:00-01:00"])
def test_dates_outside_the_renderable_years_are_refused_naming_the_field(make_record, moment):
    # Year 1 or 9999 with an offset overflows when converted to UTC: it once escaped as OverflowError.
    found = problems_of(make_record(published=moment, updated=moment,
                                    corrections=[{"date": moment, "text": "सुधार"}]))
    assert set(found) == {"published", "updated", "corrections[0].date"}
    assert all("1970 to 2100" in reason for reason in found.values())


@pytest.mark.parametrize("moment", ["1970-01-01T05:30:00+05:30", "2100-12-31T23:59:59Z", "1970-01-01T00:00:00-14:00"])
def test_dates_at_the_edges_of_the_renderable_years_are_accepted(make_record, moment):
    article = parse_record(make_record(published=moment, updated=moment,
                                       corrections=[{"date": moment, "text": "सुधार"}]), site_url=SITE)
    assert article.published.isoformat() == moment.replace("Z", "+00:00")
