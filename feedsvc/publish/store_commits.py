"""Whether anything was committed to the store since a look: what lets an idle mirror watch skip its reads.

The watch looks ten times a second for changed scopes and for takedowns. On the bench store (1M
articles, 49,912 tags, built by an import whose last ten seconds stamped 4,400 scope rows and
thousands of articles) each look read those rows again: 44 ms CPU per feeds cycle and 34 ms per
other cycle, a third of a core while nothing happened. SQLite counts commits: `PRAGMA data_version`
on one connection changes whenever another connection committed to the file since it last asked
(https://www.sqlite.org/pragma.html#pragma_data_version), so an unchanged value means every read
would find what the last one found. Other databases have no such counter: there every look reads.
"""
from __future__ import annotations

import sqlite3

from sqlalchemy.engine import Engine


class StoreCommits:
    """`position()`: a value that changes whenever the store got a commit, or None when it cannot tell."""

    def __init__(self, engine: Engine):
        self._db: sqlite3.Connection | None = None
        url = engine.url
        path = url.database
        if url.get_backend_name() == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
            # Its own connection, used for nothing else: the counter ignores the asking connection's commits.
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def position(self) -> int | None:
        if self._db is None:
            return None
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def moved(position: int | None, seen: int | None) -> bool:
    """Whether a look at `position` may find what one at `seen` did not (always, when either is unknown)."""
    return position is None or position != seen
