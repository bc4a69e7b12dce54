"""Which checks a kind of document gets: the built-in ones, those registered by other modules, and guessing the kind."""
from __future__ import annotations

import io
import re
from collections import Counter, defaultdict

from lxml import etree

from feedsvc.validate import amp_rules, jsonfeed, pages, xmldocs
from feedsvc.validate.problems import ATOM, KINDS, MAX_PROBLEMS_PER_RULE, NEWS, SITEMAP, TOMBSTONES, Checker, Problem

_extra_checkers: dict[str, list[Checker]] = defaultdict(list)


def register_checker(kind: str, checker: Checker | None = None):
    """Run `checker(body, url) -> list[Problem]` after the built-in checks of `kind`.

    Also a decorator: `@register_checker("amp")`.
    """
    if checker is None:
        return lambda fn: register_checker(kind, fn)
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; known: {', '.join(KINDS)}")
    if checker not in _extra_checkers[kind]:
        _extra_checkers[kind].append(checker)
    return checker


def validate_document(body: bytes, kind: str, *, url: str | None = None) -> list[Problem]:
    """Every problem of `body` as a document of `kind`; `url`, when given, is where it is served."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; known: {', '.join(KINDS)}")
    problems = BUILTIN[kind](body, url)
    for checker in _extra_checkers[kind]:
        problems.extend(checker(body, url))
    return _capped(problems)


def _capped(problems: list[Problem]) -> list[Problem]:
    seen = Counter()
    kept = []
    for problem in problems:
        seen[problem.rule] += 1
        if seen[problem.rule] <= MAX_PROBLEMS_PER_RULE:
            kept.append(problem)
    for rule, count in seen.items():
        if count > MAX_PROBLEMS_PER_RULE:
            kept.append(Problem(rule, f"... and {count - MAX_PROBLEMS_PER_RULE} more of this rule"))
    return kept


BUILTIN: dict[str, Checker] = {**xmldocs.CHECKERS, **jsonfeed.CHECKERS, **pages.CHECKERS}
# Our own promises for AMP pages, beyond the standard's: a checker like any other plug-in.
register_checker("amp", amp_rules.check_house_rules)


MIME_KINDS = {"application/rss+xml": "rss", "application/atom+xml": "atom",
               "application/atomdeleted+xml": "atom", "application/feed+json": "jsonfeed",
               "text/x-opml": "opml", "text/x-opml+xml": "opml"}
_ROOT_KINDS = {"rss": "rss", f"{{{ATOM}}}feed": "atom", f"{{{ATOM}}}entry": "atom",
               f"{{{TOMBSTONES}}}deleted-entry": "atom", "opml": "opml",
               f"{{{SITEMAP}}}urlset": "sitemap", f"{{{SITEMAP}}}sitemapindex": "sitemapindex"}
_HTML_START = re.compile(rb"<html\b([^>]*)>", re.IGNORECASE)
_AMP_ATTR = re.compile(r"(?:^|\s)(?:\u26a1|amp)(?:\s|=|$)", re.IGNORECASE)


def guess_kind(body: bytes, content_type: str | None = None) -> str | None:
    """The kind of document `body` is, from its media type and its first bytes; None if unknown."""
    mime = (content_type or "").split(";")[0].strip().lower()
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024]
    if mime in ("application/feed+json", "application/json") or head.startswith(b"{"):
        return "jsonfeed"
    if mime in ("text/html", "application/xhtml+xml") or head[:15].lower() in (b"<!doctype html>",) \
            or head[:5].lower() == b"<html":
        found = _HTML_START.search(body[:8192])
        attrs = found.group(1).decode("utf-8", "replace") if found else ""
        return "amp" if _AMP_ATTR.search(attrs) else "html"
    root = _root_element(body)
    if root is None:
        return MIME_KINDS.get(mime)
    kind = _ROOT_KINDS.get(root.tag, MIME_KINDS.get(mime))
    if kind == "sitemap" and NEWS in root.nsmap.values():
        return "newssitemap"
    return kind


def _root_element(body: bytes):
    try:
        for _event, element in etree.iterparse(io.BytesIO(body), events=("start",), resolve_entities=False,
                                               no_network=True, load_dtd=False, huge_tree=False):
            return element
    except etree.XMLSyntaxError:
        return None
    return None
