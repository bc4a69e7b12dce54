"""Partner feeds: the public feed URLs under /partner/, full text, a larger limit, behind a partner key.

    /partner/feeds/rss.xml, /partner/feeds/section/<key>/atom.xml, ...   key in a header:
        Authorization: Bearer <key>   or   X-Partner-Key: <key>
    /partner/<key>/feeds/rss.xml, ...   key in the path, only for readers that cannot send headers

A path key is a secret in a URL: our loggers redact it (partners.RedactKeys) and the reverse proxy in
front must not log it either. Keyed responses are `Cache-Control: private` (a shared cache must not hand
one partner's copy to anyone else), `Referrer-Policy: no-referrer`, and carry no CORS headers.
"""
from __future__ import annotations

import re

from flask import Blueprint, current_app, g, request

from feedsvc.ops import desk_counters
from feedsvc.render.feeds import urls
from feedsvc.web import feeds as public_feeds
from feedsvc.web import profile_feeds
from feedsvc.web.documents import site
from feedsvc.web.errors import json_error
from feedsvc.web.partner_key import presented_key, request_partner

bp = Blueprint("partner_feeds", __name__, url_prefix="/partner")


def _refuse(status: int, message: str):
    if status == 401:
        return json_error(401, "partner key required", message=message,
                          headers={"WWW-Authenticate": 'Bearer realm="feedsvc partner feeds"'})
    return json_error(status, "partner key refused", message=message)


@bp.before_request
def require_partner():
    if presented_key() is None:
        return _refuse(401, "send your partner key as 'Authorization: Bearer <key>' or 'X-Partner-Key: <key>' "
                            "(or use the /partner/<key>/feeds/... URL if your reader cannot send headers)")
    partner = request_partner()
    if partner is None:
        return _refuse(401, "this partner key is not known; check that it was copied whole")
    if not partner.active:
        return _refuse(403, f"this partner key was revoked on {partner.revoked_at:%Y-%m-%d}; ask us for a new one")
    return None


_PARTNER_PREFIX = re.compile(rf"^/partner(/[^/]+)?(?={re.escape(urls.FEEDS)}/)")


def public_path(path: str) -> str:
    """/partner/<key>/feeds/x and /partner/feeds/x -> /feeds/x: the feed's name in usage counts, never the key."""
    return _PARTNER_PREFIX.sub("", path, count=1)


def _count_usage(response) -> None:
    partner = g.get("partner")
    if partner is None or not partner.active:
        return
    # In memory, written in batches (desk_counters.py); a streamed body has no length here and counts 0.
    sent = 0 if request.method == "HEAD" else (response.calculate_content_length() or 0)
    desk_counters.counters(current_app).count_partner(partner.id, public_path(request.path), response.status_code,
                                                      sent)


@bp.after_request
def keyed_response_headers(response):
    _count_usage(response)
    if response.status_code < 400:
        cache = response.cache_control
        cache.public = False
        cache.private = True
        response.vary.update(("Authorization", "X-Partner-Key"))
    else:
        response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    for header in [h for h in response.headers.keys() if h.lower().startswith("access-control-")]:
        del response.headers[header]
    return response


# ---- the feeds ---------------------------------------------------------------------------------

def partner_feed(fmt: str, kind: str, key: str, partner_key: str | None = None):
    """A public feed's partner edition: full text, links that keep the key form, and pages of up to
    PARTNER_MAX_LIMIT items that end early, at whole items, once they hold PARTNER_PAGE_TEXT_BYTES of text."""
    partner = request_partner()   # never None here: the blueprint refuses requests without a valid key
    bound = partner.profile if partner else None
    if bound:   # a partner bound to an aggregator profile gets that profile's feed, at its own URL
        profile = profile_feeds.profile_named(bound)
        return profile_feeds.ProfileFeedPage(profile, fmt, kind, key, self_url=site().url + request.path,
                                             partner=True).response()
    limit, after = public_feeds.page_params(max_limit=current_app.config["PARTNER_MAX_LIMIT"])
    # Its own URL is the base of its self and next links, so a reader that can only use the path key
    # keeps it from page to page; that edition (and its cache entry) is therefore one per partner.
    edition = public_feeds.Edition("partner", full_text=True, self_url=site().url + request.path, cors=False,
                                   max_bytes=current_app.config["PARTNER_PAGE_TEXT_BYTES"])
    return public_feeds.FeedPage(fmt, kind, key, limit=limit, after=after, edition=edition).response()


# The public feed URLs, under /partner (key in a header) and /partner/<key> (key in the path).
for _prefix in ("", "/<partner_key>"):
    urls.add_routes(bp, urls.FEED_ROUTES, partner_feed, prefix=_prefix, endpoint="partner_feed")
