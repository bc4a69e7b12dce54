"""URL fields: refused at ingest by the parsers the renderers use, and hosts in headers as A-labels."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from feedsvc.ingest.records import RecordError, parse_record
from feedsvc.ingest.urls import checked_url, csp_source
from feedsvc.web.embed import content_security_policy

SITE = "http://news.example"

# Each fails a parser a renderer runs on stored URLs (urlsplit, .hostname, .port), or IDNA.
UNPARSABLE = {
    "unclosed IPv6 literal": "http://[::1/x",
    "IPv6 zone id": "http://[fe80::1%zz]/",
    "not an IPv6 address": "http://[v1.x]/",
    "text after the brackets": "http://[::1]x/",
    "port out of range": "http://a.example:99999/",
    "port not a number": "http://a.example:ab/",
    "port 0": "http://a.example:0/",
    "user info": "http://user:pass@a.example/",
    "no host": "http:///path",
    "emoji host": "https://🙂.example/a.jpg",
    "semicolon in host": "https://a.example;script-src:*/a.jpg",
    "comma in host": "https://a.example,b/a.jpg",
    "underscore in host": "https://a_b.example/",
    "empty label": "https://a..example/",
    "label too long": f"https://{'a' * 64}.example/",
    "bad escape": "https://a.example/%zz.jpg",
    "cut escape": "https://a.example/a%2",
}
ACCEPTED = ["https://news.example/a", "https://बी.भारत/चित्र.jpg", "http://[::1]:8080/a", "http://127.0.0.1/a",
            "https://A.Example:443/%E0%A4%95?q=%20#frag", "https://xn--h2brj9c.example/", "https://ß.de/"]


def field_problems(record: dict) -> dict[str, str]:
    with pytest.raises(RecordError) as caught:
        parse_record(record, site_url=SITE, source="t.json")
    return {p.field: p.reason for p in caught.value.problems}


@pytest.mark.parametrize("url", UNPARSABLE.values(), ids=UNPARSABLE.keys())
def test_unparsable_url_is_refused_in_every_url_field(make_record, url):
    embed_url = url.replace("http://", "https://", 1)
    record = make_record(url=url, image={"url": url},
                         authors=[{"key": "a", "name": "लेखक", "url": url}],
                         embeds=[{"provider": "other", "url": embed_url}])
    found = field_problems(record)
    assert set(found) == {"url", "image.url", "authors[0].url", "embeds[0].url"}, found
    assert all(repr(url) in found[f] for f in ("url", "image.url", "authors[0].url"))


@pytest.mark.parametrize("url", ACCEPTED)
def test_urls_the_renderers_can_parse_are_accepted_as_given(make_record, url):
    article = parse_record(make_record(url=url, image={"url": url}), site_url=SITE)
    assert article.url == url and article.image["url"] == url


def test_a_site_path_is_checked_as_the_absolute_url_it_becomes(make_record):
    assert "image.url" in field_problems(make_record(image={"url": "/media/%zz.jpg"}))
    assert parse_record(make_record(image={"url": "/media/चित्र.jpg"}), site_url=SITE).image["url"] == "/media/चित्र.jpg"


def test_api_answers_422_naming_the_url_field(client, api_headers, make_record):
    record = make_record(image={"url": "http://[::1/x.jpg"})
    response = client.put(f"/api/articles/{record['id']}", json=record, headers=api_headers)
    assert response.status_code == 422
    assert [p["field"] for p in response.get_json()["problems"]] == ["image.url"]


@pytest.mark.parametrize("url, source", [
    ("https://बी.भारत/a.jpg", "https://xn--p2b4b.xn--h2brj9c"),
    ("https://IMG.Example:8443/a.jpg", "https://img.example:8443"),
    ("http://127.0.0.1/a.jpg", "http://127.0.0.1"),
    ("https://[::1]/a.jpg", None),           # CSP host-sources have no IPv6 literal
    ("https://a.example;script-src:*/a.jpg", None),
    ("https://a.example,b/a.jpg", None),
    ("https://🙂.example/a.jpg", None),
    ("https://a.example./a.jpg", None),      # a trailing dot is not in the host-source grammar
    ("data:image/png;base64,AAAA", None),
])
def test_csp_source_is_an_a_label_origin_or_nothing(url, source):
    assert csp_source(url) == source


def test_embed_policy_drops_hosts_stored_before_they_were_checked(app):
    # Records stored before ingest checked hosts may still carry one that would extend the policy.
    with app.app_context():
        policy = content_security_policy(["https://a.example;script-src *,https://evil.example/x.jpg",
                                          "https://🙂.example/x.jpg", "https://बी.भारत/x.jpg"])
    policy.encode("ascii")  # a header value; an IDN or emoji host once made it unsendable
    directives = {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";"))}
    assert "script-src" not in directives
    assert directives["img-src"] == ["'self'", SITE, "https://xn--p2b4b.xn--h2brj9c"]


def test_embed_card_of_an_idn_image_host_sends_an_ascii_policy(client, api_headers, make_record):
    record = make_record(image={"url": "https://चित्र.भारत/a.jpg"})
    assert client.put(f"/api/articles/{record['id']}", json=record, headers=api_headers).status_code == 201
    response = client.get(f"/embed/{record['slug']}")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert policy.isascii() and f"https://{checked_url(record['image']['url']).hostname}" not in policy
    assert "https://xn--" in policy


@pytest.fixture(scope="module")
def fuzz_target():
    folder = str(Path(__file__).resolve().parent.parent / "fuzz")
    sys.path.insert(0, folder)
    try:
        import fuzz_record_urls_dates
    finally:
        sys.path.remove(folder)
    return fuzz_record_urls_dates


@pytest.mark.parametrize("date", ["2025-08-01T09:15:00+05:30", "0001-01-01T00:00:00+05:30", "9999-12-31T23:59:59-14:00",
                                  "1970-01-01T00:00:00+14:00", "2100-12-31T23:59:59-14:00"])
def test_fuzz_target_seeds_pass_through_the_renderers(fuzz_target, date):
    for url in [*UNPARSABLE.values(), *ACCEPTED]:
        fuzz_target.check(url.replace("http://", "https://", 1), date)
