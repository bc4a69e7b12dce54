"""Renaming a section, tag or author key: every article moved to the new key in one transaction, and
the old key's feeds and listing answering 301 to the new ones (store.scope_redirects).

A rename is an operator's act (`flask --app wsgi rename-scope KIND OLD NEW`, or
POST /api/scopes/<kind>/<old>/rename), not something inferred from records: a record names one
article, a rename moves all of them at once, so no feed is ever split between the two keys. Every
article with the old key is rewritten (its stored article and record, its version and write time,
whatever its status, so tombstones move too), the feeds it shows in are bumped (WebSub pings and
cache purges follow through the outbox), the old scope's counter is deleted (it leaves OPML, /feeds
and the mirror), and a redirect old -> new is stored. Chains stay flat: renaming b -> c after a -> b
makes a -> c, so a reader follows one 301. A record that later brings the old key back makes that
scope anew, and a live scope wins over a redirect (feeds.scope.state_of reads the scope first).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.ingest.records import (
    KEY_MAX,
    Article,
    article_from_json,
    article_to_json,
    record_to_json,
    valid_key,
)
from feedsvc.ingest.sanitize import clean_text
from feedsvc.ingest.write import update_versioned, write_links
from feedsvc.store import SCOPE_KINDS, articles, scope_redirects, scope_state

NAME_MAX = 200   # as a name in the article schema


class BadRename(ValueError):
    """A rename that cannot be done as asked; the message says which argument and why."""


class UnknownScope(LookupError):
    """The key to rename names no feed."""


@dataclass(frozen=True)
class RenameResult:
    kind: str
    old_key: str
    new_key: str
    name: str            # the new scope's display name
    articles: int        # articles rewritten
    merged: bool         # the new key was a scope already: the old one joined it

    def as_json(self) -> dict:
        return {"kind": self.kind, "from": self.old_key, "to": self.new_key, "name": self.name,
                "articles": self.articles, "merged": self.merged}


def check(kind: str, old_key: str, new_key: str, name: str | None) -> str | None:
    """The rename's arguments checked (BadRename names the wrong one); returns the cleaned name."""
    if kind not in SCOPE_KINDS:
        raise BadRename(f"kind must be one of {', '.join(SCOPE_KINDS)}; got {kind[:20]!r}")
    for label, key in (("old key", old_key), ("new key", new_key)):
        if not valid_key(key):
            raise BadRename(f"{label} {key[:80]!r} is not a key: lower-case Latin letters and digits in words "
                            f"joined by '-', at most {KEY_MAX} characters")
    if old_key == new_key:
        raise BadRename(f"old and new key are the same ({old_key!r})")
    if name is None:
        return None
    cleaned = clean_text(name)
    if not cleaned or len(cleaned) > NAME_MAX:
        raise BadRename(f"name must be 1 to {NAME_MAX} characters of text; got {name[:40]!r}")
    return cleaned


def rename_scope(conn: Connection, kind: str, old_key: str, new_key: str, *, site_name: str,
                 name: str | None = None, now: datetime | None = None) -> RenameResult:
    """Move every article of `kind` `old_key` to `new_key` (named `name`, else the new scope's current
    name, else as they were) inside the caller's transaction. Raises BadRename, UnknownScope, or
    ConcurrentWrite when another writer changed one of the articles meanwhile (roll back and retry)."""
    name = check(kind, old_key, new_key, name)
    now = now or store.now_utc()
    old_scope, new_scope = f"{kind}:{old_key}", f"{kind}:{new_key}"
    old_state = store.scope_state_of(conn, old_scope)
    if old_state is None:
        raise UnknownScope(f"there is no {kind} '{old_key}' to rename: no feed has that key")
    new_state = store.scope_state_of(conn, new_scope)
    name = name or (new_state.name if new_state else None)
    listed = SCOPE_KINDS[kind]
    rows = conn.execute(select(articles.c.id, articles.c.version, articles.c.article, articles.c.record,
                               articles.c.withdrawn_at)
                        .where(articles.c.id.in_(select(listed.article_id).where(listed.key == old_key)))
                        .order_by(articles.c.id)).all()
    names: dict[str, str] = {}
    moved: list[Article] = []
    changed_rows = []
    for row in rows:
        before = article_from_json(row.article)
        after = article_from_json(row.article)
        _move(after, listed.field, old_key, new_key, name)
        record = _moved_record(json.loads(row.record), listed, before, old_key, new_key, name)
        # What a reader could see of it: a live article, or the tombstone of one withdrawn after it was public.
        if before.live or (before.status == "withdrawn" and row.withdrawn_at is not None):
            names.update(store.article_scopes(before, site_name))
            names.update(store.article_scopes(after, site_name))
        moved.append(after)
        changed_rows.append(dict(article_id=row.id, old_version=row.version, version=row.version + 1,
                                 modified_at=now, article=article_to_json(after), record=record_to_json(record),
                                 section_key=after.section.key, section_name=after.section.name))
    update_versioned(conn, changed_rows, "during the rename")
    if listed.table is not articles:
        write_links(conn, moved)
    _redirect(conn, kind, old_key, new_key, now)
    names[old_scope] = old_state.name
    names[new_scope] = name or names.get(new_scope) or old_state.name
    store.record_changes(conn, names, now, articles=[a.id for a in moved])
    # After the bump (its pings and purges are queued): the old scope is a redirect now, no feed.
    conn.execute(delete(scope_state).where(scope_state.c.scope == old_scope))
    return RenameResult(kind, old_key, new_key, names[new_scope], len(moved), new_state is not None)


def _moved_item(item, old_key: str, new_key: str, name: str | None):
    return replace(item, key=new_key, name=name or item.name) if item.key == old_key else item


def _move(article: Article, field: str, old_key: str, new_key: str, name: str | None) -> None:
    value = getattr(article, field)
    if isinstance(value, list):
        moved = [_moved_item(item, old_key, new_key, name) for item in value]
        # Merging into a key the article already has: it keeps one, the first (as records.parse_record does).
        setattr(article, field, [item for i, item in enumerate(moved) if item.key not in {m.key for m in moved[:i]}])
    else:
        setattr(article, field, _moved_item(value, old_key, new_key, name))


def _moved_record(record: dict, listed: store.ScopeKind, before: Article, old_key: str, new_key: str,
                  name: str | None) -> dict:
    """The record as given, with the new key wherever it gave the old one. An author given by name only
    (their key derived) is given the new key explicitly: derived again, the name would lead to the old one."""
    derived = {m.name for m in listed.members(before) if m.key == old_key}
    if not record.get(listed.field):
        return record
    value = record[listed.field]
    items: list[dict] = value if isinstance(value, list) else [value]
    for item in items:
        if item.get("key") == old_key or ("key" not in item and clean_text(item.get("name", "")) in derived):
            item["key"] = new_key
            if name:
                item["name"] = name
    if isinstance(value, list):   # merged into a key the record gave too: the first stays, as the article has it
        keys = [item.get("key") for item in value]
        record[listed.field] = [item for i, item in enumerate(value) if item.get("key") is None or item["key"] not in keys[:i]]
    return record


def _redirect(conn: Connection, kind: str, old_key: str, new_key: str, now: datetime) -> None:
    """old -> new, chains kept flat; the new key, a scope now, stops redirecting anywhere."""
    here = scope_redirects.c.kind == kind
    conn.execute(delete(scope_redirects).where(here, scope_redirects.c.old_key.in_((new_key, old_key))))
    conn.execute(update(scope_redirects).where(here, scope_redirects.c.new_key == old_key).values(new_key=new_key))
    conn.execute(insert(scope_redirects).values(kind=kind, old_key=old_key, new_key=new_key, created_at=now))
