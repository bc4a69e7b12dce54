"""One outbound POST for the outbox's senders (hub pings, cache purges): any 2xx or an error that says what came back."""
from __future__ import annotations

import http.client
import urllib.error
import urllib.request


class PublishError(Exception):
    """The far end did not accept a notification; the message says what it answered."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without the body; a redirect is a failure here.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> None:
    """POST `body`; returns on any 2xx, raises PublishError otherwise."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip() if exc.fp else ""
        raise PublishError(f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PublishError(f"{type(exc).__name__}: {reason}") from None
