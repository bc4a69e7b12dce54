"""RSS 2.0, Atom 1.0, OPML 2.0 and sitemaps: safe parsing, the grammar, then the rules in code."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from lxml import etree

from feedsvc.validate import xmlsafe
from feedsvc.validate.grammars import grammar_problems
from feedsvc.validate.problems import (
    ATOM,
    NEWS_MAX_ITEMS,
    NS,
    SITEMAP_MAX_BYTES,
    SITEMAP_MAX_URLS,
    TOMBSTONES,
    Checker,
    Problem,
)
from feedsvc.validate.rules import (
    decode,
    duplicates,
    element_url_problems,
    html_url_problems,
    illegal_characters,
    iri_problem,
    rfc822_date_problem,
    rfc3339_date_problem,
    self_link_problems,
    title_problem,
    url_problem,
    w3c_datetime_problem,
)


def parse_xml(body: bytes) -> tuple[etree._ElementTree | None, list[Problem]]:
    text, problems = decode(body)
    if text is None:
        return None, problems
    problems = illegal_characters(text)
    if problems:
        return None, problems
    try:
        return xmlsafe.parse(body), []
    except xmlsafe.UnsafeXMLError as err:
        return None, [Problem("xml-doctype", str(err).split(" (line")[0], err.line, err.column)]
    except etree.XMLSyntaxError as err:
        return None, [Problem("xml-wellformed", err.msg, err.lineno, err.offset)]


def _text(element) -> str:
    return element.text or ""


def _date_checks(elements, check: Callable[[str], str | None], rule: str, attribute: str | None = None):
    problems = []
    for element in elements:
        value = element.get(attribute) if attribute else _text(element)
        reason = check(value or "")
        if reason:
            problems.append(Problem(rule, f"<{etree.QName(element).localname}>: {reason}", element.sourceline))
    return problems


def url_checks(elements, attribute: str | None = None, schemes=("http", "https")) -> list[Problem]:
    problems = []
    for element in elements:
        value = element.get(attribute) if attribute else _text(element)
        if value is None:
            continue
        reason = url_problem(value, schemes)
        if reason:
            name = etree.QName(element).localname + (f" {attribute}" if attribute else "")
            problems.append(Problem("absolute-url", f"<{name}>: {reason}", element.sourceline))
    return problems


def _iri_checks(elements, attribute: str | None = None) -> list[Problem]:
    problems = []
    for element in elements:
        reason = iri_problem(element.get(attribute) if attribute else _text(element))
        if reason:
            name = etree.QName(element).localname + (f" {attribute}" if attribute else "")
            problems.append(Problem("absolute-url", f"<{name}>: {reason}", element.sourceline))
    return problems


def title_checks(elements) -> list[Problem]:
    problems = []
    for element in elements:
        if len(element):
            problems.append(Problem("title-markup", "the title contains child elements; titles are plain text",
                                    element.sourceline))
            continue
        reason = title_problem(_text(element))
        if reason:
            problems.append(Problem("title-markup", reason, element.sourceline))
    return problems


def _media_checks(root) -> list[Problem]:
    return (url_checks(root.iterfind(".//media:content", NS), "url")
            + url_checks(root.iterfind(".//media:thumbnail", NS), "url")
            + title_checks(e for e in root.iterfind(".//media:title", NS) if e.get("type") != "html"))


def _xml_kind(schema: str, rules: Callable[[etree._ElementTree, bytes, "str | None"], list[Problem]]) -> Checker:
    """A checker: well-formed and safe XML, then the grammar `schema`, then `rules(tree, body, url)`."""
    def check(body: bytes, url: str | None) -> list[Problem]:
        tree, problems = parse_xml(body)
        if tree is None:
            return problems
        return grammar_problems(tree, schema) + rules(tree, body, url)
    return check


def _rss_rules(tree, body: bytes, url: str | None) -> list[Problem]:
    problems = []
    root = tree.getroot()
    channel = root.find("channel")
    if channel is None:
        return problems
    items = channel.findall("item")
    problems += _date_checks(channel.findall("pubDate") + channel.findall("lastBuildDate")
                             + [d for item in items for d in item.findall("pubDate")],
                             rfc822_date_problem, "rfc822-date")
    problems += url_checks(channel.findall("link") + channel.findall("docs") + channel.findall("image/url")
                            + channel.findall("image/link") + channel.findall("textInput/link")
                            + [e for item in items for e in item.findall("link") + item.findall("comments")])
    problems += url_checks([e for item in items for e in item.findall("enclosure")], "url")
    problems += url_checks([e for item in items for e in item.findall("source")], "url")
    problems += url_checks(root.iterfind(".//atom:link", NS), "href")
    guids = [g for item in items for g in item.findall("guid")]
    problems += url_checks(g for g in guids if g.get("isPermaLink", "true") == "true")
    problems += duplicates([(_text(g).strip(), g.sourceline) for g in guids], "unique-id", "guid")
    for element in [d for item in items for d in item.findall("description")] \
            + list(channel.iterfind("item/content:encoded", NS)):
        problems += html_url_problems(_text(element), element.sourceline, etree.QName(element).localname)
    problems += _media_checks(channel)
    problems += title_checks(channel.findall("title") + channel.findall("image/title")
                              + [t for item in items for t in item.findall("title")])
    self_links = [(e.get("href", ""), e.sourceline) for e in channel.iterfind("atom:link[@rel='self']", NS)]
    problems += self_link_problems(self_links, url, "atom:link rel=\"self\"")
    return problems


def _atom_rules(tree, body: bytes, url: str | None) -> list[Problem]:
    """Dates, URLs and ids; then what the content and links say (`_atom_content_rules`)."""
    root = tree.getroot()
    problems = _date_checks(list(root.iter(f"{{{ATOM}}}updated", f"{{{ATOM}}}published")),
                             rfc3339_date_problem, "rfc3339-date")
    tombstones = list(root.iter(f"{{{TOMBSTONES}}}deleted-entry"))
    problems += _date_checks(tombstones, rfc3339_date_problem, "rfc3339-date", "when")
    problems += url_checks(root.iter(f"{{{ATOM}}}link"), "href")
    problems += url_checks(root.iter(f"{{{ATOM}}}icon", f"{{{ATOM}}}logo", f"{{{ATOM}}}uri"))
    problems += url_checks(root.iter(f"{{{ATOM}}}generator"), "uri")
    problems += url_checks(root.iter(f"{{{ATOM}}}content"), "src")
    problems += _iri_checks(root.iter(f"{{{ATOM}}}id"))
    problems += _iri_checks((t for t in tombstones if t.get("ref") is not None), "ref")
    entries = root.findall("atom:entry", NS) if root.tag == f"{{{ATOM}}}feed" else [root]
    ids = [e.find("atom:id", NS) for e in entries]
    problems += duplicates([(_text(i).strip(), i.sourceline) for i in ids if i is not None], "unique-id", "atom:id")
    problems += duplicates([(f"{t.get('ref')} at {t.get('when')}", t.sourceline) for t in tombstones],
                            "unique-id", "at:deleted-entry (ref, when)")
    return problems + _atom_content_rules(root, entries, url)


def _atom_content_rules(root, entries, url: str | None) -> list[Problem]:
    problems = []
    for element in root.iter(f"{{{ATOM}}}content", f"{{{ATOM}}}summary"):
        name = etree.QName(element).localname
        if element.get("type") == "html":
            problems += html_url_problems(_text(element), element.sourceline, f"{name} type=\"html\"")
        elif element.get("type") == "xhtml":
            problems += element_url_problems(element.iter(), element.sourceline, f"{name} type=\"xhtml\"",
                                              offset_lines=False)
    problems += _media_checks(root)
    problems += title_checks(root.iter(f"{{{ATOM}}}title"))
    problems += _alternate_link_checks([root] + entries if root.tag == f"{{{ATOM}}}feed" else entries)
    if root.tag == f"{{{ATOM}}}feed":
        self_links = [(e.get("href", ""), e.sourceline) for e in root.iterfind("atom:link[@rel='self']", NS)]
        problems += self_link_problems(self_links, url, "atom:link rel=\"self\"")
    return problems


def _alternate_link_checks(holders) -> list[Problem]:
    """RFC 4287 4.1.1/4.1.2: at most one rel="alternate" link per (type, hreflang) in a feed or entry."""
    problems = []
    for holder in holders:
        links = [link for link in holder.findall("atom:link", NS) if link.get("rel", "alternate") == "alternate"]
        problems += duplicates([(f"type={link.get('type')} hreflang={link.get('hreflang')}", link.sourceline)
                                 for link in links], "atom-alternate", "rel=\"alternate\" link with")
    return problems


def _opml_rules(tree, body: bytes, url: str | None) -> list[Problem]:
    root = tree.getroot()
    problems = _date_checks(root.findall("head/dateCreated") + root.findall("head/dateModified"),
                             rfc822_date_problem, "rfc822-date")
    outlines = list(root.iter("outline"))
    problems += _date_checks([o for o in outlines if o.get("created") is not None], rfc822_date_problem,
                             "rfc822-date", "created")
    problems += url_checks(root.findall("head/ownerId") + root.findall("head/docs"))
    for attribute in ("xmlUrl", "htmlUrl", "url"):
        problems += url_checks(outlines, attribute)
    problems += title_checks(root.findall("head/title"))
    return problems


def _check_sitemap_common(body: bytes, tree, container: str) -> list[Problem]:
    problems = []
    if len(body) > SITEMAP_MAX_BYTES:
        problems.append(Problem("sitemap-limit", f"{len(body):,} bytes; a sitemap may have at most "
                                                 f"{SITEMAP_MAX_BYTES:,} uncompressed"))
    entries = tree.getroot().findall(f"sm:{container}", NS)
    if len(entries) > SITEMAP_MAX_URLS:
        problems.append(Problem("sitemap-limit", f"{len(entries):,} <{container}> entries; at most "
                                                 f"{SITEMAP_MAX_URLS:,} are allowed"))
    locs = [e.find("sm:loc", NS) for e in entries]
    problems += url_checks(loc for loc in locs if loc is not None)
    problems += duplicates([(_text(loc).strip(), loc.sourceline) for loc in locs if loc is not None],
                            "unique-id", "loc")
    problems += _date_checks([e.find("sm:lastmod", NS) for e in entries if e.find("sm:lastmod", NS) is not None],
                             w3c_datetime_problem, "w3c-datetime")
    return problems


def _sitemap_rules(tree, body: bytes, url: str | None, *, news_required: bool = False) -> list[Problem]:
    problems = _check_sitemap_common(body, tree, "url")
    if not news_required and tree.getroot().find("sm:url", NS) is None:
        problems.append(Problem("sitemap-empty", "a sitemap needs at least one <url> (only a news sitemap may be "
                                                 "empty, while no article is recent)", tree.getroot().sourceline))
    news = list(tree.getroot().iterfind("sm:url/news:news", NS))
    if len(news) > NEWS_MAX_ITEMS:
        problems.append(Problem("news-limit", f"{len(news):,} <news:news> tags; a news sitemap may have at most "
                                              f"{NEWS_MAX_ITEMS:,}"))
    for entry in tree.getroot().iterfind("sm:url", NS):
        count = len(entry.findall("news:news", NS))
        if count > 1 or (news_required and count == 0):
            problems.append(Problem("news-per-url", f"<url> has {count} <news:news> tags; exactly one is expected",
                                    entry.sourceline))
    problems += _date_checks(tree.getroot().iterfind("sm:url/news:news/news:publication_date", NS),
                             w3c_datetime_problem, "w3c-datetime")
    problems += title_checks(tree.getroot().iterfind("sm:url/news:news/news:title", NS))
    return problems


CHECKERS: dict[str, Checker] = {
    "rss": _xml_kind("rss2.rng", _rss_rules),
    "atom": _xml_kind("atom.rng", _atom_rules),
    "opml": _xml_kind("opml2.rng", _opml_rules),
    "sitemap": _xml_kind("sitemap-with-news", _sitemap_rules),
    "sitemapindex": _xml_kind("siteindex.xsd", lambda tree, body, url: _check_sitemap_common(body, tree, "sitemap")),
    "newssitemap": _xml_kind("sitemap-with-news", partial(_sitemap_rules, news_required=True)),
}
