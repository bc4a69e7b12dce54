"""atheris fuzz target: any URL and date in a record -> parse_record -> the renderers' URL and date paths.

Whatever the strings, parse_record answers an Article or a RecordError naming fields, and an
accepted record's URLs and dates go through every renderer path that reads them (feed entry and
content, RFC 822 and IST dates, the embed card's CSP source) without an exception:

    mkdir -p /tmp/url-corpus && .venv/bin/python fuzz/fuzz_record_urls_dates.py /tmp/url-corpus -runs=100000
"""
from __future__ import annotations

import sys
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import atheris

with atheris.instrument_imports():
    from feedsvc.ingest.records import RecordError, parse_record
    from feedsvc.ingest.urls import csp_source
    from feedsvc.render import pages
    from feedsvc.render.feeds.entries import entry_from_article
    from feedsvc.render.feeds.model import Site

SITE = Site(url="https://news.example", name="समाचार", description="", language="hi", logo="", icon="",
            copyright="")
IST = ZoneInfo("Asia/Kolkata")


def check(url: str, date: str) -> None:
    record = {"id": "fuzz", "title": "शीर्षक", "body_html": "<p>पाठ</p>", "section": {"key": "s", "name": "स"},
              "authors": [{"name": "लेखक", "url": url}], "published": date, "url": url, "image": {"url": url},
              "embeds": [{"provider": "other", "url": url}], "corrections": [{"date": date, "text": "सुधार"}]}
    try:
        article = parse_record(record, site_url=SITE.url)
    except RecordError as error:
        assert error.problems and all(p.field and p.reason for p in error.problems)
        return
    entry_from_article(article, SITE, full_text=True)
    format_datetime(article.published)
    pages.hindi_datetime(article.published, "Asia/Kolkata")
    article.published.astimezone(IST)
    csp_source(article.image["url"])


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    url = provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 120))
    check(url, provider.ConsumeUnicodeNoSurrogates(provider.remaining_bytes()))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
