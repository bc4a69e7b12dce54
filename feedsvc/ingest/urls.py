"""What a stored URL may be: the parsers every renderer uses (urlsplit, .hostname, .port, IDNA),
run once at ingest so a record that passes can never make a renderer fail, and the host as
headers need it (ASCII, IDNA A-labels).
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import SplitResult, quote, urlsplit

import idna

WEB_SCHEMES = ("http", "https")
# host[:port] with no user info: a bracketed IPv6 literal or a name, then an optional port.
_AUTHORITY = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<name>[^\[\]:@]+))(?::(?P<port>[0-9]*))?")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A CSP host-source host (CSP 3 §2.3.1): letters, digits and hyphens in dot-separated labels.
_CSP_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")


def checked_url(url: str) -> SplitResult:
    """`url` split as the renderers split it, with every part they read checked; raises ValueError
    saying why a renderer or a header would fail on it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed "[" in the authority; a port out of 0-65535
        raise ValueError(f"does not parse as a URL ({exc})") from None
    if parts.scheme.lower() not in WEB_SCHEMES:
        raise ValueError(f"has the scheme {parts.scheme!r}; only http and https are accepted")
    authority = _AUTHORITY.fullmatch(parts.netloc)
    if authority is None:
        raise ValueError(f"the authority {parts.netloc!r} is not host[:port] (user info and stray brackets "
                         "are refused)")
    if port == 0:
        raise ValueError("has the port 0, which no server listens on")
    host = parts.hostname or ""
    if authority["ipv6"] is not None and ":" not in host:  # "[v1.x]": brackets hold IPv6 or nothing
        raise ValueError(f"the host [{host}] is not an IPv6 address")
    ascii_host(host)
    bad = _BAD_PERCENT.search(url)
    if bad:
        raise ValueError(f"has a '%' at position {bad.start()} that does not start a %XX escape")
    return parts


# The IDNA codec is pure Python (~20 µs a host) and every URL of every imported record comes through
# here, mostly naming the same few hosts: remembered per host (a refused host raises again each time).
@lru_cache(maxsize=4096)
def ascii_host(host: str) -> str:
    """The host as it goes on the wire and in headers: IDNA 2008 A-labels (UTS 46 mapping), or
    an IPv6 literal as it is; raises ValueError for a host no resolver could look up."""
    if not host:
        raise ValueError("has no host")
    if ":" in host:
        if "%" in host:
            raise ValueError(f"the IPv6 address {host!r} has a zone id, which means nothing off its own machine")
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError as exc:
            raise ValueError(f"the host [{host}] is not an IPv6 address ({exc})") from None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"the host {host!r} is not a valid domain name ({exc})") from None


def csp_source(url: str) -> str | None:
    """`url`'s origin as a Content-Security-Policy host-source (scheme://a-label-host[:port]), or
    None when it cannot be one (an IPv6 literal, a malformed URL): never a string that could end
    the directive or add another."""
    try:
        parts = checked_url(url)
        host = ascii_host(parts.hostname or "")
    except ValueError:
        return None
    if not _CSP_HOST.fullmatch(host):
        return None
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


# Everything a URI may not hold unencoded (RFC 3986 §2): non-ASCII, space and controls, the ASCII
# characters that are neither reserved nor unreserved, and a "%" that starts no %XX escape.
_NOT_IN_URI = re.compile(r'[^\x21-\x7e]|["<>\\^`{|}]|%(?![0-9A-Fa-f]{2})')


# Pure, and called for every URL of every entry of every feed built (hundreds per 50-item feed,
# mostly the same URLs again as articles reappear): remembered per value. 4,096 of them: with 16,384
# the cache answered as many calls (82,345 of 99,605 against 82,292, replaying 1,500 URLs of bench row
# worker-rss-1m in process at 1,000,000 articles) and held 2.1 MiB more of a worker's RSS.
@lru_cache(maxsize=4096)
def uri(url: str) -> str:
    """`url` as a URI, by the mapping of RFC 3987 §3.1: the host in IDNA A-labels, every other
    character a URI may not hold percent-encoded as UTF-8; %XX escapes already there are kept, so
    mapping a URI again changes nothing. An ASCII URL that was a URI comes back unchanged."""
    if not _NOT_IN_URI.search(url):
        return url
    try:
        parts = urlsplit(url)
        if not parts.netloc.isascii():
            port = f":{parts.port}" if parts.port is not None else ""
            url = url.replace(parts.netloc, ascii_host(parts.hostname or "") + port, 1)
    except ValueError:
        pass  # not a host name: its UTF-8 is percent-encoded below, as RFC 3986 §3.2.2 allows
    return _NOT_IN_URI.sub(lambda found: quote(found.group(), safe=""), url)

