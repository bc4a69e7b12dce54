"""What the desk shows, as plain data: every feed's figures, the audience, the outbox, partners, alerts.

The desk's views (feedsvc/web/desk.py) and its JSON (`/desk/api/...`) both read these, so a page and
its JSON never disagree. Sizes come from rendering each feed's first page as the public URL serves
it, kept per scope version so a page view renders only the feeds that changed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.ops import desk_checks, desk_counters, partners
from feedsvc.ops.desk_checks import Validation
from feedsvc.ops.desk_counters import Traffic
from feedsvc.render import feeds
from feedsvc.render.feeds.urls import feed_path
from feedsvc.store import SCHEDULED, articles, websub_outbox

MB = 1024 * 1024
# The feed sizes aggregators and readers hold feeds to: past 1 MB some stop reading, past 2 MB
# more do, past 10 MB nearly all refuse the document.
BUDGETS = (1 * MB, 2 * MB, 10 * MB)
MONTH_DAYS = 30
DAY_HOURS = 24
STALE_HOURS = 48   # a feed whose newest item is older than this is shown as a problem
SORT_KEYS = ("problems", "name", "size", "items", "age", "requests", "not_modified", "refused", "errors",
             "subscribers")


@dataclass(frozen=True)
class Rendered:
    size: int
    items: int
    newest: datetime | None   # aware


@dataclass(frozen=True)
class Ping:
    """The WebSub notifications of one feed: the last one a hub took, and what is still owed."""
    last_sent: datetime | None     # naive UTC
    pending: int
    last_error: str | None         # of a pending one

    def as_json(self) -> dict:
        return {"last_sent": self.last_sent.isoformat() + "Z" if self.last_sent else None, "pending": self.pending,
                "last_error": self.last_error}


@dataclass
class FeedFigures:
    path: str
    scope: str          # store scope id: site, section:<key>, ...
    kind: str
    name: str
    fmt: str
    size: int
    items: int
    newest: datetime | None
    day: Traffic          # the last 24 hours
    month: Traffic        # the last 30 calendar days, today included
    subscribers: int
    now: datetime = field(repr=False)
    validation: Validation | None = None
    ping: Ping | None = None

    @property
    def budgets_over(self) -> list[int]:
        return [budget for budget in BUDGETS if self.size > budget]

    @property
    def age_hours(self) -> float | None:
        return None if self.newest is None else (self.now - self.newest).total_seconds() / 3600

    @property
    def problems(self) -> list[str]:
        found = [f"over {budget // MB} MB" for budget in self.budgets_over]
        if self.items == 0:
            found.append("no items")
        elif self.age_hours is not None and self.age_hours > STALE_HOURS:
            found.append(f"newest item {self.age_hours:.0f} h old")
        if self.validation is not None and not self.validation.ok:
            found.append(f"invalid: {self.validation.total} problems")
        if self.ping is not None and self.ping.last_error:
            found.append("WebSub ping failing")
        if self.day.errors:
            found.append(f"{self.day.errors} errors in 24 h")
        if self.day.refused:
            found.append(f"{self.day.refused} refused in 24 h")
        return found

    def as_json(self) -> dict:
        def traffic(t: Traffic) -> dict:
            return {"requests": t.requests, "ok": t.polls, "not_modified": t.not_modified,
                    "not_modified_share": t.not_modified_share, "refused": t.refused, "errors": t.errors}
        return {"path": self.path, "scope": self.scope, "name": self.name, "format": self.fmt, "bytes": self.size,
                "budgets_over": self.budgets_over, "items": self.items,
                "newest_item": self.newest.isoformat() if self.newest else None,
                "last_24_hours": traffic(self.day), "last_30_days": traffic(self.month),
                "subscribers": self.subscribers, "problems": self.problems,
                "validation": self.validation.as_json() if self.validation else None,
                "websub": self.ping.as_json() if self.ping else None}


class RenderedSizes:
    """Each feed's first page measured once per scope state (per process; the desk is seldom opened)."""

    MAX_KEPT = 20000

    def __init__(self):
        self.kept: dict[tuple, Rendered] = {}
        self.lock = threading.Lock()

    def of(self, conn: Connection, site: feeds.Site, scope: feeds.Scope, state, fmt: str) -> Rendered:
        key = (scope.id, state.version, state.modified_at, fmt, site.digest())
        found = self.kept.get(key)
        if found is None:
            feed = feeds.load_feed(conn, site, scope, state, fmt=fmt, limit=site.default_limit)
            newest = max((entry.updated for entry in feed.entries), default=None)
            found = Rendered(len(feeds.write(fmt, feed)), len(feed.entries), newest)
            with self.lock:
                if len(self.kept) >= self.MAX_KEPT:
                    self.kept.clear()
                self.kept[key] = found
        return found


def month_start(today: date) -> date:
    return today - timedelta(days=MONTH_DAYS - 1)


def day_start(now: datetime) -> datetime:
    """The first hour (naive UTC) of the last 24 hours, the current hour counted as one of them."""
    return now.astimezone(timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0) - \
        timedelta(hours=DAY_HOURS - 1)


def last_pings(conn: Connection, site_url: str) -> dict[str, Ping]:
    """Feed path -> its WebSub notifications (topics are the feeds' absolute URLs under `site_url`)."""
    t = websub_outbox.c
    rows = conn.execute(select(t.topic_url, func.max(t.sent_at), func.count(t.id).filter(t.sent_at.is_(None)),
                               func.max(t.last_error).filter(t.sent_at.is_(None)))
                        .where(t.kind == "websub", t.topic_url.startswith(site_url + "/", autoescape=True))
                        .group_by(t.topic_url))
    return {topic[len(site_url):]: Ping(sent, int(pending or 0), error) for topic, sent, pending, error in rows}


def feed_figures(conn: Connection, site: feeds.Site, sizes: RenderedSizes, today: date) -> list[FeedFigures]:
    """Every public feed (scope x format) with its size, items, traffic, last validation and WebSub ping,
    in store order."""
    now = datetime.now(timezone.utc)
    day_traffic = desk_counters.traffic_since_hour(conn, day_start(now))
    month_traffic = desk_counters.traffic_since(conn, month_start(today))
    subscribers = desk_counters.subscribers_by_feed(conn, month_start(today))
    checked = desk_checks.validations(conn)
    pings = last_pings(conn, site.url.rstrip("/"))
    scope_states = store.all_scopes(conn)
    if not any(state.scope == "site" for state in scope_states):
        scope_states.insert(0, feeds.state_of(conn, "site"))
    found = []
    for state in scope_states:
        scope = feeds.as_scope(state.scope)
        scope = feeds.Scope(scope.kind, scope.key, state.name) if scope.kind != "site" else scope
        for fmt in feeds.FORMATS:
            path = feed_path(scope, fmt)
            rendered = sizes.of(conn, site, scope, state, fmt)
            found.append(FeedFigures(path, state.scope, scope.kind, state.name or site.name, fmt, rendered.size,
                                     rendered.items, rendered.newest, day_traffic.get(path, Traffic()),
                                     month_traffic.get(path, Traffic()), subscribers.get(path, 0), now,
                                     checked.get(path), pings.get(path)))
    return found


def sort_figures(rows: list[FeedFigures], key: str, descending: bool) -> list[FeedFigures]:
    """Sorted by `key` (one of SORT_KEYS); feeds with problems always come first."""
    values = {
        "problems": lambda r: (len(r.problems), r.size), "name": lambda r: (r.name, r.fmt), "size": lambda r: r.size,
        "items": lambda r: r.items, "age": lambda r: r.age_hours if r.age_hours is not None else float("inf"),
        "requests": lambda r: r.month.requests, "not_modified": lambda r: r.month.not_modified_share or 0.0,
        "refused": lambda r: r.month.refused, "errors": lambda r: r.month.errors,
        "subscribers": lambda r: r.subscribers,
    }
    ordered = sorted(rows, key=values[key], reverse=descending)
    return sorted(ordered, key=lambda r: not r.problems)   # stable: problem feeds first, each group as sorted


# ---- audience --------------------------------------------------------------------------------------

@dataclass
class Audience:
    days: list[date]
    subscribers_per_day: list[int]
    polls_per_day: list[int]
    not_modified_per_day: list[int]
    subscribers_by_feed: list[tuple[str, int]]             # most first
    pollers_by_family: dict[str, list[int]]                 # family -> distinct pollers per day of `days`
    polls_by_family: list[tuple[str, int]]                  # most first


def audience(conn: Connection, today: date) -> Audience:
    first = month_start(today)
    days = [first + timedelta(days=n) for n in range(MONTH_DAYS)]
    per_day = desk_counters.traffic_per_day(conn, first)
    subscribers = desk_counters.subscribers_per_day(conn, first)
    pollers = desk_counters.pollers_by_family(conn, first)
    return Audience(
        days=days,
        subscribers_per_day=[subscribers.get(day, 0) for day in days],
        polls_per_day=[per_day.get(day, Traffic()).polls for day in days],
        not_modified_per_day=[per_day.get(day, Traffic()).not_modified for day in days],
        subscribers_by_feed=sorted(desk_counters.subscribers_by_feed(conn, first).items(), key=lambda kv: -kv[1]),
        pollers_by_family={family: [counts.get(day, 0) for day in days] for family, counts in sorted(pollers.items())},
        polls_by_family=sorted(desk_counters.polls_by_family(conn, first).items(), key=lambda kv: -kv[1]),
    )


# ---- outbox ----------------------------------------------------------------------------------------

FAILED_SHOWN = 50


def failed_notifications(conn: Connection) -> list:
    """Unsent pings and purges whose last attempt failed, the longest failing first."""
    t = websub_outbox.c
    return list(conn.execute(
        select(t.id, t.kind, t.hub_url, t.topic_url, t.attempts, t.last_error, t.next_attempt_at, t.created_at)
        .where(t.sent_at.is_(None), t.last_error.is_not(None)).order_by(t.created_at).limit(FAILED_SHOWN)))


def retry_now(conn: Connection, row_id: int | None = None) -> int:
    """Make failed notifications (one, or all) due now; the sender picks them up at its next pass."""
    t = websub_outbox.c
    query = update(websub_outbox).where(t.sent_at.is_(None), t.last_error.is_not(None))
    if row_id is not None:
        query = query.where(t.id == row_id)
    return conn.execute(query.values(next_attempt_at=store.now_utc())).rowcount


# ---- partners and alerts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartnerDay:
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0


def partner_days(conn: Connection, today: date) -> tuple[list[date], dict[str, list[PartnerDay]]]:
    """The last 30 days, and partner -> its requests, 304s and bytes on each of them."""
    first = month_start(today)
    days = [first + timedelta(days=n) for n in range(MONTH_DAYS)]
    totals: dict[str, dict[date, PartnerDay]] = {}
    for usage in partners.usage(conn, since=first):
        per_day = totals.setdefault(usage.partner, {})
        was = per_day.get(usage.day, PartnerDay())
        per_day[usage.day] = PartnerDay(was.requests + usage.requests, was.not_modified + usage.not_modified,
                                        was.bytes + usage.bytes)
    return days, {name: [per_day.get(day, PartnerDay()) for day in days] for name, per_day in sorted(totals.items())}


def embargoes_due(conn: Connection, within: timedelta) -> list:
    """Scheduled articles going live within `within` from now: id, slug, section, when (naive UTC)."""
    t = articles.c
    now = store.now_utc()
    return list(conn.execute(select(t.id, t.slug, t.section_name, t.visible_from)
                             .where(t.status == SCHEDULED, t.visible_from <= now + within)
                             .order_by(t.visible_from)))
