"""The desk's counts: polls, 304s, refusals and errors per feed and day, and what readers report.

Serving must not wait on the store, so a request only adds to a dict in this process's memory
(`DeskCounters.count`, under a lock held for a few dictionary operations); a daemon thread writes the
sums every DESK_FLUSH_SECONDS, and once more at exit, as additive upserts (INSERT .. ON CONFLICT DO
UPDATE SET polls = polls + excluded.polls), so every worker and every machine on one database adds
its own increments and none overwrites another's. A worker killed outright loses at most its last
interval. At each write, rows older than DESK_KEEP_DAYS are dropped.

Distinct pollers are kept as digests of (day, address, User-Agent), inserted once each (ON CONFLICT
DO NOTHING), so they stay distinct across workers; the address itself is never stored.
The read side (what the desk shows) is at the end.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from feedsvc.ops import user_agents
from feedsvc.store import desk_feed_days, desk_pollers, desk_reader_days, now_utc

log = logging.getLogger(__name__)

# Status -> the column of desk_feed_days it counts in; other statuses (404s of unknown feeds) are not counted.
STATUS_COLUMNS = {200: "polls", 304: "not_modified", 429: "refused"}
FEED_COLUMNS = ("polls", "not_modified", "refused", "errors")
FEED_MAX = 300   # desk_feed_days.feed
# Keys held in memory between writes, per table: a flood of made-up feed paths (refused with 429)
# or of made-up User-Agents cannot grow a worker's memory past this; what does not fit is not counted.
MAX_KEYS = 20000

_LIVE: weakref.WeakSet = weakref.WeakSet()   # every DeskCounters of this process, written at exit


def status_column(status: int) -> str | None:
    if status >= 500:
        return "errors"
    return STATUS_COLUMNS.get(status)


class _Today:
    """The publication's calendar day now, worked out once per day rather than once per request."""

    def __init__(self, tz_name: str, clock=time.time):
        self.tz, self.clock = ZoneInfo(tz_name), clock
        self.day, self.ends = date.min, 0.0

    def __call__(self) -> date:
        now = self.clock()
        if now >= self.ends:
            local = datetime.fromtimestamp(now, self.tz)
            self.day = local.date()
            midnight = datetime.combine(self.day + timedelta(days=1), datetime.min.time(), self.tz)
            self.ends = midnight.timestamp()
        return self.day


@dataclass
class _Pending:
    """What this process has counted since its last write."""
    feeds: dict          # (day, feed) -> [polls, not_modified, refused, errors]
    readers: dict        # (day, feed, family) -> [polls, subscribers, reported_at]
    pollers: set         # (day, family, digest)

    @classmethod
    def empty(cls) -> "_Pending":
        return cls({}, {}, set())

    def __bool__(self) -> bool:
        return bool(self.feeds or self.readers or self.pollers)


class DeskCounters:
    """One process's counts for one database; `count` on the serving path, `flush` in the background."""

    def __init__(self, engine: Engine, *, tz_name: str, flush_seconds: float, keep_days: int, clock=time.time):
        self.engine, self.flush_seconds, self.keep_days = engine, flush_seconds, keep_days
        self.today = _Today(tz_name, clock)
        self.lock = threading.Lock()          # held only for dict updates and the swap
        self.flush_lock = threading.Lock()    # one write at a time
        self.pending = _Pending.empty()
        self.flusher_started = False
        self.pruned_on: date | None = None
        _LIVE.add(self)
        os.register_at_fork(after_in_child=_call_if_alive(weakref.WeakMethod(self._forget_parents_counts)))

    # ---- the serving path ----

    def count(self, feed: str, status: int, user_agent: str | None, remote: str | None) -> None:
        """Count one answer for a public feed path: its status and, for a poll, the reader behind it."""
        column = status_column(status)
        if column is None:
            return
        day = self.today()
        report = user_agents.parse(user_agent) if column in ("polls", "not_modified") else None
        with self.lock:
            pending = self.pending
            counts = pending.feeds.get((day, feed))
            if counts is None:
                if len(pending.feeds) >= MAX_KEYS:
                    return
                counts = pending.feeds[(day, feed)] = [0, 0, 0, 0]
            counts[FEED_COLUMNS.index(column)] += 1
            if report is not None:
                self._count_reader(pending, day, feed, report, user_agent, remote)
        if not self.flusher_started:
            self._start_flusher()

    def _count_reader(self, pending: _Pending, day: date, feed: str, report, user_agent, remote) -> None:
        key = (day, feed, report.family)
        reader = pending.readers.get(key)
        if reader is None:
            if len(pending.readers) >= MAX_KEYS:
                return
            reader = pending.readers[key] = [0, None, None]
        reader[0] += 1
        if report.subscribers is not None:
            reader[1], reader[2] = report.subscribers, now_utc()
        if len(pending.pollers) < MAX_KEYS:
            pending.pollers.add((day, report.family, poller_digest(day, remote, user_agent)))

    # ---- writing ----

    def flush(self) -> None:
        """Write what was counted since the last write (kept for the next one if the store refuses)."""
        with self.flush_lock:
            with self.lock:
                taken, self.pending = self.pending, _Pending.empty()
            if not taken:
                return
            try:
                with self.engine.begin() as conn:
                    write(conn, taken)
                    today = self.today()
                    if self.pruned_on != today:
                        drop_before(conn, today - timedelta(days=self.keep_days))
                        self.pruned_on = today
            except Exception:
                log.exception("desk counts: writing %d feed rows failed; kept for the next write", len(taken.feeds))
                self._put_back(taken)

    def close(self) -> None:
        """Write what is left and stop being written at exit (the app is closing its engine)."""
        self.flush()
        _LIVE.discard(self)

    def _put_back(self, taken: _Pending) -> None:
        with self.lock:
            now = self.pending
            for key, counts in taken.feeds.items():
                merged = now.feeds.setdefault(key, [0, 0, 0, 0])
                merged[:] = [a + b for a, b in zip(merged, counts, strict=True)]
            for key, (polls, subscribers, reported_at) in taken.readers.items():
                merged = now.readers.setdefault(key, [0, subscribers, reported_at])
                merged[0] += polls
            now.pollers |= taken.pollers

    def _start_flusher(self) -> None:
        with self.lock:
            if self.flusher_started:
                return
            self.flusher_started = True
        ref = weakref.ref(self)
        threading.Thread(target=_flush_forever, args=(ref, self.flush_seconds), name="feedsvc-desk-counts",
                         daemon=True).start()

    def _forget_parents_counts(self) -> None:
        # The parent writes its own counts; a forked child writing the copies would count them twice.
        self.pending = _Pending.empty()
        self.flusher_started = False   # threads do not survive a fork
        self.lock, self.flush_lock = threading.Lock(), threading.Lock()


def _call_if_alive(method_ref):
    def call():
        method = method_ref()
        if method is not None:
            method()
    return call


def _flush_forever(ref, seconds: float) -> None:
    # A weak reference: an app that is dropped (tests make many) takes its thread down with it.
    while True:
        time.sleep(seconds)
        counters = ref()
        if counters is None:
            return
        counters.flush()
        del counters


@atexit.register
def _flush_all() -> None:
    for counters in list(_LIVE):
        counters.flush()


def poller_digest(day: date, remote: str | None, user_agent: str | None) -> str:
    """Tells pollers apart within a day without keeping who they are (the day is part of it, so
    digests do not link one day's pollers to the next day's)."""
    text = f"{day.isoformat()}\n{remote or ''}\n{user_agent or ''}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _insert(conn: Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def write(conn: Connection, pending: _Pending) -> None:
    """Add `pending`'s counts to the stored ones (additive upserts: other workers' counts stay)."""
    insert = _insert(conn)
    if pending.feeds:
        stmt = insert(desk_feed_days)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[desk_feed_days.c.day, desk_feed_days.c.feed],
            set_={name: desk_feed_days.c[name] + stmt.excluded[name] for name in FEED_COLUMNS}),
            [{"day": day, "feed": feed[:FEED_MAX], **dict(zip(FEED_COLUMNS, counts, strict=True))}
             for (day, feed), counts in pending.feeds.items()])
    if pending.readers:
        stmt = insert(desk_reader_days)
        table, new = desk_reader_days.c, stmt.excluded
        newer = and_(new.reported_at.is_not(None), or_(table.reported_at.is_(None), new.reported_at >= table.reported_at))
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[table.day, table.feed, table.family],
            set_={"polls": table.polls + new.polls,
                  "subscribers": case((newer, new.subscribers), else_=table.subscribers),
                  "reported_at": case((newer, new.reported_at), else_=table.reported_at)}),
            [{"day": day, "feed": feed[:FEED_MAX], "family": family, "polls": polls, "subscribers": subscribers,
              "reported_at": reported_at}
             for (day, feed, family), (polls, subscribers, reported_at) in pending.readers.items()])
    if pending.pollers:
        conn.execute(insert(desk_pollers).on_conflict_do_nothing(),
                     [{"day": day, "family": family, "poller": digest} for day, family, digest in pending.pollers])


def drop_before(conn: Connection, first_kept: date) -> None:
    for table in (desk_feed_days, desk_reader_days, desk_pollers):
        conn.execute(delete(table).where(table.c.day < first_kept))


# ---- the app's counters --------------------------------------------------------------------------

_EXTENSION = "feedsvc.desk_counters"


def init_app(app, engine: Engine) -> DeskCounters:
    app.extensions[_EXTENSION] = DeskCounters(
        engine, tz_name=app.config["TIMEZONE"], flush_seconds=app.config["DESK_FLUSH_SECONDS"],
        keep_days=app.config["DESK_KEEP_DAYS"])
    return app.extensions[_EXTENSION]


def counters(app) -> DeskCounters:
    return app.extensions[_EXTENSION]


# ---- reading (the desk) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Traffic:
    polls: int = 0
    not_modified: int = 0
    refused: int = 0
    errors: int = 0

    @property
    def requests(self) -> int:
        return self.polls + self.not_modified + self.refused + self.errors

    @property
    def not_modified_share(self) -> float | None:
        answered = self.polls + self.not_modified
        return self.not_modified / answered if answered else None


def traffic_since(conn: Connection, first_day: date) -> dict[str, Traffic]:
    """Feed path -> its counts summed from `first_day` on."""
    t = desk_feed_days.c
    rows = conn.execute(select(t.feed, *(func.sum(t[name]) for name in FEED_COLUMNS))
                        .where(t.day >= first_day).group_by(t.feed))
    return {row[0]: Traffic(*(int(v or 0) for v in row[1:])) for row in rows}


def traffic_per_day(conn: Connection, first_day: date) -> dict[date, Traffic]:
    """Day -> every feed's counts that day."""
    t = desk_feed_days.c
    rows = conn.execute(select(t.day, *(func.sum(t[name]) for name in FEED_COLUMNS))
                        .where(t.day >= first_day).group_by(t.day).order_by(t.day))
    return {row[0]: Traffic(*(int(v or 0) for v in row[1:])) for row in rows}


def reports(conn: Connection, first_day: date) -> list[tuple[date, str, str, int]]:
    """(day, feed, family, subscribers) of every day a reader reported a count, oldest first."""
    t = desk_reader_days.c
    return [tuple(r) for r in conn.execute(
        select(t.day, t.feed, t.family, t.subscribers)
        .where(t.day >= first_day, t.subscribers.is_not(None)).order_by(t.day))]


def subscribers_by_feed(conn: Connection, first_day: date) -> dict[str, int]:
    """Feed path -> subscribers: the latest count each reader family reported for it, summed."""
    latest: dict[tuple[str, str], int] = {}
    for _day, feed, family, subscribers in reports(conn, first_day):
        latest[(feed, family)] = subscribers   # oldest first, so the latest stays
    totals: dict[str, int] = {}
    for (feed, _family), subscribers in latest.items():
        totals[feed] = totals.get(feed, 0) + subscribers
    return totals


def subscribers_per_day(conn: Connection, first_day: date) -> dict[date, int]:
    """Day -> subscribers reported that day, every feed and reader family summed."""
    totals: dict[date, int] = {}
    for day, _feed, _family, subscribers in reports(conn, first_day):
        totals[day] = totals.get(day, 0) + subscribers
    return totals


def pollers_by_family(conn: Connection, first_day: date) -> dict[str, dict[date, int]]:
    """Reader family -> day -> distinct pollers that day."""
    t = desk_pollers.c
    found: dict[str, dict[date, int]] = {}
    for day, family, n in conn.execute(select(t.day, t.family, func.count())
                                       .where(t.day >= first_day).group_by(t.day, t.family)):
        found.setdefault(family, {})[day] = int(n)
    return found


def polls_by_family(conn: Connection, first_day: date) -> dict[str, int]:
    """Reader family -> polls (200s and 304s) since `first_day`."""
    t = desk_reader_days.c
    return {family: int(n) for family, n in conn.execute(
        select(t.family, func.sum(t.polls)).where(t.day >= first_day).group_by(t.family))}
