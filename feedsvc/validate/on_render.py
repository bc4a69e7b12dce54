"""VALIDATE_ON_RENDER: every 200 response is validated before it is sent, and failures are logged loudly."""
from __future__ import annotations

import gzip

import brotli
from flask import request

from feedsvc.validate.dispatch import guess_kind, validate_document


def _decoded_body(response) -> bytes:
    body = response.get_data()
    encoding = (response.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return brotli.decompress(body)
    return body


def init_app(app) -> None:
    """With VALIDATE_ON_RENDER set, validate every 200 response before it is sent; log loudly on failure."""
    if not app.config.get("VALIDATE_ON_RENDER"):
        return

    @app.after_request
    def _validate_response(response):
        if response.status_code != 200 or response.direct_passthrough or response.is_streamed:
            return response
        body = _decoded_body(response)
        kind = guess_kind(body, response.content_type)
        if kind is None:
            return response
        served = app.config.get("SITE_URL", request.host_url.rstrip("/")) + request.full_path.rstrip("?")
        problems = validate_document(body, kind, url=served)
        response.headers["X-Feedsvc-Validation"] = "ok" if not problems else f"failed: {len(problems)} problems"
        if problems:
            app.logger.error("VALIDATION FAILED: %s (%s), %d problems:\n%s", served, kind, len(problems),
                             "\n".join(f"  {p}" for p in problems))
        return response
