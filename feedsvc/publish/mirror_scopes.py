"""Every scope's change counter as the mirror's watch knows it, kept current by reading only the rows that moved.

With 50,000 tags, reading every scope_state row each look (10 a second) cost the watch 0.28 CPU-s per
look at 28,000 scopes (in process, `store.all_scopes` and the manifest's JSON of them): a core spent
on watching. A look now asks for the rows changed lately (their time is set by the write that moved
them), and reads everything again only when a row left (a rename deletes its old key's row: the count
falls short), now and then as a safety net, and at the start. And on SQLite not at all while nothing
was committed since the last look (store_commits.py).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.publish.store_commits import moved
from feedsvc.store import scope_state

# A write's time is taken before its commit, so a row can turn up stamped a little before one already
# seen: each look asks back this far (as the takedown's look does, mirror.TAKEDOWN_OVERLAP).
OVERLAP = timedelta(seconds=10)
# Every row read again this often, whatever the looks found: what a row changed without moving its time
# (a hand-made edit in the database) is followed this late at most.
FULL_READ_SECONDS = 60.0


class ScopeStates:
    """scope -> ScopeState, refreshed by `look(conn)`; `moved` gathers the scopes changed (or gone)
    since its owner last cleared it, and `listing_changed` says whether one of them came, left or
    changed its name (what OPML and the directories show besides dates)."""

    def __init__(self) -> None:
        self.by_scope: dict[str, store.ScopeState] = {}
        self.versions: dict[str, int] = {}
        self.moved: set[str] = set()
        self.listing_changed = False
        self._newest: datetime | None = None
        self._read_at = float("-inf")
        self._position: int | None = None   # the store's commit position at the last look (store_commits)

    def look(self, conn: Connection, position: int | None = None) -> bool:
        """Read what changed since the last look; True when anything did. `position`, the store's commit
        position taken before `conn` read anything: when the last look saw the same, nothing is read."""
        if not moved(position, self._position):
            return False
        changed = self._look(conn)
        self._position = position
        return changed

    def _look(self, conn: Connection) -> bool:
        if self._newest is None or time.monotonic() - self._read_at >= FULL_READ_SECONDS:
            return self._read_all(conn)
        moved = [state for state in map(_state, conn.execute(
                     select(scope_state).where(scope_state.c.modified_at >= self._newest - OVERLAP)))
                 if self.by_scope.get(state.scope) != state]
        if not moved:
            return False
        for state in moved:
            self._take(state)
        count = conn.execute(select(func.count()).select_from(scope_state)).scalar_one()
        if count != len(self.by_scope):   # a row left: only a full read says which
            self._read_all(conn)
        return True

    def states(self) -> list[store.ScopeState]:
        return list(self.by_scope.values())

    def _take(self, state: store.ScopeState) -> None:
        before = self.by_scope.get(state.scope)
        self.listing_changed |= before is None or before.name != state.name
        self.by_scope[state.scope] = state
        self.versions[state.scope] = state.version
        self.moved.add(state.scope)
        if self._newest is None or state.modified_at > self._newest:
            self._newest = state.modified_at

    def _read_all(self, conn: Connection) -> bool:
        read = {state.scope: state for state in store.all_scopes(conn)}
        self._read_at = time.monotonic()
        changed = {scope for scope, state in read.items() if self.by_scope.get(scope) != state}
        gone = set(self.by_scope) - set(read)
        self.listing_changed |= bool(gone) or any(scope not in self.by_scope or self.by_scope[scope].name != read[scope].name
                                                  for scope in changed)
        self.by_scope, self.versions = read, {scope: state.version for scope, state in read.items()}
        self.moved |= changed | gone
        self._newest = max((state.modified_at for state in read.values()), default=datetime.min)
        return bool(changed or gone)


def _state(row) -> store.ScopeState:
    return store.ScopeState(row.scope, row.name, row.version, row.modified_at)
