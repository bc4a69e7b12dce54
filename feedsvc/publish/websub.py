"""The outbox: notifications filled inside every write, and the sender that delivers them — WebSub
pings to hubs, and cache purges by surrogate key (feedsvc/publish/purge.py).

Every write transaction that changes feed scopes (import batch, API write, withdraw) inserts one
`websub_outbox` row per (hub, topic URL) and per (purge endpoint, surrogate key) in the same
transaction, so a committed change always has its notifications and a rolled-back one never does.
Senders (a daemon thread in each web worker, or `flask websub worker`) claim due rows of one
target with one conditional UPDATE, deliver them (a `hub.mode=publish` POST, a purge request) and
mark the rows sent, or push them back with exponential backoff. Rows stay until sent.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.config import ConfigError
from feedsvc.publish import purge
from feedsvc.publish.outbound import PublishError, post
from feedsvc.publish.process_loop import ProcessLoop
from feedsvc.render.feeds import feed_urls
from feedsvc.store import websub_outbox as outbox

log = logging.getLogger(__name__)

ERROR_MAX = 500
WEBSUB, PURGE = "websub", "purge"   # websub_outbox.kind
_WAKE_FLAG = "feedsvc.websub.enqueued"  # set in Connection.info by the listener, read at pool check-in


@dataclass(frozen=True)
class Settings:
    hubs: tuple[str, ...]
    site_url: str
    timeout: float
    topics_per_request: int
    retry_base: float
    retry_max: float
    poll: float
    lease: float
    keep_sent: timedelta
    purges: tuple[purge.Endpoint, ...] = ()

    @classmethod
    def from_config(cls, config) -> "Settings":
        timeout = float(config["WEBSUB_TIMEOUT"])
        return cls(
            hubs=tuple(dict.fromkeys(h.strip() for h in config["WEBSUB_HUBS"] if h.strip())),
            site_url=config["SITE_URL"], timeout=timeout,
            topics_per_request=max(1, int(config["WEBSUB_TOPICS_PER_REQUEST"])),
            retry_base=float(config["WEBSUB_RETRY_BASE_SECONDS"]),
            retry_max=float(config["WEBSUB_RETRY_MAX_SECONDS"]),
            poll=float(config["WEBSUB_POLL_SECONDS"]),
            # A claim must outlive the request it covers, or a second sender could resend it.
            lease=max(float(config["WEBSUB_LEASE_SECONDS"]), 3 * timeout),
            keep_sent=timedelta(days=int(config["WEBSUB_KEEP_SENT_DAYS"])),
            purges=purge.endpoints(config),
        )

    @property
    def targets(self) -> list[tuple[str, str]]:
        """(kind, target) of everything the outbox delivers to: hubs, then purge endpoints."""
        return [(WEBSUB, hub) for hub in self.hubs] + [(PURGE, e.target) for e in self.purges]


def topic_urls(site_url: str, scope: str) -> list[str]:
    """The topics of a scope: its first-page feed URLs in every format, exactly as each feed's rel="self"."""
    return list(feed_urls(scope, site_url).values())


# ---- filling the outbox ------------------------------------------------------------------------

_PUBLISHER = "feedsvc.websub"


def outbox_rows(settings: Settings, scopes: set[str], when: datetime, articles: AbstractSet[str] = frozenset()) -> list[dict]:
    """One outbox row per (hub, topic) of the changed scopes, and per (purge endpoint, key) of the
    changed scopes and articles."""
    rows = [(WEBSUB, hub, topic) for hub in settings.hubs for topic in _topics(settings.site_url, scopes)]
    if settings.purges:
        keys = purge.change_keys(scopes, articles)
        rows += [(PURGE, endpoint.target, key) for endpoint in settings.purges for key in keys]
    return [dict(kind=kind, hub_url=target, topic_url=item, created_at=when, next_attempt_at=when, attempts=0)
            for kind, target, item in rows]


def _topics(site_url: str, scopes: set[str]) -> list[str]:
    topics = []
    for scope in sorted(scopes):
        try:
            topics += topic_urls(site_url, scope)
        except ValueError:  # a scope no feed answers to; never a reason to fail the write
            log.warning("websub: no feed for scope %r; not notified", scope)
    return topics


def _wake_after_checkin(publisher: "Publisher"):
    def checkin(_dbapi_connection, record):
        # Check-in follows the commit (or rollback), so a woken sender sees the new rows.
        if record.info.pop(_WAKE_FLAG, False):
            publisher.wake()
    return checkin


def init_app(app: Flask, engine: Engine) -> "Publisher":
    """Fill the outbox inside every write through `engine` and start the sender lazily in each worker process."""
    mode = app.config["WEBSUB_SENDER"]
    if mode not in ("thread", "worker"):
        raise ConfigError(f"FEEDSVC_WEBSUB_SENDER: expected thread or worker, got {mode!r}")
    publisher = Publisher(engine, Settings.from_config(app.config))
    app.extensions[_PUBLISHER] = publisher
    if not publisher.settings.targets:
        return publisher
    store.changed.connect(publisher.enqueue, sender=engine)
    event.listen(engine, "checkin", _wake_after_checkin(publisher))
    if mode == "thread":
        # Started on a request, not here: threads do not survive gunicorn's fork of a preloaded app.
        app.before_request(publisher.ensure_started)
    return publisher


def publisher(app: Flask | None = None) -> "Publisher":
    """The WebSub publisher of `app` (by default the current one)."""
    return (app or current_app).extensions[_PUBLISHER]


# ---- talking to a hub --------------------------------------------------------------------------

def publish_form(topics: list[str]) -> list[tuple[str, str]]:
    """The form of a publish ping: hub.url repeated per topic (Google's hub, PubSubHubbub 0.3/0.4);
    a single topic is also sent as hub.topic, the name W3C WebSub hubs read."""
    form = [("hub.mode", "publish")] + [("hub.url", topic) for topic in topics]
    if len(topics) == 1:
        form.append(("hub.topic", topics[0]))
    return form


def post_publish(hub_url: str, topics: list[str], *, timeout: float, user_agent: str) -> None:
    """POST one publish ping; returns on any 2xx, raises PublishError otherwise."""
    post(hub_url, urlencode(publish_form(topics)).encode("ascii"),
         {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": user_agent}, timeout=timeout)


def retry_delay(attempts: int, base: float, cap: float, rand=random.random) -> float:
    """Exponential backoff with a cap and "equal jitter": half the step fixed, half random."""
    step = min(cap, base * 2 ** max(0, attempts - 1))
    return step / 2 + rand() * step / 2


# ---- sending -----------------------------------------------------------------------------------

@dataclass
class Claim:
    hub: str     # the target: a hub URL, or a purge endpoint's name
    token: str
    topics: list[str]  # feed URLs for a hub, surrogate keys for a purge endpoint
    attempts: int  # the highest attempt count among the claimed rows, this attempt included
    kind: str = WEBSUB


class Sender:
    """Claims due outbox rows and delivers them to their hubs and purge endpoints; safe to run in
    several processes at once."""

    def __init__(self, engine: Engine, settings: Settings, *, post=post_publish, clock=store.now_utc,
                 rand=random.random):
        self.engine, self.settings = engine, settings
        self.post, self.clock, self.rand = post, clock, rand
        self.user_agent = f"feedsvc-websub/1 (+{settings.site_url})"

    def send_due(self) -> int:
        """Send everything due now, target by target; returns how many requests were accepted."""
        accepted = 0
        for kind, target in self.settings.targets:
            # Bounded so one pass always ends; rows that fail move into the future and drop out.
            for _ in range(1000):
                claim = self.claim(target, kind)
                if claim is None:
                    break
                accepted += self.deliver(claim)
        return accepted

    def claim(self, hub: str, kind: str = WEBSUB) -> Claim | None:
        """Take the pending rows of up to N due topics (or keys) of a target, with one conditional UPDATE.

        Pending rows of the same topics ride along even when not yet due (they are covered by
        the same ping, since the hub fetches the feed as it is now); rows another sender holds
        (a claim token and a lease in the future) are never taken.
        """
        now, token = self.clock(), uuid.uuid4().hex
        due = outbox.alias("due")  # an alias, so the subquery is not correlated with the UPDATE's table
        due_topics = (select(due.c.topic_url)
                      .where(due.c.kind == kind, due.c.hub_url == hub, due.c.sent_at.is_(None),
                             due.c.next_attempt_at <= now)
                      .group_by(due.c.topic_url).order_by(func.min(due.c.id))
                      .limit(self.settings.topics_per_request))
        claim_rows = (update(outbox)
                      .where(outbox.c.kind == kind, outbox.c.hub_url == hub, outbox.c.topic_url.in_(due_topics),
                             outbox.c.sent_at.is_(None),
                             or_(outbox.c.next_attempt_at <= now, outbox.c.claim_token.is_(None)))
                      .values(claim_token=token, attempts=outbox.c.attempts + 1,
                              next_attempt_at=now + timedelta(seconds=self.settings.lease)))
        # On PostgreSQL a sender that loses the race for the same rows claims none of them; it tries again.
        for _ in range(3):
            with self.engine.begin() as conn:
                if conn.execute(claim_rows).rowcount:
                    rows = conn.execute(select(outbox.c.topic_url, func.max(outbox.c.attempts).label("attempts"))
                                        .where(outbox.c.claim_token == token)
                                        .group_by(outbox.c.topic_url).order_by(func.min(outbox.c.id))).all()
                    return Claim(hub, token, [r.topic_url for r in rows], max(r.attempts for r in rows), kind)
                if conn.execute(select(due_topics.exists())).scalar() is not True:
                    return None
        return None

    def deliver(self, claim: Claim) -> int:
        """Deliver a claim (a hub ping, a purge) and record the outcome; 1 if the far end accepted it."""
        try:
            if claim.kind == PURGE:
                self._purge_endpoint(claim.hub).send(claim.topics, self.settings.timeout, self.user_agent)
            else:
                self.post(claim.hub, claim.topics, timeout=self.settings.timeout, user_agent=self.user_agent)
        except Exception as exc:  # a broken hub or a bug in a test double must not stop the sender
            delay = retry_delay(claim.attempts, self.settings.retry_base, self.settings.retry_max, self.rand)
            message = str(exc) if isinstance(exc, PublishError) else f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s refused %d item(s), attempt %d (%s); next try in %.0fs",
                        claim.kind, claim.hub, len(claim.topics), claim.attempts, message, delay)
            with self.engine.begin() as conn:
                conn.execute(update(outbox).where(outbox.c.claim_token == claim.token).values(
                    claim_token=None, last_error=message[:ERROR_MAX],
                    next_attempt_at=self.clock() + timedelta(seconds=delay)))
            return 0
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.claim_token == claim.token)
                         .values(claim_token=None, sent_at=self.clock(), last_error=None))
        log.info("%s: %s accepted %d item(s)", claim.kind, claim.hub, len(claim.topics))
        return 1

    def _purge_endpoint(self, target: str) -> purge.Endpoint:
        return next(e for e in self.settings.purges if e.target == target)

    def purge_sent(self) -> int:
        """Forget rows sent longer ago than WEBSUB_KEEP_SENT_DAYS (they are kept for `websub status`)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(outbox).where(
                outbox.c.sent_at < self.clock() - self.settings.keep_sent)).rowcount


class Publisher(ProcessLoop):
    """The sender loop of one process: woken by local writes, polling for everyone else's."""

    PURGE_EVERY = 3600.0
    thread_name = "websub-sender"

    def __init__(self, engine: Engine, settings: Settings):
        super().__init__()
        self.engine, self.settings = engine, settings

    def sender(self) -> Sender:
        return Sender(self.engine, self.settings)

    def enqueue(self, _engine: Engine, *, conn, scopes: set[str], when: datetime,
                articles: AbstractSet[str] = frozenset()) -> None:
        """store.changed receiver: the outbox rows of the changed scopes and articles, in the write's own transaction."""
        rows = outbox_rows(self.settings, scopes, when, articles)
        if rows:
            conn.execute(insert(outbox), rows)
            conn.info[_WAKE_FLAG] = True

    def run(self, sender: Sender | None = None) -> None:
        """Send until stopped; a failing database or hub is logged and retried, never fatal."""
        sender = sender or self.sender()
        last_purge = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                sender.send_due()
                if time.monotonic() - last_purge > self.PURGE_EVERY:
                    sender.purge_sent()
                    last_purge = time.monotonic()
            except Exception:
                log.exception("websub: sender pass failed; retrying in %.1fs", self.settings.poll)
            self._wake.wait(self.settings.poll)


# ---- status ------------------------------------------------------------------------------------

@dataclass
class HubStatus:
    hub: str     # a hub URL or a purge endpoint's name
    configured: bool
    pending: int = 0
    failing: int = 0  # pending rows whose last attempt failed
    oldest_pending: datetime | None = None  # naive UTC
    next_attempt: datetime | None = None
    last_error: str | None = None
    sent_last_day: int = 0
    kind: str = WEBSUB


def hub_status(conn, targets, now: datetime) -> list[HubStatus]:
    """Pending and failing counts per (kind, target) (configured ones first, then any others with rows);
    `targets` is Settings.targets."""
    found = {(kind, target): HubStatus(target, True, kind=kind) for kind, target in targets}

    def status_of(row) -> HubStatus:
        return found.setdefault((row.kind, row.hub_url), HubStatus(row.hub_url, False, kind=row.kind))

    pending = conn.execute(
        select(outbox.c.kind, outbox.c.hub_url, func.count().label("n"),
               func.count(outbox.c.last_error).label("failing"),
               func.min(outbox.c.created_at).label("oldest"), func.min(outbox.c.next_attempt_at).label("next"))
        .where(outbox.c.sent_at.is_(None)).group_by(outbox.c.kind, outbox.c.hub_url))
    for row in pending:
        status = status_of(row)
        status.pending, status.failing = row.n, row.failing
        status.oldest_pending, status.next_attempt = row.oldest, row.next
    for (kind, target), status in found.items():
        if status.failing:
            status.last_error = conn.execute(
                select(outbox.c.last_error).where(outbox.c.kind == kind, outbox.c.hub_url == target,
                                                  outbox.c.sent_at.is_(None), outbox.c.last_error.is_not(None))
                .order_by(outbox.c.next_attempt_at.desc()).limit(1)).scalar()
    sent = conn.execute(select(outbox.c.kind, outbox.c.hub_url, func.count().label("n"))
                        .where(outbox.c.sent_at >= now - timedelta(days=1)).group_by(outbox.c.kind, outbox.c.hub_url))
    for row in sent:
        status_of(row).sent_last_day = row.n
    return list(found.values())


# ---- commands ----------------------------------------------------------------------------------

@click.group("websub")
def websub_cli():
    """The outbox of hub notifications and cache purges, and its sender."""


def _when(then: datetime, now: datetime) -> str:
    """"2025-08-01 09:15:00Z (5m ago)" or "... (in 30s)"."""
    seconds = int((now - then).total_seconds())
    size = abs(seconds)
    span = f"{size}s" if size < 120 else f"{size // 60}m" if size < 7200 else f"{size // 3600}h"
    return f"{then:%Y-%m-%d %H:%M:%S}Z ({span} ago)" if seconds >= 0 else f"{then:%Y-%m-%d %H:%M:%S}Z (in {span})"


@websub_cli.command("status")
@with_appcontext
def status_command():
    """Pending and failing notifications per hub and purge endpoint, the oldest pending one and the last error."""
    app_publisher = publisher()
    now = store.now_utc()
    with app_publisher.engine.connect() as conn:
        rows = hub_status(conn, app_publisher.settings.targets, now)
    if not rows:
        click.echo("no hubs (FEEDSVC_WEBSUB_HUBS) or purge endpoints (FEEDSVC_PURGE_*) configured "
                   "and nothing in the outbox")
        return
    mode = current_app.config["WEBSUB_SENDER"]
    click.echo(f"sender: {mode} ({'a thread in each web worker' if mode == 'thread' else 'flask websub worker only'})")
    for row in rows:
        label = row.hub if row.kind == WEBSUB else f"purge {row.hub}"
        click.echo(f"{label}{'' if row.configured else '  (no longer configured: not sent)'}")
        click.echo(f"  pending {row.pending}, failing {row.failing}, sent in the last 24h {row.sent_last_day}")
        if row.pending:
            click.echo(f"  oldest pending {_when(row.oldest_pending, now)}; "
                       f"next attempt {_when(row.next_attempt, now)}")
        if row.last_error:
            click.echo(f"  last error: {row.last_error}")


@websub_cli.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now and exit (for cron or a check).")
@with_appcontext
def worker_command(once):
    """Send hub notifications from the outbox until stopped (Ctrl-C / SIGTERM)."""
    app_publisher = publisher()
    if not app_publisher.settings.targets:
        click.echo("no hubs (FEEDSVC_WEBSUB_HUBS) or purge endpoints (FEEDSVC_PURGE_*) configured; nothing to send",
                   err=True)
        return
    if once:
        click.echo(f"hubs accepted {app_publisher.sender().send_due()} request(s)")
        return
    targets = ", ".join(t for _, t in app_publisher.settings.targets)
    click.echo(f"sending to {targets}; polling every {app_publisher.settings.poll:g}s",
               err=True)
    app_publisher.run_until_terminated()
    click.echo("stopped", err=True)
