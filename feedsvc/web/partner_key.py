"""Which partner a request comes from: the key it presents (path, Authorization: Bearer, X-Partner-Key).

Read by the partner feeds (to let the request in) and by the rate limits (to count it per partner).
"""
from __future__ import annotations

from flask import g, request

from feedsvc.ops import partners
from feedsvc.web import db


def presented_key() -> str | None:
    """The partner key of this request: from the path, else `Authorization: Bearer`, else X-Partner-Key."""
    path_key = (request.view_args or {}).get("partner_key")
    if path_key:
        return path_key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-Partner-Key", "").strip() or None


def request_partner() -> partners.Partner | None:
    """The partner (active or revoked) whose key this request presents; looked up once per request."""
    if "partner" not in g:
        key = presented_key()
        g.partner = partners.by_key(db.connection(), key) if key else None
    return g.partner
