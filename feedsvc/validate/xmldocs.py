"""RSS 2.0, Atom 1.0, OPML 2.0 and sitemaps: safe parsing, the grammar, then the rules in code."""
from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from feedsvc.validate import xmlsafe
from feedsvc.validate.grammars import grammar_problems
from feedsvc.validate.html_content import html_content_problems, xhtml_content_problems
from feedsvc.validate.namespaces import namespace_problems
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
    date_instant,
    decode,
    duplicates,
    element_url_problems,
    html_url_problems,
    illegal_characters,
    implausible_date_problem,
    iri_problem,
    non_ascii_url_problem,
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
    """`rule` where `check` finds a malformed date; implausible-date where a well-formed one cannot be true."""
    problems = []
    for element in elements:
        value = element.get(attribute) if attribute else _text(element)
        name = etree.QName(element).localname + (f" {attribute}" if attribute else "")
        reason = check(value or "")
        if reason:
            problems.append(Problem(rule, f"<{name}>: {reason}", element.sourceline))
        elif reason := implausible_date_problem(value or ""):
            problems.append(Problem("implausible-date", f"<{name}>: {reason}", element.sourceline, severity="warning"))
    return problems


def url_checks(elements, attribute: str | None = None, schemes=("http", "https")) -> list[Problem]:
    """absolute-url where a value is no absolute URL; iri-not-uri where it is an IRI, not a URI."""
    problems = []
    for element in elements:
        value = element.get(attribute) if attribute else _text(element)
        if value is None:
            continue
        name = etree.QName(element).localname + (f" {attribute}" if attribute else "")
        reason = url_problem(value, schemes)
        if reason:
            problems.append(Problem("absolute-url", f"<{name}>: {reason}", element.sourceline))
        elif reason := non_ascii_url_problem(value):
            problems.append(Problem("iri-not-uri", f"<{name}>: {reason}", element.sourceline))
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
        where = etree.QName(element).localname
        problems += html_url_problems(_text(element), element.sourceline, where)
        if where == "encoded":
            problems += html_content_problems(_text(element), element.sourceline, where)
    problems += _media_checks(channel) + namespace_problems(root)
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
    problems += _duplicate_updated(entries) + namespace_problems(root)
    return problems + _atom_content_rules(root, entries, url)


def _duplicate_updated(entries) -> list[Problem]:
    """Entries with the same atom:updated instant: readers ordering or merging by it cannot tell them
    apart (the W3C Feed Validation Service: "Two entries with the same value for atom:updated")."""
    first: dict = {}
    problems = []
    for entry in entries:
        updated = entry.find("atom:updated", NS)
        if updated is None or rfc3339_date_problem(_text(updated)):
            continue
        instant = date_instant(_text(updated))
        if instant in first:
            problems.append(Problem("duplicate-updated", f"atom:updated {_text(updated)!r} is also the updated time "
                                                         f"of the entry on line {first[instant]}",
                                    updated.sourceline, severity="warning"))
        else:
            first[instant] = updated.sourceline
    return problems


def _atom_content_rules(root, entries, url: str | None) -> list[Problem]:
    problems = []
    for element in root.iter(f"{{{ATOM}}}content", f"{{{ATOM}}}summary"):
        name = etree.QName(element).localname
        if element.get("type") == "html":
            problems += html_url_problems(_text(element), element.sourceline, f"{name} type=\"html\"")
            if name == "content":
                problems += html_content_problems(_text(element), element.sourceline, f"{name} type=\"html\"")
        elif element.get("type") == "xhtml":
            problems += element_url_problems(element.iter(), element.sourceline, f"{name} type=\"xhtml\"",
                                              offset_lines=False)
            if name == "content":
                problems += xhtml_content_problems(element, f"{name} type=\"xhtml\"")
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
    problems += url_checks(root.findall("head/ownerId"))
    for attribute in ("xmlUrl", "htmlUrl", "url"):
        problems += url_checks(outlines, attribute)
    problems += title_checks(root.findall("head/title"))
    return problems + _opml_head_rules(root) + _opml_outline_rules(outlines)


# The head elements the W3C Feed Validation Service knows (OPML 2.0 also names <docs>, which the
# service rejects as "Undefined head element": a list that validates leaves it out).
OPML_HEAD = frozenset("title dateCreated dateModified ownerName ownerEmail ownerId expansionState "
                      "vertScrollState windowTop windowLeft windowBottom windowRight".split())
# Attributes that describe a subscription or link: on an outline without `type` the W3C service
# warns MissingOutlineType (a folder carries `text` alone).
_TYPED_ATTRIBUTES = ("description", "htmlUrl", "language", "title", "version", "xmlUrl")
# OPML 2.0: version is "RSS2", "RSS1" or "scriptingNews" (the service also takes "RSS").
OPML_FEED_VERSIONS = frozenset({"RSS", "RSS1", "RSS2", "scriptingNews"})
# Beyond the grammar (which requires xmlUrl of type="rss" and url of type="link"): the W3C service
# also warns of a subscription without a title (MissingTitleAttr).
_REQUIRED_BY_TYPE = {"rss": ("title",)}


def _opml_head_rules(root) -> list[Problem]:
    return [Problem("opml-head", f"<head> has <{child.tag}>, which OPML readers and the W3C validator do not "
                                 f"define (known: {', '.join(sorted(OPML_HEAD))})", child.sourceline)
            for head in root.findall("head") for child in head if isinstance(child.tag, str)
            and child.tag not in OPML_HEAD]


def _opml_outline_rules(outlines) -> list[Problem]:
    problems = []
    for outline in outlines:
        kind = (outline.get("type") or "").lower()
        if not kind:
            typed = [name for name in _TYPED_ATTRIBUTES if outline.get(name) is not None]
            if typed:
                problems.append(Problem("opml-outline", f"an outline with {', '.join(typed)} needs a type "
                                                        "(rss or link); a folder has text alone",
                                        outline.sourceline, severity="warning"))
            continue
        missing = [name for name in _REQUIRED_BY_TYPE.get(kind, ()) if not outline.get(name)]
        if missing:
            problems.append(Problem("opml-outline", f'a type="{kind}" outline needs {" and ".join(missing)}',
                                    outline.sourceline, severity="warning"))
        version = outline.get("version")
        if version is not None and version not in OPML_FEED_VERSIONS:
            problems.append(Problem("opml-outline", f"version={version!r} is none of "
                                                    f"{', '.join(sorted(OPML_FEED_VERSIONS))} (leave it out for "
                                                    "Atom and JSON Feed)", outline.sourceline, severity="warning"))
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


def _sitemap_rules(tree, body: bytes, url: str | None) -> list[Problem]:
    """The limits, and at most one <news:news> per <url>: Google lets a news sitemap keep an older
    URL without it, and the schema (url minOccurs 1) makes every urlset hold at least one URL."""
    problems = _check_sitemap_common(body, tree, "url")
    news = list(tree.getroot().iterfind("sm:url/news:news", NS))
    if len(news) > NEWS_MAX_ITEMS:
        problems.append(Problem("news-limit", f"{len(news):,} <news:news> tags; a news sitemap may have at most "
                                              f"{NEWS_MAX_ITEMS:,}"))
    for entry in tree.getroot().iterfind("sm:url", NS):
        count = len(entry.findall("news:news", NS))
        if count > 1:
            problems.append(Problem("news-per-url", f"<url> has {count} <news:news> tags; at most one is allowed",
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
    "newssitemap": _xml_kind("sitemap-with-news", _sitemap_rules),
}
