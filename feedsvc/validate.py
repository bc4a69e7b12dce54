"""Every document feedsvc serves, held to its standard: schemas, the rules they cannot express, and `flask validate`.

`validate_document(body, kind, url=...)` returns a list of `Problem`s (empty when the document is
valid). Each kind is checked in three layers:
  1. bytes and characters: UTF-8, XML 1.0 legal characters only (also inside JSON strings);
  2. the grammar shipped in feedsvc/schemas/ (RELAX NG, XML Schema, JSON Schema);
  3. rules a grammar cannot express: RFC 822 / RFC 3339 dates and their plausibility, absolute
     http(s) URLs (also inside content HTML), unique ids, the self link equal to the URL served,
     no markup in titles, the sitemap limits.
Other modules add checks for a kind with `register_checker` (the AMP helper plugs the official AMP
validator in that way). The tests, the `validate` command and the VALIDATE_ON_RENDER debug mode
(`init_app`) all call `validate_document`.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import sys
import threading
import urllib.request
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import click
from flask.cli import with_appcontext
from jsonschema import Draft202012Validator
from lxml import etree, isoschematron
import lxml.html

from . import xmlsafe

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
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
PLAUSIBLE_YEARS = range(1970, 2101)
MAX_PROBLEMS_PER_RULE = 50  # a broken feed of 200 items should not print 200 copies of one mistake


@dataclass(frozen=True)
class Problem:
    """One way a document breaks its standard: the rule broken, what is wrong, and where (1-based)."""
    rule: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.line}:{self.column or 0}: " if self.line else ""
        return f"{where}{self.rule}: {self.message}"

    def as_json(self) -> dict:
        return asdict(self)


Checker = Callable[[bytes, "str | None"], list[Problem]]
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
    problems = _BUILTIN[kind](body, url)
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


# ---- guessing the kind -----------------------------------------------------------------------

_MIME_KINDS = {"application/rss+xml": "rss", "application/atom+xml": "atom",
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
        return _MIME_KINDS.get(mime)
    kind = _ROOT_KINDS.get(root.tag, _MIME_KINDS.get(mime))
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


# ---- layer 1: bytes and characters -----------------------------------------------------------

# XML 1.0 section 2.2 Char: tab, LF, CR and U+0020 up, without the surrogate block and U+FFFE/U+FFFF.
_ILLEGAL_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _decode(body: bytes) -> tuple[str | None, list[Problem]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        line = body.count(b"\n", 0, err.start) + 1
        column = err.start - (body.rfind(b"\n", 0, err.start) + 1) + 1
        return None, [Problem("utf-8", f"not UTF-8: byte {body[err.start]:#04x} at offset {err.start}", line, column)]
    return text, []


def _illegal_characters(text: str, where: str | None = None) -> list[Problem]:
    """Characters XML 1.0 forbids; `where` names a JSON path, else the position is the line and column."""
    problems = []
    for found in _ILLEGAL_CHAR.finditer(text):
        char = f"U+{ord(found.group()):04X}"
        if where is not None:
            problems.append(Problem("xml-char", f"{where}: character {char} is not allowed in XML 1.0 text"))
            continue
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
        problems.append(Problem("xml-char", f"character {char} is not allowed in XML 1.0", line, column))
    return problems


def _parse_xml(body: bytes) -> tuple[etree._ElementTree | None, list[Problem]]:
    text, problems = _decode(body)
    if text is None:
        return None, problems
    problems = _illegal_characters(text)
    if problems:
        return None, problems
    try:
        return xmlsafe.parse(body), []
    except xmlsafe.UnsafeXMLError as err:
        return None, [Problem("xml-doctype", str(err).split(" (line")[0], err.line, err.column)]
    except etree.XMLSyntaxError as err:
        return None, [Problem("xml-wellformed", err.msg, err.lineno, err.offset)]


# ---- layer 2: grammars -----------------------------------------------------------------------

_local = threading.local()  # lxml validators keep their error log on the object: one per thread


def _validator(name: str):
    cache = _local.__dict__.setdefault("validators", {})
    if name not in cache:
        cache[name] = _load_validator(name)
    return cache[name]


def _load_validator(name: str):
    if name == "sitemap-with-news":
        # Lax wildcards in sitemap.xsd validate news:news strictly once its schema is loaded too.
        wrapper = (f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                   f'<xs:import namespace="{SITEMAP}" schemaLocation="sitemap.xsd"/>'
                   f'<xs:import namespace="{NEWS}" schemaLocation="sitemap-news.xsd"/></xs:schema>')
        return etree.XMLSchema(etree.fromstring(wrapper.encode(), xmlsafe.hardened_parser(),
                                                base_url=str(SCHEMA_DIR / "wrapper.xsd")))
    path = SCHEMA_DIR / name
    if name.endswith(".json"):
        return Draft202012Validator(json.loads(path.read_text("utf-8")))
    doc = etree.parse(str(path), xmlsafe.hardened_parser())
    if name.endswith(".xsd"):
        return etree.XMLSchema(doc)
    if name == "atom.rng":
        return etree.RelaxNG(doc), isoschematron.Schematron(doc, store_report=True)
    return etree.RelaxNG(doc)


def _grammar_problems(tree: etree._ElementTree, name: str) -> list[Problem]:
    rule = f"schema:{name.replace('sitemap-with-news', 'sitemap.xsd+sitemap-news.xsd')}"
    validator = _validator(name)
    schematron = None
    if isinstance(validator, tuple):
        validator, schematron = validator
    problems = []
    if not validator.validate(tree):
        problems = [Problem(rule, entry.message, entry.line or None, entry.column or None)
                    for entry in validator.error_log]
    if schematron is not None and not schematron.validate(tree):
        problems.extend(_schematron_problems(tree, schematron.validation_report, rule))
    return problems


def _schematron_problems(tree, report, rule: str) -> list[Problem]:
    problems = []
    for failed in report.iterfind(".//{http://purl.oclc.org/dsdl/svrl}failed-assert"):
        text = " ".join("".join(failed.itertext()).split())
        try:
            hits = tree.xpath(failed.get("location"))
        except etree.XPathError:
            hits = []
        line = hits[0].sourceline if hits and isinstance(hits[0], etree._Element) else None
        problems.append(Problem(rule, text, line))
    return problems


# ---- layer 3: rules a grammar cannot express --------------------------------------------------

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_WEEKDAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
_RFC822 = re.compile(
    r"(?:(?P<wday>[A-Za-z]{3}),\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})\s+(?P<year>\d{2,4})\s+"
    r"(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s+(?P<zone>[A-Za-z]{1,3}|[+-]\d{4})")
_RFC822_ZONES = {"UT": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
                 "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_RFC3339 = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(?P<t>[Tt ])(?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
                      r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?")
_W3C_DATETIME = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                           r"(?:Z|[+-]\d{2}:\d{2}))?)?)?")


def rfc822_date_problem(value: str) -> str | None:
    """Why `value` is not a plausible RSS date (RFC 822 as amended by RFC 1123), or None."""
    value = value.strip()
    found = _RFC822.fullmatch(value)
    if not found:
        return f"{value!r} is not an RFC 822 date like 'Wed, 23 Jul 2025 10:00:00 +0000'"
    if len(found["year"]) != 4:
        return f"{value!r}: the year needs four digits (RFC 1123 section 5.2.14)"
    if found["month"] not in _MONTHS:
        return f"{value!r}: unknown month {found['month']!r}"
    zone = found["zone"]
    if zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[3:])
        if hours > 14 or minutes > 59:
            return f"{value!r}: implausible time zone offset {zone}"
        offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
    elif zone in _RFC822_ZONES:
        offset = timedelta(hours=_RFC822_ZONES[zone])
    else:
        return f"{value!r}: time zone {zone!r} is not one RFC 822 defines (use +hhmm or GMT)"
    try:
        when = datetime(int(found["year"]), _MONTHS[found["month"]], int(found["day"]), int(found["hour"]),
                        int(found["minute"]), int(found["second"] or 0), tzinfo=timezone(offset))
    except ValueError as err:
        return f"{value!r}: not a real date and time ({err})"
    if found["wday"] and found["wday"] != _WEEKDAYS[when.weekday()]:
        return f"{value!r}: {when.date()} is a {_WEEKDAYS[when.weekday()]}, not a {found['wday']}"
    return _implausible_year(value, when.year)


def rfc3339_date_problem(value: str) -> str | None:
    """Why `value` is not a plausible RFC 3339 date-time (Atom section 3.3, JSON Feed), or None."""
    found = _RFC3339.fullmatch(value)
    if not found:
        return f"{value!r} is not an RFC 3339 date-time like '2025-07-23T10:00:00+05:30'"
    if found["zone"] is None:
        return f"{value!r}: no time zone offset (RFC 3339 section 5.6 requires Z or +hh:mm)"
    if found["t"] != "T" or found["zone"] == "z":
        return f"{value!r}: use an uppercase 'T' and 'Z' (RFC 4287 section 3.3)"
    if found["zone"] == "-00:00":
        return f"{value!r}: -00:00 means the local offset is unknown (RFC 3339 section 4.3)"
    zone = found["zone"]
    if zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:]) > 59):
        return f"{value!r}: time zone offset {zone} is out of range"
    time = found["time"]
    if time.endswith(":60") and time.startswith("23:59"):  # a leap second is valid RFC 3339
        time = "23:59:59"
    try:
        when = datetime.fromisoformat(f"{found['date']}T{time}")
    except ValueError as err:
        return f"{value!r}: not a real date and time ({err})"
    return _implausible_year(value, when.year)


def w3c_datetime_problem(value: str) -> str | None:
    """Why `value` is not a plausible W3C Datetime (sitemaps: YYYY, YYYY-MM, YYYY-MM-DD or with time)."""
    value = value.strip()
    if not _W3C_DATETIME.fullmatch(value):
        return f"{value!r} is not a W3C Datetime like '2025-07-23' or '2025-07-23T10:00:00+05:30'"
    if "T" in value:
        date, _, time = value.partition("T")
        if len(time) == 5 or time[5] != ":":  # hh:mm without seconds is a W3C Datetime form
            time = time[:5] + ":00" + time[5:]
        return rfc3339_date_problem(f"{date}T{time}")
    parts = [int(p) for p in value.split("-")] + [1, 1]
    try:
        datetime(parts[0], parts[1], parts[2])
    except ValueError as err:
        return f"{value!r}: not a real date ({err})"
    return _implausible_year(value, parts[0])


def _implausible_year(value: str, year: int) -> str | None:
    if year not in PLAUSIBLE_YEARS:
        return f"{value!r}: year {year} is implausible (expected {PLAUSIBLE_YEARS.start}..{PLAUSIBLE_YEARS.stop - 1})"
    return None


def url_problem(value: str, schemes: Iterable[str] = ("http", "https")) -> str | None:
    """Why `value` is not an absolute URL with one of `schemes` (and a host for http/https), or None."""
    url = value.strip()
    if not url:
        return "an empty URL"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in url):
        return f"{value!r} contains white space or a control character"
    try:
        parts = urlsplit(url)
        host = parts.hostname if parts.scheme in ("http", "https") else "-"
    except ValueError as err:
        return f"{value!r} is not a URL ({err})"
    if not parts.scheme:
        return f"{value!r} is a relative URL; an absolute {'/'.join(schemes)} URL is required"
    if parts.scheme.lower() not in schemes:
        return f"{value!r} has the scheme {parts.scheme!r}; {'/'.join(schemes)} is required"
    if not host:
        return f"{value!r} has no host"
    return None


def iri_problem(value: str) -> str | None:
    """Why `value` is not an absolute IRI (Atom ids and tombstone refs, RFC 4287 section 4.2.6), or None."""
    value = value.strip()
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
        return f"{value!r} is not an absolute IRI"
    if value.lower().startswith(("http:", "https:")):
        return url_problem(value)
    return None


# HTML attributes whose value is a URL a reader will fetch or follow. href may also be mailto:/tel:.
_HTML_URL_ATTRIBUTES = ("href", "src", "poster", "cite", "data", "action", "formaction", "longdesc",
                        "background")
_HREF_SCHEMES = ("http", "https", "mailto", "tel")


def html_url_problems(html: str, line: int | None, where: str) -> list[Problem]:
    """Relative or non-http(s) URLs inside an HTML fragment (content:encoded, content_html, ...)."""
    if not html.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div",
                                             parser=lxml.html.HTMLParser(no_network=True))
    except (etree.ParserError, ValueError) as err:
        return [Problem("html-parse", f"{where}: the HTML does not parse ({err})", line)]
    return _element_url_problems(root.iter(), line, where, offset_lines=True)


def _element_url_problems(elements, line: int | None, where: str, *, offset_lines: bool) -> list[Problem]:
    problems = []
    for element in elements:
        if not isinstance(element.tag, str):
            continue
        at = line
        if offset_lines and line and element.sourceline:
            at = line + element.sourceline - 1
        for name, value in element.attrib.items():
            local = etree.QName(name).localname.lower()
            candidates = []
            if local in _HTML_URL_ATTRIBUTES:
                candidates = [value]
            elif local == "srcset":
                candidates = [c.strip().split()[0] for c in value.split(",") if c.strip()]
            for candidate in candidates:
                reason = url_problem(candidate, _HREF_SCHEMES if local == "href" else ("http", "https"))
                if reason:
                    tag = etree.QName(element).localname
                    problems.append(Problem("absolute-url", f"{where}: <{tag} {local}>: {reason}", at))
    return problems


# An HTML start or end tag: "<" directly followed by a letter or "/" (HTML tokenizer, tag open state).
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>")
_CHARREF = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


def title_problem(text: str) -> str | None:
    """Why a title (as a reader will see it after XML/JSON decoding) carries markup, or None."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    tag = _TAG.search(text)
    if tag:
        return f"the title {shown!r} contains markup {tag.group()!r}; titles are plain text"
    ref = _CHARREF.search(text)
    if ref:
        return f"the title {shown!r} contains the character reference {ref.group()!r} (escaped twice?)"
    return None


def _normalised_url(url: str) -> str:
    parts = urlsplit(url.strip())
    netloc = parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(parts.scheme.lower())
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment))


def self_link_problems(found: list[tuple[str, int | None]], url: str | None, what: str) -> list[Problem]:
    """`found` are the (href, line) of the document's self links; exactly one, equal to `url` if known."""
    if len(found) > 1:
        return [Problem("self-link", f"{len(found)} {what} self links; exactly one is expected", found[1][1])]
    if url is None:
        return []
    if not found:
        return [Problem("self-link", f"no {what} self link; it should be {url}")]
    href, line = found[0]
    if _normalised_url(href) != _normalised_url(url):
        return [Problem("self-link", f"the {what} self link is {href}, but the document is served at {url}", line)]
    return []


def _duplicates(values: list[tuple[str, int | None]], rule: str, what: str) -> list[Problem]:
    first_line = {}
    problems = []
    for value, line in values:
        if value in first_line:
            problems.append(Problem(rule, f"{what} {value!r} appears more than once (first on line "
                                          f"{first_line[value]})", line))
        else:
            first_line[value] = line
    return problems


# ---- XML feeds -------------------------------------------------------------------------------

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


def _url_checks(elements, attribute: str | None = None, schemes=("http", "https")) -> list[Problem]:
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


def _title_checks(elements) -> list[Problem]:
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
    return (_url_checks(root.iterfind(".//media:content", NS), "url")
            + _url_checks(root.iterfind(".//media:thumbnail", NS), "url")
            + _title_checks(e for e in root.iterfind(".//media:title", NS) if e.get("type") != "html"))


def _xml_kind(schema: str, rules: Callable[[etree._ElementTree, bytes, "str | None"], list[Problem]]) -> Checker:
    """A checker: well-formed and safe XML, then the grammar `schema`, then `rules(tree, body, url)`."""
    def check(body: bytes, url: str | None) -> list[Problem]:
        tree, problems = _parse_xml(body)
        if tree is None:
            return problems
        return _grammar_problems(tree, schema) + rules(tree, body, url)
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
    problems += _url_checks(channel.findall("link") + channel.findall("docs") + channel.findall("image/url")
                            + channel.findall("image/link") + channel.findall("textInput/link")
                            + [e for item in items for e in item.findall("link") + item.findall("comments")])
    problems += _url_checks([e for item in items for e in item.findall("enclosure")], "url")
    problems += _url_checks([e for item in items for e in item.findall("source")], "url")
    problems += _url_checks(root.iterfind(".//atom:link", NS), "href")
    guids = [g for item in items for g in item.findall("guid")]
    problems += _url_checks(g for g in guids if g.get("isPermaLink", "true") == "true")
    problems += _duplicates([(_text(g).strip(), g.sourceline) for g in guids], "unique-id", "guid")
    for element in [d for item in items for d in item.findall("description")] \
            + list(channel.iterfind("item/content:encoded", NS)):
        problems += html_url_problems(_text(element), element.sourceline, etree.QName(element).localname)
    problems += _media_checks(channel)
    problems += _title_checks(channel.findall("title") + channel.findall("image/title")
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
    problems += _url_checks(root.iter(f"{{{ATOM}}}link"), "href")
    problems += _url_checks(root.iter(f"{{{ATOM}}}icon", f"{{{ATOM}}}logo", f"{{{ATOM}}}uri"))
    problems += _url_checks(root.iter(f"{{{ATOM}}}generator"), "uri")
    problems += _url_checks(root.iter(f"{{{ATOM}}}content"), "src")
    problems += _iri_checks(root.iter(f"{{{ATOM}}}id"))
    problems += _iri_checks((t for t in tombstones if t.get("ref") is not None), "ref")
    entries = root.findall("atom:entry", NS) if root.tag == f"{{{ATOM}}}feed" else [root]
    ids = [e.find("atom:id", NS) for e in entries]
    problems += _duplicates([(_text(i).strip(), i.sourceline) for i in ids if i is not None], "unique-id", "atom:id")
    problems += _duplicates([(f"{t.get('ref')} at {t.get('when')}", t.sourceline) for t in tombstones],
                            "unique-id", "at:deleted-entry (ref, when)")
    return problems + _atom_content_rules(root, entries, url)


def _atom_content_rules(root, entries, url: str | None) -> list[Problem]:
    problems = []
    for element in root.iter(f"{{{ATOM}}}content", f"{{{ATOM}}}summary"):
        name = etree.QName(element).localname
        if element.get("type") == "html":
            problems += html_url_problems(_text(element), element.sourceline, f"{name} type=\"html\"")
        elif element.get("type") == "xhtml":
            problems += _element_url_problems(element.iter(), element.sourceline, f"{name} type=\"xhtml\"",
                                              offset_lines=False)
    problems += _media_checks(root)
    problems += _title_checks(root.iter(f"{{{ATOM}}}title"))
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
        problems += _duplicates([(f"type={link.get('type')} hreflang={link.get('hreflang')}", link.sourceline)
                                 for link in links], "atom-alternate", "rel=\"alternate\" link with")
    return problems


def _opml_rules(tree, body: bytes, url: str | None) -> list[Problem]:
    root = tree.getroot()
    problems = _date_checks(root.findall("head/dateCreated") + root.findall("head/dateModified"),
                             rfc822_date_problem, "rfc822-date")
    outlines = list(root.iter("outline"))
    problems += _date_checks([o for o in outlines if o.get("created") is not None], rfc822_date_problem,
                             "rfc822-date", "created")
    problems += _url_checks(root.findall("head/ownerId") + root.findall("head/docs"))
    for attribute in ("xmlUrl", "htmlUrl", "url"):
        problems += _url_checks(outlines, attribute)
    problems += _title_checks(root.findall("head/title"))
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
    problems += _url_checks(loc for loc in locs if loc is not None)
    problems += _duplicates([(_text(loc).strip(), loc.sourceline) for loc in locs if loc is not None],
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
    problems += _title_checks(tree.getroot().iterfind("sm:url/news:news/news:title", NS))
    return problems


# ---- JSON Feed -------------------------------------------------------------------------------

def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"duplicate keys {', '.join(duplicated)}")
    return dict(pairs)


def _json_strings(value, path: str = "$"):
    """(path, string) for every key and string value in a decoded JSON document."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path} key {key!r}", key
            yield from _json_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, f"{path}[{index}]")


def _check_jsonfeed(body: bytes, url: str | None) -> list[Problem]:
    text, problems = _decode(body)
    if text is None:
        return problems
    try:
        feed = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        return [Problem("json-syntax", err.msg, err.lineno, err.colno)]
    except ValueError as err:
        return [Problem("json-syntax", str(err))]
    for path, string in _json_strings(feed):
        problems += _illegal_characters(string, path)
    for error in sorted(_validator("jsonfeed-1.1.json").iter_errors(feed), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(Problem("schema:jsonfeed-1.1.json", f"{where}: {_schema_message(error)}"))
    if not isinstance(feed, dict):
        return problems
    items = [i for i in feed.get("items", []) if isinstance(i, dict)] if isinstance(feed.get("items"), list) else []
    problems += _json_feed_rules(feed, items, url)
    return problems


def _schema_message(error) -> str:
    """jsonschema's message, without the dump of a whole item when an anyOf of `required`s fails."""
    alternatives = error.validator_value if error.validator == "anyOf" else None
    if alternatives and all(set(a) == {"required"} for a in alternatives):
        names = ", ".join(name for a in alternatives for name in a["required"])
        return f"needs at least one of {names}"
    return error.message if len(error.message) <= 300 else error.message[:300] + "..."


def _json_feed_rules(feed: dict, items: list[dict], url: str | None) -> list[Problem]:
    problems = []

    def check_url(path: str, value, schemes=("http", "https")):
        if isinstance(value, str):
            reason = url_problem(value, schemes)
            if reason:
                problems.append(Problem("absolute-url", f"{path}: {reason}"))

    def check_authors(path: str, holder: dict):
        authors = holder.get("authors") if isinstance(holder.get("authors"), list) else []
        for index, author in enumerate(authors + [holder.get("author")]):
            if isinstance(author, dict):
                where = f"{path}.authors[{index}]" if index < len(authors) else f"{path}.author"
                check_url(f"{where}.url", author.get("url"), _HREF_SCHEMES)
                check_url(f"{where}.avatar", author.get("avatar"))

    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        check_url(f"$.{key}", feed.get(key))
    check_authors("$", feed)
    for index, hub in enumerate(feed.get("hubs") or []):
        if isinstance(hub, dict):
            check_url(f"$.hubs[{index}].url", hub.get("url"))
    titles = [("$.title", feed.get("title"))]
    for index, item in enumerate(items):
        path = f"$.items[{index}]"
        for key in ("url", "external_url", "image", "banner_image"):
            check_url(f"{path}.{key}", item.get(key))
        check_authors(path, item)
        for number, attachment in enumerate(item.get("attachments") or []):
            if isinstance(attachment, dict):
                check_url(f"{path}.attachments[{number}].url", attachment.get("url"))
        for key in ("date_published", "date_modified"):
            if isinstance(item.get(key), str):
                reason = rfc3339_date_problem(item[key])
                if reason:
                    problems.append(Problem("rfc3339-date", f"{path}.{key}: {reason}"))
        if isinstance(item.get("content_html"), str):
            problems += html_url_problems(item["content_html"], None, f"{path}.content_html")
        titles.append((f"{path}.title", item.get("title")))
    for path, title in titles:
        reason = title_problem(title) if isinstance(title, str) else None
        if reason:
            problems.append(Problem("title-markup", f"{path}: {reason}"))
    problems += _duplicates([(str(i.get("id")), None) for i in items if "id" in i], "unique-id", "item id")
    if url is not None:
        feed_url = feed.get("feed_url")
        if not isinstance(feed_url, str):
            problems.append(Problem("self-link", f"no feed_url; it should be {url}"))
        elif _normalised_url(feed_url) != _normalised_url(url):
            problems.append(Problem("self-link", f"feed_url is {feed_url}, but the feed is served at {url}"))
    return problems


# ---- HTML and AMP pages ----------------------------------------------------------------------

def _parse_html(body: bytes) -> tuple[etree._ElementTree | None, list[Problem]]:
    text, problems = _decode(body)
    if text is None:
        return None, problems
    problems = _illegal_characters(text)
    parser = etree.HTMLParser(no_network=True, recover=True, encoding="utf-8")
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as err:
        return None, problems + [Problem("html-parse", err.msg, err.lineno, err.offset)]
    if root is None:
        return None, problems + [Problem("html-parse", "no HTML document")]
    problems += [Problem("html-parse", entry.message, entry.line or None, entry.column or None)
                 for entry in parser.error_log if entry.level >= etree.ErrorLevels.ERROR]
    return root.getroottree(), problems


def _check_html(body: bytes, url: str | None) -> list[Problem]:
    tree, problems = _parse_html(body)
    if tree is None:
        return problems
    root = tree.getroot()
    if (tree.docinfo.doctype or "").lower() != "<!doctype html>":
        problems.append(Problem("html-doctype", f"the document starts with {tree.docinfo.doctype or 'no doctype'!r};"
                                                " HTML5 needs <!DOCTYPE html>", 1))
    if not root.get("lang"):
        problems.append(Problem("html-lang", "<html> has no lang attribute", root.sourceline))
    charsets = [m.get("charset", "").lower() for m in root.iterfind("head/meta[@charset]")]
    if charsets != ["utf-8"]:
        problems.append(Problem("html-charset", f"expected one <meta charset=\"utf-8\"> in <head>, found {charsets}"))
    titles = root.findall("head/title")
    if len(titles) != 1 or not (titles[0].text or "").strip():
        problems.append(Problem("html-title", f"expected one non-empty <title> in <head>, found {len(titles)}"))
    problems += _title_checks(titles)
    problems += _url_checks(root.iterfind("head/link[@rel='canonical']"), "href")
    problems += _url_checks((link for link in root.iterfind("head/link[@rel='alternate']")
                             if link.get("type") in _MIME_KINDS or link.get("type") == "application/json"), "href")
    return problems


_AMP_RUNTIME = "https://cdn.ampproject.org/v0.js"
_AMP_DISALLOWED = ("img", "iframe", "video", "audio", "object", "embed", "frame", "frameset", "applet")


def _check_amp(body: bytes, url: str | None) -> list[Problem]:
    """The AMP page requirements (amp.dev 'Create your AMP HTML page'); the official validator can be
    added with register_checker("amp", ...)."""
    problems = _check_html(body, url)
    tree, _ = _parse_html(body)
    if tree is None:
        return problems
    root = tree.getroot()
    if not any(name in ("\u26a1", "amp") for name in root.attrib):
        problems.append(Problem("amp", "<html> needs the \u26a1 (or amp) attribute", root.sourceline))
    head = root.find("head")
    first = head[0] if head is not None and len(head) else None
    if first is None or first.tag != "meta" or (first.get("charset") or "").lower() != "utf-8":
        problems.append(Problem("amp", "<meta charset=\"utf-8\"> must be the first child of <head>"))
    if root.find("head/link[@rel='canonical']") is None:
        problems.append(Problem("amp", "AMP pages need <link rel=\"canonical\"> to the regular page"))
    if root.find("head/meta[@name='viewport']") is None:
        problems.append(Problem("amp", "AMP pages need <meta name=\"viewport\">"))
    if not any(s.get("src") == _AMP_RUNTIME and s.get("async") is not None for s in root.iterfind("head/script")):
        problems.append(Problem("amp", f"AMP pages need <script async src=\"{_AMP_RUNTIME}\"> in <head>"))
    if root.find("head/style[@amp-boilerplate]") is None:
        problems.append(Problem("amp", "AMP pages need the <style amp-boilerplate> in <head>"))
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in _AMP_DISALLOWED and not element.iterancestors("noscript"):
            problems.append(Problem("amp", f"<{element.tag}> is not allowed in AMP (use its amp-* component)",
                                    element.sourceline))
        elif element.tag == "script" and not _amp_script_allowed(element):
            problems.append(Problem("amp", "only the AMP runtime, amp-* extensions and JSON-LD scripts are allowed",
                                    element.sourceline))
        bad = [name for name in element.attrib if name.lower().startswith("on")]
        if bad:
            problems.append(Problem("amp", f"<{element.tag}> has event handler attributes {bad}", element.sourceline))
    return problems


def _amp_script_allowed(script) -> bool:
    if script.get("type") == "application/ld+json" and not script.get("src"):
        return True
    src = script.get("src") or ""
    return script.get("async") is not None and src.startswith("https://cdn.ampproject.org/")


_BUILTIN: dict[str, Callable[[bytes, str | None], list[Problem]]] = {
    "rss": _xml_kind("rss2.rng", _rss_rules),
    "atom": _xml_kind("atom.rng", _atom_rules),
    "jsonfeed": _check_jsonfeed,
    "opml": _xml_kind("opml2.rng", _opml_rules),
    "sitemap": _xml_kind("sitemap-with-news", _sitemap_rules),
    "sitemapindex": _xml_kind("siteindex.xsd", lambda tree, body, url: _check_sitemap_common(body, tree, "sitemap")),
    "newssitemap": _xml_kind("sitemap-with-news", partial(_sitemap_rules, news_required=True)),
    "html": _check_html,
    "amp": _check_amp,
}


# ---- debug mode: validate every response -----------------------------------------------------

def _decoded_body(response) -> bytes:
    body = response.get_data()
    encoding = (response.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        import brotli
        return brotli.decompress(body)
    return body


def init_app(app) -> None:
    """With VALIDATE_ON_RENDER set, validate every 200 response before it is sent; log loudly on failure."""
    if not app.config.get("VALIDATE_ON_RENDER"):
        return
    from flask import request

    @app.after_request
    def _validate_response(response):
        if response.status_code != 200 or response.direct_passthrough or response.is_streamed:
            return response
        body = _decoded_body(response)
        kind = guess_kind(body, response.content_type)
        if kind is None:
            return response
        served = app.config.get("SITE_URL", request.host_url.rstrip("/")) + request.full_path.rstrip("?")
        problems = validate_document(body, kind, url=served)
        response.headers["X-Feedsvc-Validation"] = "ok" if not problems else f"failed: {len(problems)} problems"
        if problems:
            app.logger.error("VALIDATION FAILED: %s (%s), %d problems:\n%s", served, kind, len(problems),
                             "\n".join(f"  {p}" for p in problems))
        return response


# ---- the command -----------------------------------------------------------------------------

MAX_FETCH_BYTES = SITEMAP_MAX_BYTES + 1024 * 1024
FETCH_TIMEOUT = 30


@dataclass
class Outcome:
    target: str
    kind: str | None
    problems: list[Problem]

    def as_json(self) -> dict:
        return {"target": self.target, "kind": self.kind, "ok": not self.problems,
                "problems": [p.as_json() for p in self.problems]}


def _fetch_url(url: str) -> tuple[bytes, str | None]:
    if urlsplit(url).scheme not in ("http", "https"):
        raise click.BadParameter(f"{url}: only http and https URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity", "User-Agent": "feedsvc-validate"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # nosec B310: scheme checked above
        body = response.read(MAX_FETCH_BYTES + 1)
        if len(body) > MAX_FETCH_BYTES:
            raise OSError(f"larger than {MAX_FETCH_BYTES:,} bytes; not validated")
        return body, response.headers.get("Content-Type")


def check_target(target: str, kind: str | None = None, url: str | None = None) -> Outcome:
    """Validate a file or an http(s) URL; the URL is also the self link the document must carry."""
    try:
        if re.match(r"https?://", target):
            body, content_type = _fetch_url(target)
            url = url or target
        else:
            body, content_type = Path(target).read_bytes(), None
    except OSError as err:
        return Outcome(target, kind, [Problem("fetch", str(err))])
    kind = kind or guess_kind(body, content_type)
    if kind is None:
        return Outcome(target, None, [Problem("kind", "cannot tell what kind of document this is; use --kind")])
    return Outcome(target, kind, validate_document(body, kind, url=url))


def check_served(client, url: str, kind: str | None = None) -> tuple[Outcome, bytes]:
    """Fetch an absolute URL of this app through its test client and validate it."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    response = client.get(path, headers={"Accept-Encoding": "identity"})
    body = response.get_data()
    if response.status_code != 200:
        return Outcome(path, kind, [Problem("http-status", f"{response.status_code} for {path}")]), b""
    kind = kind or guess_kind(body, response.content_type)
    if kind is None:
        return Outcome(path, None, [Problem("kind", f"unknown document kind ({response.content_type})")]), body
    return Outcome(path, kind, validate_document(body, kind, url=url)), body


def served_documents(app) -> list[Outcome]:
    """Every document the app serves: `feed_documents` and `page_documents`."""
    return feed_documents(app) + page_documents(app)


@contextmanager
def _unthrottled(app):
    """Rate limits are for readers on the network; a validation run asks for every feed at once."""
    limiter = app.extensions.get("feedsvc.limiter")
    enabled = getattr(limiter, "enabled", False)
    if limiter is not None:
        limiter.enabled = False
    try:
        yield app.test_client()
    finally:
        if limiter is not None:
            limiter.enabled = enabled


def feed_documents(app) -> list[Outcome]:
    """/feeds.opml, every feed it lists, the /feeds directory page and the sitemaps."""
    site = app.config["SITE_URL"].rstrip("/")
    with _unthrottled(app) as client:
        opml, body = check_served(client, f"{site}/feeds.opml", "opml")
        outcomes = [opml]
        for feed_url in _feed_urls(body):
            outcomes.append(check_served(client, feed_url)[0])
        outcomes.append(check_served(client, f"{site}/feeds", "html")[0])
        return outcomes + _sitemap_outcomes(client, site)


def _feed_urls(opml: bytes) -> list[str]:
    """The xmlUrl of every outline; the OPML lists the RSS feeds, and by the feed URL contract
    (.../rss.xml, .../atom.xml, .../feed.json side by side) the Atom and JSON feeds are beside them."""
    urls = []
    for outline in xmlsafe.fromstring(opml).iter("outline") if opml else []:
        xml_url = outline.get("xmlUrl")
        if not xml_url:
            continue
        urls.append(xml_url)
        if urlsplit(xml_url).path.endswith("/rss.xml"):
            urls += [xml_url.replace("/rss.xml", f"/{name}", 1) for name in ("atom.xml", "feed.json")]
    return list(dict.fromkeys(urls))


def _sitemap_outcomes(client, site: str) -> list[Outcome]:
    """The news sitemap and the sitemap index with each sitemap it lists, when they are served."""
    outcomes = []
    if client.head("/sitemaps/news.xml").status_code == 200:
        outcomes.append(check_served(client, f"{site}/sitemaps/news.xml", "newssitemap")[0])
    if client.head("/sitemap.xml").status_code == 200:
        index, body = check_served(client, f"{site}/sitemap.xml")
        outcomes.append(index)
        if body and index.kind == "sitemapindex":
            for loc in xmlsafe.fromstring(body).iterfind("sm:sitemap/sm:loc", NS):
                outcomes.append(check_served(client, (loc.text or "").strip(), "sitemap")[0])
    return outcomes


def page_documents(app) -> list[Outcome]:
    """Each live article's canonical page (from the store), and its AMP page when the page links one."""
    from . import store
    outcomes = []
    with app.extensions["feedsvc.engine"].connect() as conn:
        articles, after = [], None
        while True:
            page = store.newest(conn, "site", 500, after)
            articles += page
            if len(page) < 500:
                break
            after = store.Cursor(store.utc(page[-1].published).replace(tzinfo=None), page[-1].id)
    with _unthrottled(app) as client:
        for article in articles:
            outcome, body = check_served(client, article.url)
            outcomes.append(outcome)
            if body and outcome.kind in ("html", "amp"):
                amp = lxml.html.fromstring(body).find(".//link[@rel='amphtml']")
                if amp is not None and amp.get("href"):
                    outcomes.append(check_served(client, amp.get("href"), "amp")[0])
    return outcomes


def _print_outcome(outcome: Outcome) -> None:
    if not outcome.problems:
        click.echo(f"ok  {outcome.target}")
        return
    for problem in outcome.problems:
        where = f"{problem.line}:{problem.column or 0}" if problem.line else "-"
        click.echo(f"{outcome.target}:{where}: {problem.rule}: {problem.message}")


@click.command("validate")
@click.argument("targets", nargs=-1)
@click.option("--all", "check_all", is_flag=True,
              help="Every feed listed in /feeds.opml, the OPML, the sitemaps and every live article's pages.")
@click.option("--kind", type=click.Choice(KINDS), help="The kind of every TARGET (default: guessed).")
@click.option("--url", "served_url", help="The URL a single file TARGET is served at (checks its self link).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_appcontext
def validate_command(targets, check_all, kind, served_url, output_format):
    """Validate TARGET files or http(s) URLs (or --all) against their feed/page standards.

    Prints 'ok  TARGET' or one line per problem (TARGET:LINE:COLUMN: RULE: MESSAGE) and exits
    with status 1 if any document has a problem.
    """
    from flask import current_app
    if not targets and not check_all:
        raise click.UsageError("give one or more files or URLs, or --all")
    if served_url and len(targets) != 1:
        raise click.UsageError("--url applies to a single TARGET")
    outcomes = [check_target(t, kind, served_url) for t in targets]
    if check_all:
        outcomes += served_documents(current_app._get_current_object())
    if output_format == "json":
        click.echo(json.dumps([o.as_json() for o in outcomes], ensure_ascii=False, indent=2))
    else:
        for outcome in outcomes:
            _print_outcome(outcome)
    if any(o.problems for o in outcomes):
        sys.exit(1)
