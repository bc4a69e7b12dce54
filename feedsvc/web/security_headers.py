"""What a browser may do with our answers: who may frame them, what pages may load, sniffing, storing.

One after_request hook covers every response, error pages and files included.
Framing: only the embed routes (/embed/...), by anyone; every other route, nobody.
- /embed/... : `frame-ancestors *` (the embed views send their own strict policy; this makes sure of
  the directive) and never X-Frame-Options, which would forbid what the CSP allows;
- anything else: `frame-ancestors 'none'` and `X-Frame-Options: DENY` (for browsers without CSP 2).
A policy a view already sent is kept and gets the directive appended, so other helpers' CSPs survive.
Content: an HTML page that sent no policy of its own (canonical, listing, AMP and error pages) gets
one that runs no script but AMP's and frames only the FRAME_HOSTS players (feedsvc/ingest/frames.py).
The sanitiser already turns other frames into links; this also holds for bodies stored before it did.
Pages load their fonts, styles and images as before: those directives are left open.
Sniffing: /embed/... is meant to be shown inside other sites, so its types are never guessed.
Storing: /api/... answers carry unpublished records and are never kept by any cache.
"""
from __future__ import annotations

import functools

from flask import current_app, request

from feedsvc.ingest.frames import frame_policy

EMBED_PREFIX = "/embed/"
AMP_PREFIX = "/amp/"
API_PREFIX = "/api/"
FRAMEABLE = "frame-ancestors *"
NOT_FRAMEABLE = "frame-ancestors 'none'"

# JSON-LD is a data block (type application/ld+json), which script-src does not govern.
PAGE_DIRECTIVES = ("script-src 'none'", "object-src 'none'", "base-uri 'none'")
# AMP's own recommended policy (amp.dev, "Secure from third party attacks"): the runtime and its
# extensions from the AMP CDN, blob: for its workers, inline styles for amp-custom, the boilerplate
# and the runtime's injected rules.
AMP_DIRECTIVES = (
    "script-src blob: https://cdn.ampproject.org/v0.js https://cdn.ampproject.org/v0/ "
    "https://cdn.ampproject.org/viewer/ https://cdn.ampproject.org/rtv/",
    "style-src 'unsafe-inline' https://cdn.ampproject.org/rtv/",
    "object-src 'none'", "base-uri 'none'",
)
# amp-twitter and other third-party components draw inside AMP's own frame on this domain.
AMP_FRAME_SOURCES = ("https://*.ampproject.net",)


def frameable(path: str) -> bool:
    return path.startswith(EMBED_PREFIX)


@functools.lru_cache(maxsize=8)
def page_policy(frame_hosts: tuple[str, ...], amp: bool) -> str:
    """The content policy of an HTML page (`amp`: of an AMP page) for a FRAME_HOSTS value."""
    frame_sources = frame_policy(frame_hosts).csp_sources() + (list(AMP_FRAME_SOURCES) if amp else [])
    frame_src = "frame-src " + (" ".join(frame_sources) or "'none'")
    return "; ".join([*(AMP_DIRECTIVES if amp else PAGE_DIRECTIVES), frame_src])


def _with_directive(policy: str | None, directive: str) -> str:
    if not policy:
        return directive
    kept = [part.strip() for part in policy.split(";")
            if part.strip() and not part.strip().lower().startswith("frame-ancestors")]
    return "; ".join(kept + [directive])


def set_security_headers(response):
    path = request.path
    if response.mimetype == "text/html" and not frameable(path) and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = page_policy(
            current_app.config["FRAME_HOSTS"], path.startswith(AMP_PREFIX))
    if frameable(path):
        response.headers["Content-Security-Policy"] = _with_directive(
            response.headers.get("Content-Security-Policy"), FRAMEABLE)
        response.headers.pop("X-Frame-Options", None)
        response.headers["X-Content-Type-Options"] = "nosniff"
    else:
        response.headers["Content-Security-Policy"] = _with_directive(
            response.headers.get("Content-Security-Policy"), NOT_FRAMEABLE)
        response.headers["X-Frame-Options"] = "DENY"
    if path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.after_request(set_security_headers)
