"""The watch's view of scope_state (feedsvc/publish/mirror_scopes.py): a look reads what moved, and a
scope that left (a rename) is noticed, on SQLite and PostgreSQL alike."""
from __future__ import annotations

from feedsvc import store
from feedsvc.publish.mirror_scopes import ScopeStates
from feedsvc.web import db
from tests.support.records import write


def look(app, scopes: ScopeStates) -> bool:
    with db.engine(app).connect() as conn:
        return scopes.look(conn)


def stored(app) -> dict[str, store.ScopeState]:
    with db.engine(app).connect() as conn:
        return {state.scope: state for state in store.all_scopes(conn)}


def seen(scopes: ScopeStates) -> tuple[set[str], bool]:
    """What the looks gathered since the last call, cleared as the watch clears it."""
    gathered = (set(scopes.moved), scopes.listing_changed)
    scopes.moved.clear()
    scopes.listing_changed = False
    return gathered


def test_a_look_gathers_the_scopes_a_write_moved_and_nothing_when_none_did(app, make_record):
    write(app, make_record())
    scopes = ScopeStates()
    assert look(app, scopes)
    assert scopes.by_scope == stored(app) and seen(scopes) == (set(stored(app)), True)
    assert not look(app, scopes) and seen(scopes) == (set(), False)

    before = stored(app)
    write(app, make_record(title="संसद में नया विधेयक पेश", updated="2025-08-01T11:00:00+05:30",
                           tags=[{"key": "budget", "name": "बजट"}]))
    after = stored(app)
    assert look(app, scopes)
    moved = {scope for scope, state in after.items() if before.get(scope) != state}
    assert "tag:budget" in moved and "site" in moved
    assert seen(scopes) == (moved | (set(before) - set(after)), True)   # a new tag is a new list entry
    assert scopes.by_scope == after and scopes.versions == {s: state.version for s, state in after.items()}


def test_a_renamed_scope_leaves_and_its_new_key_comes(app, runner, make_record):
    write(app, make_record())
    scopes = ScopeStates()
    look(app, scopes)
    seen(scopes)
    result = runner.invoke(args=["rename-scope", "section", "national", "desh"])
    assert result.exit_code == 0, result.output
    assert look(app, scopes)
    moved, listing_changed = seen(scopes)
    assert {"section:national", "section:desh"} <= moved and listing_changed
    assert "section:national" not in scopes.by_scope and "section:national" not in scopes.versions
    assert scopes.by_scope == stored(app)
