"""Which feeds a test over every kind of scope walks."""
from __future__ import annotations

from feedsvc import store


def scope_ids(conn) -> list[str]:
    """The site and up to two scopes of every kind the store has."""
    found = [state.scope for state in store.all_scopes(conn)]
    chosen = ["site"]
    for kind in store.SCOPE_KINDS:
        chosen += [scope for scope in found if scope.partition(":")[0] == kind][:2]   # "video" has no key
    return chosen
