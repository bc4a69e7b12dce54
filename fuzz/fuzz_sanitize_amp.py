"""atheris fuzz target: any record HTML -> sanitize_html -> amp.convert_body -> a whole AMP page.

Whatever the bytes, the page must keep every house rule (amp_rules.check_house_rules: no bare img,
no style=, no on*, no javascript: URL, only AMP's scripts and JSON-LD, one small amp-custom style)
and parse as HTML. Run it for as long as you like:

    mkdir -p /tmp/corpus && .venv/bin/python fuzz/fuzz_sanitize_amp.py /tmp/corpus tests/hostile/html

The first folder collects the inputs libFuzzer finds interesting; the hostile corpus seeds it.
libFuzzer flags such as -runs=N, -max_total_time=S and -max_len=N are passed through;
tests/test_fuzz.py runs it for a bounded number of inputs so CI exercises it on every change.
"""
from __future__ import annotations

import re
import sys

import atheris

with atheris.instrument_imports():
    import lxml.html

    from feedsvc.ingest import sanitize
    from feedsvc.render import amp
    from feedsvc.validate import amp_rules

SITE = "https://news.example"
# parse_record refuses these before any HTML reaches the sanitiser (no XML output can carry them),
# so they are not this pair's input; lxml would refuse them with ValueError.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
PROVIDERS = ("youtube", "vimeo", "twitter", "instagram", "facebook", "other")


def amp_page(body_html: str, headline: str = "शीर्षक", embed: tuple[str, str] | None = None) -> str:
    """The AMP page the service would build from this record HTML (and one embed)."""
    safe = sanitize.sanitize_html(body_html, SITE)
    embeds = [amp.embed_to_amp(*embed)] if embed else []
    return amp.amp_document(headline=headline, canonical_url=f"{SITE}/articles/x", body=amp.convert_body(safe),
                            json_ld={"@context": "https://schema.org", "@type": "NewsArticle", "headline": headline},
                            embeds=embeds, site_name="समाचार", site_url=SITE)


def check(body_html: str, headline: str = "शीर्षक", embed: tuple[str, str] | None = None) -> str:
    """Build the page and fail loudly (AssertionError) if it breaks a house rule or does not parse."""
    body_html, headline = XML_ILLEGAL.sub("", body_html), XML_ILLEGAL.sub("", headline)
    embed = (embed[0], XML_ILLEGAL.sub("", embed[1])) if embed else None
    page = amp_page(body_html, headline, embed)
    violations = amp_rules.check_house_rules(page)
    assert not violations, f"{[str(v) for v in violations]} for {body_html[:200]!r}"
    document = lxml.html.document_fromstring(page)
    assert document.find("body") is not None and document.find("head") is not None
    return page


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    headline = provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 40)) or "शीर्षक"
    embed = None
    if provider.ConsumeBool():
        embed = (PROVIDERS[provider.ConsumeIntInRange(0, len(PROVIDERS) - 1)],
                 "https://" + provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 60)))
    body = provider.ConsumeUnicodeNoSurrogates(provider.remaining_bytes())
    check(body, headline, embed)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
