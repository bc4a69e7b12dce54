"""Feed URLs: /feeds/{rss.xml,atom.xml,feed.json}, per section/tag/author, /feeds.opml and /feeds.

Views only choose the document and its validator; feedsvc.feeds builds it, feedsvc.render_cache
keeps it, feedsvc.http answers (304, encodings, cache headers).
"""
from __future__ import annotations

import hashlib
import re

from flask import Blueprint, jsonify, render_template, request

from feedsvc import store
from feedsvc.render import feeds
from feedsvc.render.feeds import opml
from feedsvc.render.feeds.model import FORMATS, SCOPE_KINDS, Scope
from feedsvc.web import db
from feedsvc.web.documents import HTML_TYPE, counters, serve, site

bp = Blueprint("feeds", __name__)

FILENAMES = {f.filename: name for name, f in FORMATS.items()}
CURSOR_TOKEN = re.compile(r"^\d{8}T\d{12}~[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
OPML_TYPE = "text/x-opml; charset=utf-8"


@bp.app_context_processor
def _feed_links():
    # base.html emits <link rel="alternate"> for the site's feeds and the page's `feed_scopes`.
    return {"feed_links": lambda scopes=(): feeds.alternate_links(site(), scopes or ())}


class BadRequest(ValueError):
    pass


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest):
    return _error(400, str(exc))


@bp.errorhandler(feeds.FeedNotFound)
def _not_found(exc: feeds.FeedNotFound):
    kind, _, key = exc.scope_id.partition(":")
    return _error(404, f"there is no {kind} '{key}': no feed at this address")


def _error(status: int, message: str):
    response = jsonify({"error": message})
    response.status_code = status
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def page_params(max_limit: int | None = None) -> tuple[int, feeds.Cursor | None]:
    """(limit, after) of a feed request; BadRequest names the parameter and what it accepts."""
    limit_cap = max_limit or site().max_limit
    raw = request.args.get("limit")
    if raw is None:
        limit = site().default_limit
    elif raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= limit_cap:
        limit = int(raw)
    else:
        raise BadRequest(f"limit must be a whole number from 1 to {limit_cap}; got {raw[:40]!r}")
    raw = request.args.get("after")
    if raw is None:
        return limit, None
    if not CURSOR_TOKEN.match(raw):
        raise BadRequest("after must be a page cursor taken from a feed's next link "
                         "(like 20250723T100000000000~<article id>)")
    try:
        return limit, feeds.Cursor.parse(raw)
    except ValueError:
        raise BadRequest(f"after names an impossible time: {raw[:40]!r}") from None


def feed_response(fmt: str, kind: str, key: str = "", *, limit: int, after: feeds.Cursor | None,
                  full_text: bool | None = None, self_url: str | None = None, edition: tuple = (),
                  cors: bool | None = None):
    """The response for one page of one feed; partner feeds reuse it with their own edition.

    `edition` tells apart documents that differ for the same scope and page (a partner's own links);
    `cors` defaults to on for the JSON feed.
    """
    the_site = site()
    held = {}
    cache_key = ("feed", fmt, kind, key, limit, after.token() if after else None, full_text, self_url, *edition)

    def load_state():
        scope, state = counters().get(("scope", kind, key), lambda: feeds.resolve(db.connection(), kind, key))
        held.update(scope=scope, state=state)
        return (state.version, state.modified_at), state.modified_at if state.version else None

    def build() -> bytes:
        return feeds.render(fmt, held["scope"], conn=db.connection(), site=the_site, limit=limit, after=after,
                            full_text=full_text, self_url=self_url, state=held["state"])

    return serve(cache_key, load_state, build, content_type=FORMATS[fmt].content_type,
                 cors=fmt == "json" if cors is None else cors)


def _public_feed(fmt: str, kind: str, key: str = ""):
    limit, after = page_params()
    return feed_response(fmt, kind, key, limit=limit, after=after)


@bp.route("/feeds/<any('rss.xml', 'atom.xml', 'feed.json'):filename>", methods=["GET", "HEAD", "OPTIONS"])
def site_feed(filename: str):
    return _public_feed(FILENAMES[filename], "site")


@bp.route("/feeds/<any(section, tag, author):kind>/<key>/<any('rss.xml', 'atom.xml', 'feed.json'):filename>",
          methods=["GET", "HEAD", "OPTIONS"])
def scope_feed(kind: str, key: str, filename: str):
    return _public_feed(FILENAMES[filename], kind, key)


# ---- directory and OPML: documents about every scope -------------------------------------------

def _all_scopes_state(held: dict):
    def load_state():
        scopes = counters().get(("all",), lambda: store.all_scopes(db.connection()))
        held["scopes"] = scopes
        stamp = hashlib.blake2b(repr([(s.scope, s.name, s.version) for s in scopes]).encode("utf-8"),
                                digest_size=12).hexdigest()
        last = max((s.modified_at for s in scopes), default=None)
        return (0, stamp), last
    return load_state


def scope_groups(states) -> dict[str, list[Scope]]:
    """Known scopes by kind (section, tag, author), each sorted by key; the site is implied."""
    groups = {kind: [] for kind in SCOPE_KINDS}
    for state in states:
        if state.scope != "site":
            scope = Scope.from_id(state.scope, state.name)
            groups[scope.kind].append(scope)
    return groups


@bp.route("/feeds.opml", methods=["GET", "HEAD", "OPTIONS"])
def opml_document():
    held = {}
    fmt = request.args.get("format", "rss")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}; got {fmt[:20]!r}")

    def build() -> bytes:
        return opml.write(site(), scope_groups(held["scopes"]), fmt=fmt, states=held["scopes"])

    return serve(("opml", fmt), _all_scopes_state(held), build, content_type=OPML_TYPE, cors=True)


@bp.route("/feeds", methods=["GET", "HEAD"])
def directory():
    held = {}

    def build() -> bytes:
        groups = scope_groups(held["scopes"])
        the_site = site()
        return render_template("feeds/directory.html", site=the_site, groups=groups, formats=FORMATS,
                               site_scope=Scope("site", "", the_site.name),
                               feed_urls=lambda scope: feeds.feed_urls(scope, the_site.url),
                               opml_url=f"{the_site.url}/feeds.opml").encode("utf-8")

    return serve(("directory",), _all_scopes_state(held), build, content_type=HTML_TYPE)
