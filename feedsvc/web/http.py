"""HTTP caching in one place: ETag, Last-Modified, 304, Cache-Control, content encodings, CORS, Link.

Views hand over what they know before building anything (the validator and the modification
time); `conditional_response` answers 304 from those alone and only then asks for the bodies,
already compressed, choosing the encoding from Accept-Encoding. Malformed request headers are
ignored, as if absent, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import lru_cache
from typing import Callable, Mapping

from flask import Response, current_app, request
from werkzeug.http import parse_date
from werkzeug.urls import iri_to_uri

# Preferred first when a client accepts several equally.
ENCODINGS = ("br", "gzip", "identity")
# The ETag of a compressed body is the validator plus this suffix: each encoding is a different
# sequence of bytes, so a strong ETag must differ; If-None-Match is compared without it.
ETAG_SUFFIX = {"identity": "", "gzip": "-gzip", "br": "-br"}
# An in-process caller (the static mirror, through the test client) that puts a list under this key
# in the WSGI environ gets a 200's mapping of encodings appended to it: one request instead of one per
# encoding, and each encoding compressed only when the caller reads it (render_cache.Encodings), so
# the mirror can write the plain file before the compressed ones. No HTTP request can carry it (a
# server turns headers into HTTP_* keys).
ALL_BODIES = "feedsvc.all_bodies"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Link",
}


@dataclass(frozen=True)
class Caching:
    """How long shared caches may keep a response; `private` for per-client (partner) responses."""
    max_age: int
    stale_while_revalidate: int = 0
    stale_if_error: int = 0
    private: bool = False

    @classmethod
    def from_config(cls, config, *, private: bool = False) -> "Caching":
        return cls(config["CACHE_MAX_AGE"], config["CACHE_STALE_WHILE_REVALIDATE"],
                   config["CACHE_STALE_IF_ERROR"], private)

    def header(self) -> str:
        parts = ["private" if self.private else "public", f"max-age={self.max_age}"]
        if self.stale_while_revalidate:
            parts.append(f"stale-while-revalidate={self.stale_while_revalidate}")
        if self.stale_if_error:
            parts.append(f"stale-if-error={self.stale_if_error}")
        return ", ".join(parts)


# ---- reading request headers -----------------------------------------------------------------

def parse_etags(header: str | None) -> list[str] | None:
    """The opaque tags of an If-None-Match header (weakness dropped); ["*"] for "*"; None if absent.

    Kept instead of werkzeug.http.parse_etags on the replay's path: 0.5 µs against 1.3 µs for a
    one-tag header (in process, 2026-12-07), and the weak comparison If-None-Match asks for (RFC 9110
    §13.1.2) wants every tag alike, where Werkzeug's ETags keeps weak and strong apart.
    """
    if header is None:
        return None
    tags, rest = [], header.strip()
    if rest == "*":
        return ["*"]
    while rest:
        rest = rest.lstrip(" \t,")
        if rest.startswith("W/"):
            rest = rest[2:]
        if not rest.startswith('"'):
            # Not an entity-tag: skip to the next comma (tolerating unquoted tags some clients send).
            token, _, rest = rest.partition(",")
            if token.strip():
                tags.append(token.strip())
            continue
        end = rest.find('"', 1)
        if end < 0:
            break
        tags.append(rest[1:end])
        rest = rest[end + 1:]
    return tags


def parse_http_date(header: str | None) -> datetime | None:
    """An HTTP date (any of RFC 9110 §5.6.7's three forms) as an aware datetime (Werkzeug's parser),
    or None when absent or malformed."""
    return parse_date(header)


def choose_encoding(header: str | None, available=ENCODINGS) -> str:
    """The best encoding the client accepts among `available` (RFC 9110 §12.5.3), else identity."""
    if not header:
        return "identity"
    if len(header) <= CACHED_HEADER_CHARS:
        return _chosen_encoding(header, tuple(available))
    return _choose_encoding(header, available)


# Clients send a handful of distinct Accept-Encoding values; choosing took 1.8 µs of a 60-70 µs
# replayed feed (in process, 2026-12-07). Only short values are kept, so the cache stays small.
CACHED_HEADER_CHARS = 128


@lru_cache(maxsize=128)
def _chosen_encoding(header: str, available: tuple) -> str:
    return _choose_encoding(header, available)


def _choose_encoding(header: str, available) -> str:
    weights: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    weight = 0.0  # a q we cannot read is not an acceptance
        weights[name] = weight
    star = weights.get("*")

    def weight_of(encoding: str) -> float:
        if encoding in weights:
            return weights[encoding]
        if star is not None:
            return star
        # Unlisted identity stays acceptable, but below any coding the client did ask for.
        return 0.001 if encoding == "identity" else 0.0

    best = max(available, key=lambda e: (weight_of(e), -ENCODINGS.index(e) if e in ENCODINGS else -99))
    return best if weight_of(best) > 0 else "identity"


def is_fresh(validator: str, last_modified: datetime | None, headers=None) -> bool:
    """True when the client's copy is current: If-None-Match first; If-Modified-Since only without it.

    `headers` (anything with .get) defaults to the current request's; feedsvc.web.middleware.fastpath passes the
    WSGI environ's.
    """
    headers = request.headers if headers is None else headers
    tags = parse_etags(headers.get("If-None-Match"))
    if tags is not None:
        return any(tag == "*" or strip_encoding(tag) == validator for tag in tags)
    since = parse_http_date(headers.get("If-Modified-Since"))
    if since is None or last_modified is None:
        return False
    return _to_second(last_modified) <= since


def strip_encoding(tag: str) -> str:
    for suffix in ("-gzip", "-br"):
        if tag.endswith(suffix):
            return tag[: -len(suffix)]
    return tag


def last_modified_text(moment: datetime) -> str:
    """The Last-Modified value of a document changed at `moment` (to the second, in GMT)."""
    return format_datetime(_to_second(moment).astimezone(timezone.utc), usegmt=True)


def _to_second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.replace(microsecond=0)


# ---- writing responses -----------------------------------------------------------------------

class ValidatedResponse(Response):
    """A response whose 304 keeps Last-Modified, as the 200 for the same request has it.

    RFC 9110 §15.4.5 requires of a 304 the ETag, Vary, Cache-Control (...) a 200 would carry, and
    allows other metadata that guides cache updates, naming Last-Modified; RFC 9111 §4.3.4 has a
    cache take a 304's fields into its stored response. Pollers that revalidate with
    If-Modified-Since alone (no ETag kept) read the date for their next request from it. Werkzeug
    drops Last-Modified from every 304 as an RFC 2616 "entity header", so it is put back here.
    """

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        if self.status_code == 304 and "Last-Modified" in self.headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def conditional_response(*, validator: str, last_modified: datetime | None, content_type: str,
                         load_bodies: Callable[[], Mapping[str, bytes]], cors: bool = False,
                         caching: Caching | None = None) -> Response:
    """200 with the body in the best accepted encoding, or 304 before `load_bodies` is ever called.

    `validator` is the opaque ETag value (no quotes); `load_bodies` returns encoding -> bytes and
    must hold at least "identity".
    """
    caching = caching or Caching.from_config(current_app.config)
    encoding = choose_encoding(request.headers.get("Accept-Encoding"))
    if is_fresh(validator, last_modified):
        # The 304 knows what it stands for (hooks such as security_headers choose by type, so it gets
        # the same policy as its 200); Werkzeug leaves Content-Type off the wire of a 304.
        response = ValidatedResponse(status=304, content_type=content_type)
    else:
        bodies = load_bodies()
        if isinstance(request.environ.get(ALL_BODIES), list):
            request.environ[ALL_BODIES].append(bodies)
        if encoding not in bodies:
            encoding = "identity"
        response = ValidatedResponse(bodies[encoding], status=200, content_type=content_type)
        if encoding != "identity":
            response.headers["Content-Encoding"] = encoding
        response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["ETag"] = f'"{validator}{ETAG_SUFFIX[encoding]}"'
    if last_modified is not None:
        response.headers["Last-Modified"] = last_modified_text(last_modified)
    response.headers["Cache-Control"] = caching.header()
    response.vary.add("Accept-Encoding")
    if cors:
        response.headers.update(CORS_HEADERS)
    return response


def websub_links(hubs, self_url: str) -> list[tuple[str, str]]:
    """The Link headers of a feed answer: one rel="hub" per hub, and its own URL as rel="self".

    WebSub (W3C Recommendation, 2018) §4 Discovery: the publisher's response to a GET or HEAD of the
    topic MUST include at least one Link header with rel=hub and exactly one with rel=self; the links
    inside the document are the subscriber's fallback. `self_url` is the page's in-document self link
    (render.feeds.scope.self_link), so a subscriber subscribes to the topic we publish.
    """
    return ([("Link", f'<{iri_to_uri(hub)}>; rel="hub"') for hub in hubs]
            + [("Link", f'<{iri_to_uri(self_url)}>; rel="self"')])


def preflight_response() -> Response:
    """The answer to a CORS preflight for a public, read-only resource."""
    response = Response(status=204)
    response.headers.update(CORS_HEADERS)
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "If-None-Match, If-Modified-Since"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response
