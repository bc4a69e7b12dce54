"""HTTP as polite pollers expect: ETag, Last-Modified and 304, Cache-Control, gzip and brotli by
Accept-Encoding with Vary, HEAD, CORS where scripts read us; malformed request headers are ignored."""
from __future__ import annotations

import gzip
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

import brotli
import pytest

from feedsvc.web.http import choose_encoding, parse_etags, parse_http_date

FEED_URLS = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/sports/atom.xml",
             "/feeds/tag/cricket/feed.json?limit=2"]
CACHEABLE_URLS = FEED_URLS + ["/feeds.opml", "/feeds"]
CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=600, stale-if-error=86400"
DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress}


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}


@pytest.mark.parametrize("url", CACHEABLE_URLS)
def test_response_has_strong_etag_last_modified_and_shared_cache_policy(sample_client, url):
    response = sample_client.get(url)
    assert response.status_code == 200
    assert re.fullmatch(r'"[0-9a-f]{24}"', response.headers["ETag"])
    last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
    assert last_modified.tzinfo is not None and last_modified <= datetime.now(timezone.utc)
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    assert "accept-encoding" in vary(response)


@pytest.mark.parametrize("url", CACHEABLE_URLS)
def test_matching_if_none_match_gets_304_without_a_body(sample_client, url):
    etag = sample_client.get(url).headers["ETag"]
    response = sample_client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.data == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == CACHE_CONTROL and "accept-encoding" in vary(response)


@pytest.mark.parametrize("condition, validator", [("If-None-Match", "ETag"), ("If-Modified-Since", "Last-Modified")])
@pytest.mark.parametrize("url", CACHEABLE_URLS)
def test_304_sends_the_validators_the_200_sends(sample_client, url, condition, validator):
    """RFC 9110 §15.4.5: a poller revalidating by date alone keeps the Last-Modified of the 304."""
    fresh = sample_client.get(url)
    response = sample_client.get(url, headers={condition: fresh.headers[validator]})
    assert response.status_code == 304
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert response.headers.get(name) == fresh.headers[name], name


@pytest.mark.parametrize("form", ["W/{etag}", '"older", {etag}', "{etag},\"newer\"", "*", "{gzip_etag}",
                                  "W/{br_etag}"])
def test_if_none_match_accepts_weak_tags_lists_star_and_encoded_tags(sample_client, form):
    url = "/feeds/atom.xml"
    etags = {name: sample_client.get(url, headers={"Accept-Encoding": enc}).headers["ETag"]
             for name, enc in (("etag", "identity"), ("gzip_etag", "gzip"), ("br_etag", "br"))}
    assert etags["gzip_etag"] == etags["etag"][:-1] + '-gzip"' and etags["br_etag"] == etags["etag"][:-1] + '-br"'
    response = sample_client.get(url, headers={"If-None-Match": form.format(**etags)})
    assert response.status_code == 304


def test_304_names_the_etag_of_the_encoding_the_client_would_get(sample_client):
    etag = sample_client.get("/feeds/rss.xml").headers["ETag"]
    response = sample_client.get("/feeds/rss.xml", headers={"If-None-Match": etag, "Accept-Encoding": "gzip"})
    assert response.status_code == 304 and response.headers["ETag"] == etag[:-1] + '-gzip"'


def test_if_none_match_of_another_version_gets_the_feed(sample_client):
    response = sample_client.get("/feeds/rss.xml", headers={"If-None-Match": '"0123456789abcdef01234567"'})
    assert response.status_code == 200 and response.data.startswith(b"<?xml")


@pytest.mark.parametrize("offset,status", [(timedelta(0), 304), (timedelta(hours=1), 304),
                                           (timedelta(seconds=-1), 200), (timedelta(days=-400), 200)])
def test_if_modified_since_compares_to_the_second(sample_client, offset, status):
    last_modified = parsedate_to_datetime(sample_client.get("/feeds/section/sports/rss.xml").headers["Last-Modified"])
    since = format_datetime(last_modified + offset, usegmt=True)
    assert sample_client.get("/feeds/section/sports/rss.xml",
                             headers={"If-Modified-Since": since}).status_code == status


def test_if_none_match_wins_over_if_modified_since(sample_client):
    last_modified = sample_client.get("/feeds/rss.xml").headers["Last-Modified"]
    response = sample_client.get("/feeds/rss.xml", headers={"If-None-Match": '"stale"',
                                                            "If-Modified-Since": last_modified})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [
    {"If-None-Match": '"unterminated'}, {"If-None-Match": "W/"}, {"If-None-Match": ",,, ,"},
    {"If-None-Match": "x" * 8000}, {"If-None-Match": "W/W/W/\"a\""}, {"If-Modified-Since": "yesterday"},
    {"If-Modified-Since": "Mon, 99 Foo 2025 99:99:99 GMT"}, {"If-Modified-Since": ""},
    {"If-Modified-Since": "Sat, 01 Jan 10000 00:00:00 GMT"}, {"If-Modified-Since": "0"},
    {"Accept-Encoding": "gzip;q=NaN, br;q=1e999, ;;;,"}, {"Accept-Encoding": "\u0917\u091c\u093c\u093f\u092a"},
])
def test_malformed_request_headers_are_ignored_not_an_error(sample_client, headers):
    response = sample_client.get("/feeds/rss.xml", headers=headers)
    assert response.status_code == 200 and len(response.data) > 0


@pytest.mark.parametrize("encoding", ["gzip", "br"])
@pytest.mark.parametrize("url", CACHEABLE_URLS)
def test_compressed_bodies_decode_to_the_identity_bytes(sample_client, url, encoding):
    plain = sample_client.get(url, headers={"Accept-Encoding": "identity"})
    packed = sample_client.get(url, headers={"Accept-Encoding": encoding})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == encoding
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data)
    assert DECODERS[encoding](packed.data) == plain.data
    assert packed.headers["Content-Type"] == plain.headers["Content-Type"]


@pytest.mark.parametrize("header,expected", [
    ("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br"), ("br;q=0.5, gzip;q=0.8", "gzip"),
    ("gzip;q=0, br;q=0", None), ("*", "br"), ("identity", None), ("br;q=abc, gzip", "gzip"),
    ("GZIP", "gzip"), ("", None), ("*;q=0, gzip;q=0", None), ("deflate", None),
])
def test_encoding_follows_accept_encoding(sample_client, header, expected):
    response = sample_client.get("/feeds/feed.json", headers={"Accept-Encoding": header})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == expected


@pytest.mark.parametrize("url", CACHEABLE_URLS)
def test_head_answers_with_the_headers_of_get_and_no_body(sample_client, url):
    got = sample_client.get(url, headers={"Accept-Encoding": "gzip"})
    head = sample_client.head(url, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.data == b""
    for name in ("Content-Type", "Content-Length", "Content-Encoding", "ETag", "Last-Modified", "Cache-Control"):
        assert head.headers.get(name) == got.headers.get(name), name


@pytest.mark.parametrize("url,cors", [("/feeds/feed.json", True), ("/feeds/tag/cricket/feed.json", True),
                                      ("/feeds.opml", True), ("/feeds/rss.xml", False),
                                      ("/feeds/atom.xml", False), ("/feeds", False)])
def test_cors_is_open_on_the_json_feed_and_opml_only(sample_client, url, cors):
    response = sample_client.get(url, headers={"Origin": "https://reader.example"})
    assert (response.headers.get("Access-Control-Allow-Origin") == "*") is cors
    if cors:
        assert "ETag" in response.headers["Access-Control-Expose-Headers"]


def test_cors_preflight_allows_conditional_requests(sample_client):
    response = sample_client.options("/feeds/feed.json", headers={
        "Origin": "https://reader.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]


def test_errors_are_json_and_briefly_cacheable(sample_client):
    response = sample_client.get("/feeds/tag/no-such-tag/rss.xml")
    assert response.status_code == 404 and response.is_json
    assert response.headers["Cache-Control"] == "public, max-age=60"


# ---- the header parsers on their own -------------------------------------------------------------

@pytest.mark.parametrize("header,tags", [
    (None, None), ('"a"', ["a"]), ('W/"a", "b"', ["a", "b"]), ("*", ["*"]), ('"a",,"b"', ["a", "b"]),
    ('"a', []), ("bare", ["bare"]), ('"a, b"', ["a, b"]), ("", []),
])
def test_parse_etags(header, tags):
    assert parse_etags(header) == tags


@pytest.mark.parametrize("header,expected", [
    ("Wed, 23 Jul 2025 10:00:00 GMT", datetime(2025, 7, 23, 10, tzinfo=timezone.utc)),
    ("Wednesday, 23-Jul-25 10:00:00 GMT", datetime(2025, 7, 23, 10, tzinfo=timezone.utc)),  # RFC 850
    ("Wed Jul 23 10:00:00 2025", datetime(2025, 7, 23, 10, tzinfo=timezone.utc)),  # asctime
    ("not a date", None), ("", None), (None, None), ("Wed, 32 Jul 2025 10:00:00 GMT", None),
])
def test_parse_http_date(header, expected):
    assert parse_http_date(header) == expected


def test_choose_encoding_prefers_brotli_on_a_tie_and_falls_back_to_identity():
    assert choose_encoding("gzip, br") == "br"
    assert choose_encoding("gzip;q=1, br;q=0.9") == "gzip"
    assert choose_encoding("identity;q=0, *;q=0") == "identity"  # nothing acceptable: send it plain
    assert choose_encoding("gzip", available=("identity",)) == "identity"
