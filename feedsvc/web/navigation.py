"""A browser's top-level navigation, told apart from feed readers by its Fetch Metadata request headers.

Fetch Metadata Request Headers (W3C Working Draft, https://www.w3.org/TR/fetch-metadata/):
a browser sends `Sec-Fetch-Mode: navigate` and `Sec-Fetch-Dest: document` when a person opens a
URL in a tab (§2.2, §2.3). Scripts cannot set `Sec-` headers, and feed readers, aggregators and
curl send none, so only a person's browser gets the HTML view of a feed; everyone else gets the
feed's bytes. Chromium shows application/rss+xml as raw text and is removing XSLT, so the
stylesheet the feeds reference no longer makes them readable there.
"""
from __future__ import annotations

# The request headers that choose between a feed and its HTML view: every feed answer names them
# in Vary, so shared caches keep the two apart (RFC 9110 §12.5.5).
VARY = ("Sec-Fetch-Dest", "Sec-Fetch-Mode")


def is_navigation(headers) -> bool:
    """True for a browser opening the URL as a page; `headers` is anything with .get (Flask's or
    the fast path's view of the WSGI environ)."""
    return (headers.get("Sec-Fetch-Dest", "").strip().lower() == "document"
            and headers.get("Sec-Fetch-Mode", "").strip().lower() == "navigate")
