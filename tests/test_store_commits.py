"""The store's commit position (feedsvc/publish/store_commits.py): on SQLite it moves with every commit of
any connection, a write's or a hand-made one, and a look at a position already seen reads nothing."""
from __future__ import annotations

import sqlite3
from datetime import timedelta

from sqlalchemy import event

from feedsvc import store
from feedsvc.publish.mirror_scopes import ScopeStates
from feedsvc.publish.store_commits import StoreCommits
from feedsvc.web import db
from tests.support.records import write


def statements_of(engine) -> list[str]:
    """The SQL the engine runs from now on (a list that grows)."""
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: seen.append(statement))
    return seen


def test_the_position_moves_with_each_commit_and_a_look_at_a_seen_one_reads_nothing(app, make_record):
    engine = db.engine(app)
    commits = StoreCommits(engine)
    try:
        write(app, make_record())
        scopes = ScopeStates()
        position = commits.position()
        if engine.dialect.name != "sqlite":
            assert position is None   # no counter to ask: every look reads
            return
        with engine.connect() as conn:
            assert scopes.look(conn, position)
        assert commits.position() == position   # a read is no commit

        ran = statements_of(engine)
        with engine.connect() as conn:
            assert not scopes.look(conn, commits.position())
        assert ran == []

        # An edit by hand, through a connection of its own: the next look reads and finds it.
        before = scopes.by_scope["site"]
        edit = sqlite3.connect(engine.url.database)
        with edit:
            edit.execute("UPDATE scope_state SET version = version + 1, modified_at = ? WHERE scope = 'site'",
                         (str(before.modified_at + timedelta(seconds=1)),))
        edit.close()
        moved_to = commits.position()
        assert moved_to != position
        with engine.connect() as conn:
            assert scopes.look(conn, moved_to)
        assert ran and scopes.by_scope["site"].version == before.version + 1

        write(app, make_record(title="संसद में नया विधेयक पेश", updated="2025-08-01T11:00:00+05:30"))
        assert commits.position() != moved_to
        with engine.connect() as conn:
            assert scopes.look(conn, commits.position())
            assert scopes.by_scope == {s.scope: s for s in store.all_scopes(conn)}
    finally:
        commits.close()
