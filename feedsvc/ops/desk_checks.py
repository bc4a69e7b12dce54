"""What the desk keeps of checks run elsewhere: each feed document's last validation (`flask validate --all`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from feedsvc.render.feeds.urls import FEEDS
from feedsvc.store import desk_validations, dialect_insert, now_utc

FEED_MAX = 300        # desk_validations.feed
PROBLEMS_KEPT = 20    # per feed: the desk shows the first few; the command's output has them all


@dataclass(frozen=True)
class Validation:
    checked_at: datetime          # naive UTC
    problems: list[dict]          # validate.problems.Problem.as_json(), at most PROBLEMS_KEPT
    total: int                    # problems found, kept or not

    @property
    def ok(self) -> bool:
        return self.total == 0

    def as_json(self) -> dict:
        return {"checked_at": self.checked_at.isoformat() + "Z", "ok": self.ok, "problems": self.total,
                "first_problems": self.problems}


def record_validations(conn: Connection, outcomes, when: datetime | None = None) -> int:
    """Keep the result of every feed document among `outcomes` (validate.command.Outcome, targets as
    paths) as its last validation; returns how many were kept. Other documents (pages, sitemaps) are not kept."""
    when = when or now_utc()
    rows = [{"feed": o.target[:FEED_MAX], "checked_at": when,
             "problems": json.dumps({"total": len(o.problems),
                                     "first": [p.as_json() for p in o.problems[:PROBLEMS_KEPT]]}, ensure_ascii=False)}
            for o in outcomes if o.target.startswith(FEEDS + "/") and not o.target.endswith(".opml")]
    if not rows:
        return 0
    stmt = dialect_insert(conn)(desk_validations)
    # A target may come twice (a profile feed checked per profile); the rows of one statement must differ.
    unique = list({row["feed"]: row for row in rows}.values())
    conn.execute(stmt.on_conflict_do_update(index_elements=[desk_validations.c.feed],
                                            set_={"checked_at": stmt.excluded.checked_at,
                                                  "problems": stmt.excluded.problems}), unique)
    return len(unique)


def validations(conn: Connection) -> dict[str, Validation]:
    """Feed path -> its last validation."""
    found = {}
    for feed, checked_at, problems in conn.execute(select(desk_validations)):
        kept = json.loads(problems)
        found[feed] = Validation(checked_at, kept["first"], kept["total"])
    return found

