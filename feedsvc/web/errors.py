"""Error answers in one place: the JSON error body every route sends, and the app's error handlers.

Every JSON error is `{"error": <what went wrong>, ...details}`, built by `json_error`. The handlers
that turn an exception from any route into an answer are registered once, on the app, by
`register_error_handlers` (create_app): HTTP errors, unknown feeds and profiles, bad query
parameters, rate limits and store outages. Errors that only mean something to one blueprint (the ingest API's
version conflicts, a page's Hindi "not found") stay with it, and answer through `json_error` when
they answer in JSON.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import current_app, jsonify, make_response, redirect, render_template_string, request, url_for
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from feedsvc.profiles import UnknownProfile
from feedsvc.render.feeds import FeedNotFound, ScopeMoved
from feedsvc.render.profiles import PROFILE_DIRECTORY
from feedsvc.web import faults, ratelimit
from feedsvc.web.documents import site

# HTTP errors raised inside these blueprints' views (an unreadable body, a body too large) answer
# in JSON; every other route keeps Werkzeug's own error page for them.
JSON_BLUEPRINTS = frozenset({"api"})
# How long a feed's 400 or 404 may be cached: short, so a scope that appears later is found soon.
FEED_ERROR_CACHING = "public, max-age=60"
NOT_STORED = {"Cache-Control": "no-store"}

_UNAVAILABLE_PAGE = """<!DOCTYPE html>
<html lang="hi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ hi }}</title></head>
<body><h1>{{ hi }}</h1><p lang="en">{{ en }} (retry after {{ seconds }} seconds).</p></body></html>
"""


class BadParameter(ValueError):
    """A query parameter a route cannot accept (`limit`, `after`, `format`); the message names it and what it takes."""


def json_error(status: int, message: str, /, *, headers: Mapping[str, str] | None = None, **extra):
    """The JSON error answer: {"error": message, **extra} with `status` and any extra `headers`.

    Many answers add a longer "message" beside a short "error" ({"error": "bad request", "message": ...}),
    so the first two parameters are positional only.
    """
    response = jsonify({"error": message, **extra})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def prefers_html() -> bool:
    """True when the client would rather read a page than JSON (a browser), by its Accept header."""
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


def _http_error(exc: HTTPException):
    if request.blueprint in JSON_BLUEPRINTS:
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc


def _feed_not_found(exc: FeedNotFound):
    kind, _, key = exc.scope_id.partition(":")
    return json_error(404, f"there is no {kind} '{key}': no feed at this address",
                      headers={"Cache-Control": FEED_ERROR_CACHING})


def _unknown_profile(exc: UnknownProfile):
    return json_error(404, "unknown profile", message=exc.message or f"no feed profile named {exc.profile_name[:64]!r}",
                      profiles=list(exc.known), directory=site().url + PROFILE_DIRECTORY)


def _scope_moved(exc: ScopeMoved):
    """301 from a renamed key's feed or listing to the same URL under the new key, query string and
    all (partner and profile feeds, ?lang=, pages). A 301 is how a feed says it moved: RFC 9110
    §15.4.2 (https://www.rfc-editor.org/rfc/rfc9110#section-15.4.2): "a user agent with link-editing
    capability can permanently replace references to the target URI with one of the new references";
    the RSS Advisory Board (https://www.rssboard.org/news/152/rss-redirection): on a 301 "RSS readers
    should redirect to the new location". Not 308: older readers and aggregators know only 301."""
    location = url_for(request.endpoint or "", **{**(request.view_args or {}), "key": exc.new_key})
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    response = redirect(location, 301)
    response.headers["Cache-Control"] = f"public, max-age={current_app.config['CACHE_MAX_AGE']}"
    return response


def _bad_parameter(exc: BadParameter):
    return json_error(400, str(exc), headers={"Cache-Control": FEED_ERROR_CACHING})


def unavailable_response(seconds: int = faults.RETRY_AFTER_SECONDS):
    """503 for a store outage: JSON for API, feed and oEmbed clients, a short Hindi page for browsers."""
    headers = {"Retry-After": str(seconds), **NOT_STORED}
    if prefers_html():
        page = render_template_string(_UNAVAILABLE_PAGE, hi=faults.MESSAGE_HI, en=faults.MESSAGE, seconds=seconds)
        return make_response(page, 503, headers)
    return json_error(503, "service unavailable", headers=headers, message=faults.MESSAGE, retry_after=seconds)


def _store_unavailable(exc: Exception):
    current_app.logger.warning("store unavailable during %s %s: %s", request.method, request.path,
                               (str(exc).splitlines() or [type(exc).__name__])[0])
    return unavailable_response()


def _too_many_requests(exc: RateLimitExceeded | ratelimit.OverLimit):
    retry, message = ratelimit.refusal(exc)
    return json_error(429, "too many requests", headers={"Retry-After": str(retry), **NOT_STORED},
                      message=message, limit=exc.description, retry_after=retry)


HANDLERS: dict[type[Exception], Callable] = {
    HTTPException: _http_error,
    FeedNotFound: _feed_not_found,
    ScopeMoved: _scope_moved,
    UnknownProfile: _unknown_profile,
    BadParameter: _bad_parameter,
    RateLimitExceeded: _too_many_requests,
    ratelimit.OverLimit: _too_many_requests,
    **{error: _store_unavailable for error in faults.UNAVAILABLE},
}


def register_error_handlers(app) -> None:
    for error, handler in HANDLERS.items():
        app.register_error_handler(error, handler)
