"""When the store cannot be reached: which errors mean that, and what the 503 says (errors.py answers it).

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
