"""Which translations of an article a document links (hreflang alternates), from the record's `translations`.

Google's "Tell Google about localized versions of your page"
(https://developers.google.com/search/docs/specialty/international/localized-versions) asks that
each language version list itself and every other version, with fully-qualified URLs, and that the
links go both ways: a version that does not link back makes the pair's annotations be ignored or
misread. So a translation is linked only when

- it is live (the store hands over live articles only: a draft, a scheduled or embargoed and a
  withdrawn translation is as unknown as an id never stored, and nothing of it leaks),
- it lists this article back in its own `translations` (a one-sided declaration renders nothing on
  either side, so every link a page carries is confirmed by the page it points to: the set is the
  same on every page of the group),
- its language differs from this article's and from every other linked one (two URLs for one
  hreflang value are ambiguous: the first by id wins, the same on every page).

No x-default: it names a page for readers whose language matches none of the versions (a language
chooser, per the same document); every article page is one language's version, and none is meant
for readers of other languages, so claiming one would be a guess.

Pages only. The same document calls HTML links, HTTP headers and sitemap entries equivalent, with no
benefit in using more than one, so the sitemaps carry no xhtml:link. RFC 4287 §4.2.7.4 would allow
an Atom entry a second `link rel="alternate" hreflang="en"`, but readers disagree on which alternate
is the entry's link (feedparser 6 takes the last, others the first), and the issue's readers must
agree on every link: feeds name each entry's language (xml:lang, dc:language, `language`) instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from feedsvc.ingest.records import Article


@dataclass(frozen=True)
class Alternate:
    """One version of an article: its language tag (BCP 47, as the record gives it) and its address."""
    hreflang: str
    href: str


def linked_translations(article: Article, found: Iterable[Article]) -> list[Article]:
    """The translations of `article` that documents link, among `found` (live articles, in any order)."""
    languages = {article.language.lower()}
    linked = []
    for other in sorted(found, key=lambda a: a.id):
        if (other.id in article.translations and article.id in other.translations and other.live
                and other.language.lower() not in languages):
            languages.add(other.language.lower())
            linked.append(other)
    return linked


def alternates(article: Article, found: Iterable[Article], href: Callable[[Article], str]) -> list[Alternate]:
    """The hreflang links of one document of `article`: itself and each linked translation, by
    language, each at `href(version)` (its canonical URL, or its AMP page); none without a translation."""
    linked = linked_translations(article, found)
    if not linked:
        return []
    return sorted((Alternate(version.language, href(version)) for version in [article, *linked]),
                  key=lambda alternate: alternate.hreflang)
