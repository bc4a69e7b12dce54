"""Scheduled publication: articles stored SCHEDULED (embargoed) go live at their `visible_from`.

The schedule is the articles table itself (status SCHEDULED, `visible_from`, indexed), so a restart
or a crash loses nothing: the first pass after a start fires whatever fell due meanwhile. Making
one article live is one transaction: a conditional UPDATE (still SCHEDULED, at the version read)
that only one process can win, its tag and author rows, and store.record_changes, so the render
caches, the mirror's --watch and the WebSub outbox follow exactly as for any other write, once.

Each web worker runs a daemon thread (started on its first request, like the WebSub sender) that
sleeps until the next due instant, or `SCHEDULE_POLL_SECONDS` for those scheduled by other
processes; `flask schedule run` does the same outside the web workers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.config import ConfigError
from feedsvc.ingest.records import article_from_json, article_to_json
from feedsvc.publish.process_loop import ProcessLoop
from feedsvc.store import LIVE, SCHEDULED, article_authors, article_tags, articles

log = logging.getLogger(__name__)

_EXTENSION = "feedsvc.schedule"
BATCH = 100  # articles made live per query; a pass goes on until none is due


@dataclass(frozen=True)
class Settings:
    site_name: str
    poll: float   # longest wait before looking for articles scheduled by other processes
    idle: float   # the same while none at all is scheduled

    @classmethod
    def from_config(cls, config) -> "Settings":
        poll = float(config["SCHEDULE_POLL_SECONDS"])
        return cls(site_name=config["SITE_NAME"], poll=poll, idle=max(poll, float(config["SCHEDULE_IDLE_SECONDS"])))


class Scheduler(ProcessLoop):
    """Makes due SCHEDULED articles live; safe to run in any number of processes at once."""

    thread_name = "schedule"

    def __init__(self, engine: Engine, settings: Settings, *, clock=store.now_utc):
        super().__init__()
        self.engine, self.settings, self.clock = engine, settings, clock

    # ---- one pass ------------------------------------------------------------------------------

    def fire_due(self) -> list[str]:
        """Make every article due by now live; returns the ids this process made live."""
        fired = []
        while True:
            now = self.clock()
            with self.engine.connect() as conn:
                due = conn.execute(select(articles.c.id, articles.c.version, articles.c.article)
                                   .where(articles.c.status == SCHEDULED, articles.c.visible_from <= now)
                                   .order_by(articles.c.visible_from, articles.c.id).limit(BATCH)).all()
            fired += [row.id for row in due if self._make_live(row, now)]
            if len(due) < BATCH:
                return fired

    def _make_live(self, row, now: datetime) -> bool:
        """One article live, its scopes bumped, in one transaction; False if another process did it first."""
        article = article_from_json(row.article)
        article.status = LIVE
        with self.engine.begin() as conn:
            done = conn.execute(update(articles).where(articles.c.id == row.id, articles.c.version == row.version,
                                                       articles.c.status == SCHEDULED)
                                .values(status=LIVE, visible_from=None, withdrawn_at=None, modified_at=now,
                                        version=row.version + 1, article=article_to_json(article)))
            if done.rowcount != 1:
                return False
            for table in (article_tags, article_authors):
                conn.execute(update(table).where(table.c.article_id == row.id).values(status=LIVE))
            store.record_changes(conn, store.article_scopes(article, self.settings.site_name), now)
        log.info("schedule: %s is live (due %s)", row.id, article.visible_from.isoformat())
        return True

    def next_due(self) -> datetime | None:
        """The earliest `visible_from` (naive UTC) of a scheduled article, if any."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(articles.c.visible_from))
                                .where(articles.c.status == SCHEDULED)).scalar()

    def seconds_to_wait(self) -> float:
        due = self.next_due()
        if due is None:
            return self.settings.idle
        return min(max((due - self.clock()).total_seconds(), 0.0), self.settings.poll)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Fire due articles until stopped; a failing database is logged and retried, never fatal."""
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.fire_due()
                wait, failures = self.seconds_to_wait(), 0
            except Exception:
                # Backing off to the idle interval: a store that stays down is not logged every second.
                failures += 1
                wait = min(self.settings.poll * 2 ** (failures - 1), self.settings.idle)
                log.exception("schedule: pass failed; retrying in %.1fs", wait)
            self._wake.wait(wait)


def _wake_after_checkin(scheduler: Scheduler):
    def checkin(_dbapi_connection, record):
        # Check-in follows the commit, so the woken loop sees the newly scheduled article.
        if record.info.pop(store.SCHEDULE_CHANGED, False):
            scheduler.wake()
    return checkin


def init_app(app: Flask, engine: Engine) -> Scheduler:
    """The scheduler of `app`: woken by this process's scheduling writes, started on the first request."""
    mode = app.config["SCHEDULER"]
    if mode not in ("thread", "worker"):
        raise ConfigError(f"FEEDSVC_SCHEDULER: expected thread or worker, got {mode!r}")
    scheduler = Scheduler(engine, Settings.from_config(app.config))
    app.extensions[_EXTENSION] = scheduler
    event.listen(engine, "checkin", _wake_after_checkin(scheduler))
    if mode == "thread":
        # Started on a request, not here: threads do not survive gunicorn's fork of a preloaded app.
        app.before_request(scheduler.ensure_started)
    return scheduler


def scheduler(app: Flask | None = None) -> Scheduler:
    """The scheduler of `app` (by default the current one)."""
    return (app or current_app).extensions[_EXTENSION]


# ---- commands ----------------------------------------------------------------------------------

@click.group("schedule")
def schedule_cli():
    """Scheduled (embargoed) articles and the loop that makes them live."""


@schedule_cli.command("status")
@with_appcontext
def status_command():
    """The scheduled articles, soonest first."""
    with scheduler().engine.connect() as conn:
        rows = conn.execute(select(articles.c.id, articles.c.visible_from).where(articles.c.status == SCHEDULED)
                            .order_by(articles.c.visible_from, articles.c.id)).all()
    if not rows:
        click.echo("nothing scheduled")
    for row in rows:
        click.echo(f"{row.visible_from:%Y-%m-%d %H:%M:%S}Z  {row.id}")


@schedule_cli.command("run")
@click.option("--once", is_flag=True, help="Make live what is due now and exit (for cron or a check).")
@with_appcontext
def run_command(once):
    """Make scheduled articles live at their time until stopped (Ctrl-C / SIGTERM)."""
    app_scheduler = scheduler()
    if once:
        click.echo(f"made live: {len(app_scheduler.fire_due())}")
        return
    app_scheduler.run_until_terminated()
    click.echo("stopped", err=True)
