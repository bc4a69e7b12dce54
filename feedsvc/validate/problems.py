"""What a validation finds (`Problem`), and the names all checkers share: kinds, namespaces, limits."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

KINDS = ("rss", "atom", "jsonfeed", "opml", "sitemap", "sitemapindex", "newssitemap", "html", "amp")

ATOM = "http://www.w3.org/2005/Atom"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
MEDIA = "http://search.yahoo.com/mrss/"
XHTML = "http://www.w3.org/1999/xhtml"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"
NS = {"atom": ATOM, "at": TOMBSTONES, "content": CONTENT, "media": MEDIA, "xhtml": XHTML,
      "sm": SITEMAP, "news": NEWS}

# sitemaps.org protocol: "no more than 50,000 URLs and must be no larger than 50MB (52,428,800 bytes)"
SITEMAP_MAX_URLS = 50_000
SITEMAP_MAX_BYTES = 52_428_800
# Google News sitemaps: "a maximum of 1,000 news:news tags"
NEWS_MAX_ITEMS = 1_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # a date before it is implausible in a feed
FUTURE_SLACK = timedelta(days=1)                    # how far past now a date may lie (clock skew)
MAX_PROBLEMS_PER_RULE = 50  # a broken feed of 200 items should not print 200 copies of one mistake


@dataclass(frozen=True)
class Problem:
    """One way a document breaks its standard: the rule broken, what is wrong, and where (1-based).

    Every checker reports these: the built-in checks, our AMP house rules (amp_rules.py) and the
    official AMP validator (amp_validator.py). Severity "warning" marks what the W3C Feed
    Validation Service or the AMP validator calls a warning rather than an error; a warning is
    still a problem (the service aims at none), and `validate` exits 1 on it.
    """
    rule: str
    message: str
    line: int | None = None
    column: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.line}:{self.column or 0}: " if self.line else ""
        level = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}{level}{self.rule}: {self.message}"

    def as_json(self) -> dict:
        return asdict(self)


# A check of one kind of document: (body, the URL it is served at or None) -> its problems.
Checker = Callable[[bytes, "str | None"], list[Problem]]
