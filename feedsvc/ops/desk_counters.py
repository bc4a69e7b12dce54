"""The desk's counts: polls, 304s, refusals and errors per feed (per day and per hour), what readers
report, partner requests and bytes, and the items aggregator profiles leave out.

Serving must not wait on the store, so a request only adds to a dict in this process's memory
(`DeskCounters.count`, under a lock held for a few dictionary operations); a daemon thread writes the
sums every DESK_FLUSH_SECONDS, and once more at exit, as additive upserts (INSERT .. ON CONFLICT DO
UPDATE SET polls = polls + excluded.polls), so every worker and every machine on one database adds
its own increments and none overwrites another's. A worker killed outright loses at most its last
interval. At each write, day rows older than DESK_KEEP_DAYS and hour rows older than DESK_KEEP_HOURS
are dropped (the hours make the desk's "last 24 hours" a sliding window, not the calendar day).

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
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.engine import Connection, Engine

from feedsvc.ops import user_agents
from feedsvc.render import profiles
from feedsvc.store import (
    desk_feed_days,
    desk_feed_hours,
    desk_left_out,
    desk_pollers,
    desk_reader_days,
    dialect_insert,
    now_utc,
    partner_usage,
)
from feedsvc.web import app_signals

log = logging.getLogger(__name__)

# Status -> the column of desk_feed_days it counts in; other statuses (404s of unknown feeds) are not counted.
STATUS_COLUMNS = {200: "polls", 304: "not_modified", 429: "refused"}
FEED_COLUMNS = ("polls", "not_modified", "refused", "errors")
FEED_MAX = 300   # desk_feed_days.feed
LEFT_OUT_MAX = (64, 128, 64)   # desk_left_out.profile, item, rule
# Keys held in memory between writes, per table: a flood of made-up feed paths (refused with 429)
# or of made-up User-Agents cannot grow a worker's memory past this; what does not fit is not counted.
MAX_KEYS = 20000

_LIVE: weakref.WeakSet = weakref.WeakSet()   # every DeskCounters of this process, written at exit


def status_column(status: int) -> str | None:
    if status >= 500:
        return "errors"
    return STATUS_COLUMNS.get(status)


HOUR = 3600


class _Now:
    """(the publication's calendar day, the UTC hour as seconds since the epoch) now, worked out once
    per hour rather than once per request."""

    def __init__(self, tz_name: str, clock=time.time):
        self.tz, self.clock = ZoneInfo(tz_name), clock
        self.now, self.ends = (date.min, 0), 0.0

    def __call__(self) -> tuple[date, int]:
        now = self.clock()
        if now >= self.ends:
            hour = int(now // HOUR) * HOUR
            # Every zone's midnight falls on a UTC quarter hour, so the day can change within an hour.
            local = datetime.fromtimestamp(now, self.tz)
            midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), self.tz).timestamp()
            self.now, self.ends = (local.date(), hour), min(hour + HOUR, midnight)
        return self.now


def hour_start(hour: int) -> datetime:
    """An hour (seconds since the epoch) as the naive UTC datetime the store keeps."""
    return datetime.fromtimestamp(hour, timezone.utc).replace(tzinfo=None)


@dataclass
class _Pending:
    """What this process has counted since its last write."""
    feeds: dict          # (day, hour, feed) -> [polls, not_modified, refused, errors]
    readers: dict        # (day, feed, family) -> [polls, subscribers, reported_at]
    pollers: set         # (day, family, digest)
    partners: dict       # (day, partner id, feed) -> [requests, not_modified, bytes]
    left_out: dict       # (profile, item, rule) -> (message, seen_at)

    @classmethod
    def empty(cls) -> "_Pending":
        return cls({}, {}, set(), {}, {})

    def __bool__(self) -> bool:
        return bool(self.feeds or self.readers or self.pollers or self.partners or self.left_out)


class DeskCounters:
    """One process's counts for one database; `count` on the serving path, `flush` in the background."""

    def __init__(self, engine: Engine, *, tz_name: str, flush_seconds: float, keep_days: int, keep_hours: int = 48,
                 enabled: bool = True, clock=time.time):
        self.engine, self.flush_seconds, self.keep_days, self.keep_hours = engine, flush_seconds, keep_days, keep_hours
        self.enabled = enabled
        self.now = _Now(tz_name, clock)
        self.lock = threading.Lock()          # held only for dict updates and the swap
        self.flush_lock = threading.Lock()    # one write at a time
        self.pending = _Pending.empty()
        self.flusher_started = False
        self.pruned_at = 0   # the hour of the last drop of old rows
        _LIVE.add(self)
        os.register_at_fork(after_in_child=_call_if_alive(weakref.WeakMethod(self._forget_parents_counts)))

    # ---- the serving path ----

    def count(self, feed: str, status: int, user_agent: str | None, remote: str | None) -> None:
        """Count one answer for a public feed path: its status and, for a poll, the reader behind it."""
        column = status_column(status)
        if column is None or not self.enabled:
            return
        day, hour = self.now()
        report = user_agents.parse(user_agent) if column in ("polls", "not_modified") else None
        with self.lock:
            pending = self.pending
            counts = pending.feeds.get((day, hour, feed))
            if counts is None:
                if len(pending.feeds) >= MAX_KEYS:
                    return
                counts = pending.feeds[(day, hour, feed)] = [0, 0, 0, 0]
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

    def count_partner(self, partner_id: int, feed: str, status: int, sent_bytes: int) -> None:
        """Count one answer to a partner: a request, a 304 or not, and the body bytes sent."""
        if not self.enabled:
            return
        day, _hour = self.now()
        with self.lock:
            pending = self.pending
            counts = pending.partners.get((day, partner_id, feed))
            if counts is None:
                if len(pending.partners) >= MAX_KEYS:
                    return
                counts = pending.partners[(day, partner_id, feed)] = [0, 0, 0]
            counts[0] += 1
            counts[1] += status == 304
            counts[2] += sent_bytes
        if not self.flusher_started:
            self._start_flusher()

    def hear_left_out(self, profile: str, items: list, **_) -> None:
        """Hears render.profiles.left_out: the items of a check that name an item."""
        if items:
            self.note_left_out(profile, [left for left in items if left.item])

    def note_left_out(self, profile: str, items: list) -> None:
        """The items one check of a profile's feed left out (render/profiles.LeftOut: item, rule and
        why), each's latest sighting kept."""
        seen, name = now_utc(), profile[:LEFT_OUT_MAX[0]]
        with self.lock:
            pending = self.pending.left_out
            for item, rule, message in items:
                key = (name, item[:LEFT_OUT_MAX[1]], rule[:LEFT_OUT_MAX[2]])
                if key in pending or len(pending) < MAX_KEYS:
                    pending[key] = (message, seen)
        if not self.flusher_started:
            self._start_flusher()

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
                    today, hour = self.now()
                    if self.pruned_at != hour:
                        drop_before(conn, today - timedelta(days=self.keep_days),
                                    hour_start(hour) - timedelta(hours=self.keep_hours))
                        self.pruned_at = hour
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
            for table, taken_table, width in ((now.feeds, taken.feeds, 4), (now.partners, taken.partners, 3)):
                for key, counts in taken_table.items():
                    merged = table.setdefault(key, [0] * width)
                    merged[:] = [a + b for a, b in zip(merged, counts, strict=True)]
            for key, (polls, subscribers, reported_at) in taken.readers.items():
                merged = now.readers.setdefault(key, [0, subscribers, reported_at])
                merged[0] += polls
            now.pollers |= taken.pollers
            now.left_out = {**taken.left_out, **now.left_out}

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


def _summed(feeds: dict, part: int) -> dict:
    """(day, hour, feed) -> counts, summed by (day or hour, feed)."""
    sums: dict = {}
    for key, counts in feeds.items():
        total = sums.setdefault((key[part], key[2][:FEED_MAX]), [0, 0, 0, 0])
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    return sums


def _lock_order(items):
    """A dict's items by key, in one order every worker shares: upserts from two workers that lock the same
    rows in different orders deadlock each other in PostgreSQL (seen in the load test)."""
    return sorted(items, key=lambda item: repr(item[0]))


def _add_feed_counts(conn: Connection, table, period: str, sums: dict) -> None:
    stmt = dialect_insert(conn)(table)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[table.c[period], table.c.feed],
        set_={name: table.c[name] + stmt.excluded[name] for name in FEED_COLUMNS}),
        [{period: when, "feed": feed, **dict(zip(FEED_COLUMNS, counts, strict=True))}
         for (when, feed), counts in _lock_order(sums.items())])


def write(conn: Connection, pending: _Pending) -> None:
    """Add `pending`'s counts to the stored ones (additive upserts: other workers' counts stay)."""
    insert = dialect_insert(conn)
    if pending.feeds:
        _add_feed_counts(conn, desk_feed_days, "day", _summed(pending.feeds, 0))
        _add_feed_counts(conn, desk_feed_hours, "hour",
                         {(hour_start(hour), feed): counts for (hour, feed), counts in _summed(pending.feeds, 1).items()})
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
             for (day, feed, family), (polls, subscribers, reported_at) in _lock_order(pending.readers.items())])
    if pending.pollers:
        conn.execute(insert(desk_pollers).on_conflict_do_nothing(),
                     [{"day": day, "family": family, "poller": digest}
                      for day, family, digest in sorted(pending.pollers, key=repr)])
    if pending.partners:
        _add_partner_counts(conn, pending.partners)
    if pending.left_out:
        stmt = insert(desk_left_out)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[desk_left_out.c.profile, desk_left_out.c.item, desk_left_out.c.rule],
            set_={"message": stmt.excluded.message, "seen_at": stmt.excluded.seen_at}),
            [{"profile": profile, "item": item, "rule": rule, "message": message, "seen_at": seen_at}
             for (profile, item, rule), (message, seen_at) in _lock_order(pending.left_out.items())])


def _add_partner_counts(conn: Connection, counted: dict) -> None:
    """(day, partner id, feed) -> [requests, not_modified, bytes], added to partner_usage."""
    t = partner_usage.c
    stmt = dialect_insert(conn)(partner_usage)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[t.partner_id, t.day, t.feed],
        set_={name: t[name] + stmt.excluded[name] for name in ("requests", "not_modified", "bytes")}),
        [{"partner_id": partner_id, "day": day, "feed": feed[:FEED_MAX], "requests": requests,
          "not_modified": not_modified, "bytes": sent}
         for (day, partner_id, feed), (requests, not_modified, sent) in _lock_order(counted.items())])


def drop_before(conn: Connection, first_kept: date, first_hour_kept: datetime) -> None:
    """Drop day rows before `first_kept` (a day), hour rows before `first_hour_kept` (naive UTC), and
    left-out items not seen since the first kept day. Partner usage is the partners' record: kept."""
    for table in (desk_feed_days, desk_reader_days, desk_pollers):
        conn.execute(delete(table).where(table.c.day < first_kept))
    conn.execute(delete(desk_feed_hours).where(desk_feed_hours.c.hour < first_hour_kept))
    conn.execute(delete(desk_left_out).where(desk_left_out.c.seen_at < datetime.combine(first_kept, datetime.min.time())))


# ---- the app's counters --------------------------------------------------------------------------

_EXTENSION = "feedsvc.desk_counters"


def init_app(app, engine: Engine) -> DeskCounters:
    """The app's counters, written through `engine`; they keep what its profile feeds leave out."""
    found = app.extensions[_EXTENSION] = DeskCounters(
        engine, tz_name=app.config["TIMEZONE"], flush_seconds=app.config["DESK_FLUSH_SECONDS"],
        keep_days=app.config["DESK_KEEP_DAYS"], keep_hours=app.config["DESK_KEEP_HOURS"],
        enabled=app.config["DESK_COUNTS"])
    app_signals.connect(app, profiles.left_out, found.hear_left_out)
    return found


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


def traffic_since_hour(conn: Connection, first_hour: datetime) -> dict[str, Traffic]:
    """Feed path -> its counts summed over the hours from `first_hour` (naive UTC) on."""
    t = desk_feed_hours.c
    rows = conn.execute(select(t.feed, *(func.sum(t[name]) for name in FEED_COLUMNS))
                        .where(t.hour >= first_hour).group_by(t.feed))
    return {row[0]: Traffic(*(int(v or 0) for v in row[1:])) for row in rows}


def left_out_since(conn: Connection, since: datetime, limit: int = 200) -> list:
    """Items profiles left out, seen since `since` (naive UTC): profile, item, rule, message, seen_at; newest first."""
    t = desk_left_out.c
    return list(conn.execute(select(t.profile, t.item, t.rule, t.message, t.seen_at)
                             .where(t.seen_at >= since).order_by(t.seen_at.desc(), t.profile, t.item).limit(limit)))


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
