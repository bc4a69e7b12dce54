"""The rules no grammar expresses, on plain values: characters, dates, URLs, titles, ids, self links.

Each `*_problem` function returns why a value breaks its rule, or None; the `*_problems` ones return
`Problem`s. The format checkers (xmldocs, jsonfeed, pages) apply them to the right elements.
"""
from __future__ import annotations

import re
import string
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import lxml.html
from lxml import etree

from feedsvc.validate.problems import EPOCH, FUTURE_SLACK, Problem

# XML 1.0 section 2.2 Char: tab, LF, CR and U+0020 up, without the surrogate block and U+FFFE/U+FFFF.
_ILLEGAL_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def decode(body: bytes) -> tuple[str | None, list[Problem]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        line = body.count(b"\n", 0, err.start) + 1
        column = err.start - (body.rfind(b"\n", 0, err.start) + 1) + 1
        return None, [Problem("utf-8", f"not UTF-8: byte {body[err.start]:#04x} at offset {err.start}", line, column)]
    return text, []


def illegal_characters(text: str, where: str | None = None) -> list[Problem]:
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
    return None


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
        datetime.fromisoformat(f"{found['date']}T{time}")
    except ValueError as err:
        return f"{value!r}: not a real date and time ({err})"
    return None


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
    return None


def implausible_date_problem(value: str, now: datetime | None = None) -> str | None:
    """Why a well-formed date (RFC 822, RFC 3339 or W3C Datetime) cannot be true, or None.

    The W3C Feed Validation Service warns of dates before feeds existed and of dates in the future
    (ImplausibleDate); ours: before the Unix epoch, or more than FUTURE_SLACK after `now`, which
    absorbs clock skew and zone mistakes but not a wrong year.
    """
    when = date_instant(value)
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    if when < EPOCH:
        return f"{value.strip()!r} is before 1970: no story was published then"
    if when > now + FUTURE_SLACK:
        return f"{value.strip()!r} is in the future (now is {now.isoformat(timespec='seconds')})"
    return None


def date_instant(value: str) -> datetime | None:
    """The moment a well-formed date names (UTC when it gives no zone); None if it is not one."""
    value = value.strip()
    if _W3C_DATETIME.fullmatch(value):
        value = value + "-01" * (2 - value.count("-")) if "T" not in value else value
        value = value.replace(":60", ":59")  # a leap second names the same second for this purpose
    try:
        when = datetime.fromisoformat(value) if value[:4].isdigit() else parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# RFC 3986 section 2: unreserved, reserved and "%" (of a percent-encoding) are all a URI may hold.
# Non-ASCII is a rule of its own (non_ascii_url_problem: an IRI where a URI is expected).
_URI_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~" + ":/?#[]@" + "!$&'()*+,;=" + "%")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_problem(value: str, schemes: Iterable[str] = ("http", "https"), *, in_html: bool = False) -> str | None:
    """Why `value` is not an absolute URL with one of `schemes` (and a host for http/https), or None.

    A URL field or attribute must hold only what RFC 3986 allows; one `in_html` (an href in an HTML
    fragment) is read by the URL Standard's parser, which percent-encodes the rest itself.
    """
    url = value.strip()
    if not url:
        return "an empty URL"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in url):
        return f"{value!r} contains white space or a control character"
    unencoded = sorted({c for c in url if c.isascii() and c not in _URI_CHARACTERS})
    if not in_html and (unencoded or _STRAY_PERCENT.search(url)):
        shown = "".join(unencoded) or "%"
        return f"{value!r} contains {shown!r}, which RFC 3986 does not allow unencoded in a URL (percent-encode it)"
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


def non_ascii_url_problem(value: str) -> str | None:
    """Why `value`, given where a URI is expected, is an IRI (RFC 3987) instead, or None.

    RSS, Media RSS, OPML, sitemaps and many readers take URIs (RFC 3986: ASCII only); the W3C Feed
    Validation Service reports "IRI found where URL expected". RFC 3987 section 3.1 maps an IRI to
    its URI: UTF-8, then percent-encoding (and IDNA for a host).
    """
    found = next((c for c in value if not c.isascii()), None)
    if found is None:
        return None
    return (f"{value.strip()!r} holds {found!r} (U+{ord(found):04X}): an IRI where a URI is expected; "
            "percent-encode its UTF-8 bytes (RFC 3987 section 3.1)")


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
HREF_SCHEMES = ("http", "https", "mailto", "tel")


def html_url_problems(html: str, line: int | None, where: str) -> list[Problem]:
    """Relative or non-http(s) URLs inside an HTML fragment (content:encoded, content_html, ...)."""
    if not html.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div",
                                             parser=lxml.html.HTMLParser(no_network=True))
    except (etree.ParserError, ValueError) as err:
        return [Problem("html-parse", f"{where}: the HTML does not parse ({err})", line)]
    return element_url_problems(root.iter(), line, where, offset_lines=True)


def element_url_problems(elements, line: int | None, where: str, *, offset_lines: bool) -> list[Problem]:
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
                tag = etree.QName(element).localname
                reason = url_problem(candidate, HREF_SCHEMES if local == "href" else ("http", "https"), in_html=True)
                if reason:
                    problems.append(Problem("absolute-url", f"{where}: <{tag} {local}>: {reason}", at))
                elif reason := non_ascii_url_problem(candidate):
                    problems.append(Problem("iri-not-uri", f"{where}: <{tag} {local}>: {reason}", at))
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


def normalised_url(url: str) -> str:
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
    if normalised_url(href) != normalised_url(url):
        return [Problem("self-link", f"the {what} self link is {href}, but the document is served at {url}", line)]
    return []


def duplicates(values: list[tuple[str, int | None]], rule: str, what: str) -> list[Problem]:
    first_line = {}
    problems = []
    for value, line in values:
        if value in first_line:
            problems.append(Problem(rule, f"{what} {value!r} appears more than once (first on line "
                                          f"{first_line[value]})", line))
        else:
            first_line[value] = line
    return problems
