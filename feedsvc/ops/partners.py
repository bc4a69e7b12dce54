"""Partner keys and partner usage: keys are shown once and stored only as SHA-256; usage is counted per day.

A key looks like `fsk_<43 url-safe characters>` (32 random bytes). The fixed prefix makes a leaked key
easy to recognise, in a log line as much as by a secret scanner, and lets `redact` find keys in text.
No HTTP here: the partner feed views call these functions; the `flask partners` commands sit at the end.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from feedsvc import store
from feedsvc.store import now_utc, partner_usage, partners
from feedsvc.web import db

KEY_PREFIX = "fsk_"
KEY_PATTERN = re.compile(r"fsk_[A-Za-z0-9_-]{43}")
# Anything in the key slot of a partner feed path, even a malformed key, is a secret someone typed.
_PATH_KEY = re.compile(r"(/partner/)[^/?#\s\"']+(/feeds)")
REDACTED = "[redacted]"
NAME_MAX = 200       # partners.name
FEED_NAME_MAX = 300  # partner_usage.feed


class PartnerError(ValueError):
    """A partner command that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    created_at: datetime  # naive UTC
    revoked_at: datetime | None
    profile: str | None = None  # the aggregator profile its feeds follow (feedsvc/profiles)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Usage:
    partner: str
    day: date
    feed: str
    requests: int
    not_modified: int
    bytes: int = 0


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _partner(row) -> Partner:
    return Partner(row.id, row.name, row.created_at, row.revoked_at, row.profile)


def add(conn: Connection, name: str, profile: str | None = None,
        known_profiles: tuple[str, ...] | None = None) -> tuple[Partner, str]:
    """Create a partner (its feeds following `profile`, one of `known_profiles`); returns it with its
    key, which exists nowhere else from then on."""
    name = name.strip()
    if profile is not None and known_profiles is not None and profile not in known_profiles:
        raise PartnerError(f"no feed profile named '{profile}'; the profiles are {', '.join(sorted(known_profiles))}")
    if not name or len(name) > NAME_MAX:
        raise PartnerError(f"a partner needs a name of 1 to {NAME_MAX} characters")
    if conn.execute(select(partners.c.id).where(partners.c.name == name)).first():
        raise PartnerError(f"a partner named '{name}' already exists (revoke it and add another name to re-key)")
    key = new_key()
    try:
        result = conn.execute(partners.insert().values(name=name, key_hash=key_digest(key), created_at=now_utc(),
                                                       profile=profile))
    except IntegrityError:  # another process added the same name at the same moment
        raise PartnerError(f"a partner named '{name}' already exists") from None
    # SQLAlchemy types inserted_primary_key Optional (None for a statement that inserts nothing).
    return _read_back(conn, result.inserted_primary_key[0]), key  # type: ignore[index]


def _read_back(conn: Connection, partner_id: int) -> Partner:
    """A partner this transaction has just written or read: its row is there (one(), not by_id's None)."""
    return _partner(conn.execute(select(partners).where(partners.c.id == partner_id)).one())


def by_id(conn: Connection, partner_id: int) -> Partner | None:
    row = conn.execute(select(partners).where(partners.c.id == partner_id)).first()
    return _partner(row) if row else None


def by_key(conn: Connection, key: str) -> Partner | None:
    """The partner a presented key belongs to (revoked or not), or None.

    The lookup goes through the unique index on the key's SHA-256: an attacker cannot steer the bytes
    of that digest, so how long the lookup takes says nothing about any stored key. The final equality
    is checked with hmac.compare_digest all the same.
    """
    if not KEY_PATTERN.fullmatch(key):
        return None
    digest = key_digest(key)
    row = conn.execute(select(partners).where(partners.c.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return _partner(row)


def all_partners(conn: Connection) -> list[Partner]:
    return [_partner(r) for r in conn.execute(select(partners).order_by(partners.c.name))]


def revoke(conn: Connection, name: str) -> Partner:
    """Revoke a partner's key from now on, in every process (keys are checked against the store per request)."""
    row = conn.execute(select(partners).where(partners.c.name == name)).first()
    if row is None:
        raise PartnerError(f"no partner named '{name}'")
    if row.revoked_at is None:
        conn.execute(update(partners).where(partners.c.id == row.id).values(revoked_at=now_utc()))
    return _read_back(conn, row.id)


# ---- usage ---------------------------------------------------------------------------------------

# Requests are counted in memory and written in batches with the desk's counts
# (feedsvc/ops/desk_counters.py, DeskCounters.count_partner): no write per request.

def usage_day(when: datetime, tz_name: str) -> date:
    """The publication's calendar day (TIMEZONE) of an aware time: the day partners and the newsroom mean."""
    return when.astimezone(ZoneInfo(tz_name)).date()


def usage(conn: Connection, since: date | None = None, partner: str | None = None) -> list[Usage]:
    """Usage rows, newest day first, then partner and feed."""
    q = (select(partners.c.name, partner_usage.c.day, partner_usage.c.feed, partner_usage.c.requests,
                partner_usage.c.not_modified, partner_usage.c.bytes)
         .join(partners, partners.c.id == partner_usage.c.partner_id))
    if since is not None:
        q = q.where(partner_usage.c.day >= since)
    if partner is not None:
        q = q.where(partners.c.name == partner)
    q = q.order_by(partner_usage.c.day.desc(), partners.c.name, partner_usage.c.feed)
    return [Usage(r.name, r.day, r.feed, r.requests, r.not_modified, r.bytes) for r in conn.execute(q)]


def usage_totals(conn: Connection) -> dict[str, tuple[int, int]]:
    """Partner name -> (requests, 304s) over all days, for `partners list`."""
    q = (select(partners.c.name, func.sum(partner_usage.c.requests), func.sum(partner_usage.c.not_modified))
         .join(partners, partners.c.id == partner_usage.c.partner_id).group_by(partners.c.name))
    return {name: (int(r or 0), int(n or 0)) for name, r, n in conn.execute(q)}


# ---- keeping keys out of logs ---------------------------------------------------------------------

def redact(text: str) -> str:
    """Text with every partner key, and whatever sits in the key slot of a partner feed path, replaced."""
    if KEY_PREFIX not in text and "/partner/" not in text:   # neither pattern can match: 0.1 µs, not 1.4
        return text
    return KEY_PATTERN.sub(REDACTED, _PATH_KEY.sub(rf"\g<1>{REDACTED}\g<2>", text))


class RedactKeys(logging.Filter):
    """Rewrites a log record so no partner key reaches a handler, whatever carried it.

    Access logs (werkzeug's, gunicorn's) print the request line, and a partner feed URL may carry a key;
    a key could also hide inside a non-string argument (a tuple printed with %r) or an exception's text.
    So the message is formatted here, redacted, and passed on without arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


# The loggers that print request paths: the development server, gunicorn, our access log (which redacts
# on its own too), and Flask's "Exception on <path>" (app.logger).
REDACTED_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "feedsvc.access")


def install_log_redaction(app) -> None:
    """Attach the filter to every logger that prints request paths (once per logger)."""
    for logger in [logging.getLogger(name) for name in REDACTED_LOGGERS] + [app.logger]:
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())


# ---- `flask partners ...` -----------------------------------------------------------------------

cli = AppGroup("partners", help="Partner keys for full-text feeds, and their usage.")


def _engine():
    engine = db.engine()
    store.migrate(engine)
    return engine


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@cli.command("add")
@click.argument("name")
@click.option("--profile", default=None, help="An aggregator profile (see /feeds/profiles) its feeds follow.")
def add_command(name, profile):
    """Create a partner and print its key (on stdout, once: only its SHA-256 is kept)."""
    from feedsvc.web.profile_feeds import all_profiles
    try:
        with _engine().begin() as conn:
            partner, key = add(conn, name, profile, tuple(all_profiles()))
    except PartnerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"partner '{partner.name}' added; its key follows. It is shown only now: hand it to the "
               "partner over a private channel.", err=True)
    click.echo(key)


@cli.command("list")
def list_command():
    """Every partner: active or revoked, created, requests and 304s so far."""
    with _engine().connect() as conn:
        found, totals = all_partners(conn), usage_totals(conn)
    if not found:
        click.echo("no partners yet (add one with `partners add NAME`)")
        return
    click.echo(f"{'name':30} {'status':28} {'profile':12} {'created':22} {'requests':>9} {'304s':>9}")
    for p in found:
        status = "active" if p.active else f"revoked {_when(p.revoked_at)}"
        requests, not_modified = totals.get(p.name, (0, 0))
        click.echo(f"{p.name:30} {status:28} {p.profile or '-':12} {_when(p.created_at):22} {requests:>9} "
                   f"{not_modified:>9}")


@cli.command("revoke")
@click.argument("name")
def revoke_command(name):
    """Revoke a partner's key; its requests are refused (403) from the next one on."""
    try:
        with _engine().begin() as conn:
            partner = revoke(conn, name)
    except PartnerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"partner '{partner.name}' revoked at {_when(partner.revoked_at)}")


@cli.command("usage")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Only the last N days.")
@click.option("--partner", "partner_name", default=None, help="Only this partner.")
def usage_command(days, partner_name):
    """Requests, 304s and bytes per partner, feed and day (days in the publication's TIMEZONE)."""
    from feedsvc.ops import desk_counters
    desk_counters.counters(current_app).flush()   # this process's counts too, not only those written
    since = None
    if days:
        today = usage_day(datetime.now(timezone.utc), current_app.config["TIMEZONE"])
        since = today - timedelta(days=days - 1)
    with _engine().connect() as conn:
        rows = usage(conn, since=since, partner=partner_name)
    if not rows:
        click.echo("no partner requests recorded")
        return
    click.echo(f"{'day':10} {'partner':24} {'feed':44} {'bytes':>12} {'requests':>9} {'304s':>9}")
    for u in rows:
        click.echo(f"{u.day.isoformat():10} {u.partner:24} {u.feed:44} {u.bytes:>12} {u.requests:>9} "
                   f"{u.not_modified:>9}")
