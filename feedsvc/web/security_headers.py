"""Who may frame our pages: only the embed routes (/embed/...), by anyone; every other route, nobody.

One after_request hook covers every response, error pages and files included:
- /embed/... : `frame-ancestors *` (the embed views send their own strict policy; this makes sure of
  the directive) and never X-Frame-Options, which would forbid what the CSP allows;
- anything else: `frame-ancestors 'none'` and `X-Frame-Options: DENY` (for browsers without CSP 2).
A policy a view already sent is kept and gets the directive appended, so other helpers' CSPs survive.
"""
from __future__ import annotations

from flask import request

EMBED_PREFIX = "/embed/"
FRAMEABLE = "frame-ancestors *"
NOT_FRAMEABLE = "frame-ancestors 'none'"


def frameable(path: str) -> bool:
    return path.startswith(EMBED_PREFIX)


def _with_directive(policy: str | None, directive: str) -> str:
    if not policy:
        return directive
    kept = [part.strip() for part in policy.split(";")
            if part.strip() and not part.strip().lower().startswith("frame-ancestors")]
    return "; ".join(kept + [directive])


def set_framing_headers(response):
    if frameable(request.path):
        response.headers["Content-Security-Policy"] = _with_directive(
            response.headers.get("Content-Security-Policy"), FRAMEABLE)
        response.headers.pop("X-Frame-Options", None)
    else:
        response.headers["Content-Security-Policy"] = _with_directive(
            response.headers.get("Content-Security-Policy"), NOT_FRAMEABLE)
        response.headers["X-Frame-Options"] = "DENY"
    return response


def init_app(app) -> None:
    app.after_request(set_framing_headers)
