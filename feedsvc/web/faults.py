"""When the store cannot be reached: 503 with Retry-After and a clear message, never a 500.

A database that is down, restarting, locked or cut off raises one of the SQLAlchemy errors in
`UNAVAILABLE` from whatever view touched it. That is a passing condition of the service, not a
bug in the request, so the answer says so (503, `Retry-After`, `Cache-Control: no-store`) and the
next request tries the store again: SQLAlchemy's pool throws away a broken connection and
`pool_pre_ping` (PostgreSQL) checks the others, so the service recovers by itself once the
database is back. Feeds already rendered are answered from the render cache before this handler
is ever reached (feedsvc/web/documents.py `serve`, stale-if-error).

Errors that mean a bug (IntegrityError, ProgrammingError, ...) are not handled here: they stay 500s.
"""
from __future__ import annotations

from flask import current_app, jsonify, make_response, render_template_string, request
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Long enough for a database restart or failover, short enough that pollers come back soon.
RETRY_AFTER_SECONDS = 30
# OperationalError: connection refused or reset, server shutting down, "database is locked";
# InterfaceError: the driver's connection object is already closed; PoolTimeout: every pooled
# connection is busy (a slow or locked database backs requests up until the pool runs dry).
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

MESSAGE = "the article store is unavailable; try again shortly"
MESSAGE_HI = "लेख भंडार अभी उपलब्ध नहीं है; कृपया थोड़ी देर बाद फिर कोशिश करें"

_PAGE = """<!DOCTYPE html>
<html lang="hi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ hi }}</title></head>
<body><h1>{{ hi }}</h1><p lang="en">{{ en }} (retry after {{ seconds }} seconds).</p></body></html>
"""


def unavailable_response(seconds: int = RETRY_AFTER_SECONDS):
    """503 for a store outage: JSON for API, feed and oEmbed clients, a short page for browsers."""
    accept = request.accept_mimetypes
    if accept["text/html"] > accept["application/json"]:
        response = make_response(render_template_string(_PAGE, hi=MESSAGE_HI, en=MESSAGE, seconds=seconds), 503)
    else:
        response = jsonify({"error": "service unavailable", "message": MESSAGE, "retry_after": seconds})
        response.status_code = 503
    response.headers["Retry-After"] = str(seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


def store_unavailable(exc: Exception):
    current_app.logger.warning("store unavailable during %s %s: %s", request.method, request.path,
                               (str(exc).splitlines() or [type(exc).__name__])[0])
    return unavailable_response()


def init_app(app) -> None:
    for error in UNAVAILABLE:
        app.register_error_handler(error, store_unavailable)
