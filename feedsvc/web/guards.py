"""Requests no route can answer, refused at the door: a NUL byte in the path or the query string;
and Werkzeug's routing redirects ("//" merged, a trailing slash added) sent to the configured site.

No slug, key, id or parameter of ours contains U+0000, and PostgreSQL cannot even compare a text
value holding one (the driver raises before the query runs), so such a request would otherwise end
in a 500 on PostgreSQL and a 404 on SQLite. It gets a 400 that says why, on every backend.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import current_app, request
from werkzeug.routing import RequestRedirect

from feedsvc.web.errors import NOT_STORED, json_error

MESSAGE = "the URL contains a NUL byte (%00); no address or parameter of this service can hold one"


def refuse_nul_bytes():
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        return json_error(400, "bad request", headers=NOT_STORED, message=MESSAGE)
    return None


def redirect_within_site(response):
    """Werkzeug builds a routing redirect's Location from the Host header, which any client sets
    (and nginx passes on): so a cache could keep a redirect to another site. It names SITE_URL."""
    if isinstance(request.routing_exception, RequestRedirect) and response.location:
        target = urlsplit(response.location)
        response.location = current_app.config["SITE_URL"] + urlunsplit(("", "", target.path, target.query, ""))
    return response


def init_app(app) -> None:
    app.before_request(refuse_nul_bytes)
    app.after_request(redirect_within_site)
