"""The app's database: its engine, the connection of a request (opened on first use, closed at
teardown), and the commands that fill and change it, `flask init-db`, `flask import-articles`,
`flask rename-scope` and `flask media backfill`."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from flask import Flask, current_app, g
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.engine import Connection, Engine

from feedsvc import store
from feedsvc.ingest import backfill, images, importer, rename

_ENGINE = "feedsvc.engine"


def init_app(app: Flask) -> Engine:
    """Give the app its engine (one per app, pooled) and close each request's connection at teardown."""
    config = app.config
    pool = {} if config["DATABASE_URL"].startswith("sqlite") else {
        "pool_size": config["DATABASE_POOL_SIZE"], "max_overflow": config["DATABASE_MAX_OVERFLOW"]}
    app.extensions[_ENGINE] = store.make_engine(config["DATABASE_URL"], lock_timeout=config["DATABASE_TIMEOUT"],
                                                prepared_statements=config["DATABASE_PREPARED_STATEMENTS"],
                                                sqlite_cache_kib=config["DATABASE_SQLITE_CACHE_KIB"], **pool)
    app.teardown_appcontext(close_connection)
    return app.extensions[_ENGINE]


def engine(app: Flask | None = None) -> Engine:
    """The engine of `app` (by default the current one)."""
    return (app or current_app).extensions[_ENGINE]


def connection() -> Connection:
    if "db" not in g:
        g.db = engine().connect()
    return g.db


def close_connection(_exc=None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


@contextmanager
def changes_through(other: Engine, app: Flask | None = None) -> Iterator[None]:
    """While inside, writes through `other` (an engine of its own, as an import has) are heard by the
    app's `store.changed` receivers as writes through the app's engine are: hubs get their outbox
    rows, the app's change counters are forgotten."""
    own = engine(app)

    def relay(_sender, **change) -> None:
        store.changed.send(own, **change)

    with store.changed.connected_to(relay, sender=other):
        yield


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or upgrade the database schema (Alembic migrations)."""
    store.migrate(engine())
    from feedsvc.web import id_authority  # it uses this module's engine
    click.echo(f"schema up to date: {engine().url.render_as_string(hide_password=True)}; "
               f"ids minted under {id_authority.fix(current_app._get_current_object())}")


@click.command("import-articles")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@with_appcontext
def import_articles_command(paths):
    """Validate and upsert article records from .json/.jsonl files and folders.

    Every good record is stored; every bad one is reported with its file, field and reason, and
    the command then exits 1. Running it twice changes nothing.
    """
    import_engine = importer.import_engine(current_app.config["DATABASE_URL"])
    store.migrate(import_engine)
    files = importer.source_files(paths)
    total = sum(p.stat().st_size for p in files)
    bar = click.progressbar(length=total, label="importing", file=sys.stderr,
                            show_pos=False, show_percent=True, show_eta=True)
    with changes_through(import_engine), bar:
        report = importer.import_files(import_engine, files, site_url=current_app.config["SITE_URL"],
                                       site_name=current_app.config["SITE_NAME"], progress=bar.update,
                                       frame_hosts=current_app.config["FRAME_HOSTS"],
                                       images=images.settings_from(current_app.config))
    for line in report.stale:
        click.echo(f"skipped {line}", err=True)
    for line in report.warnings:
        click.echo(f"warning {line}", err=True)
    for err in report.errors:
        for problem in err.problems:
            click.echo(f"rejected {err.source}: {problem.field}: {problem.reason}", err=True)
    click.echo(f"stored {report.stored} (created {report.created}, updated {report.updated}), "
               f"unchanged {report.unchanged}, skipped {len(report.stale)} older than stored, "
               f"rejected {len(report.errors)}")
    if report.errors:
        sys.exit(1)


@click.command("rename-scope")
@click.argument("kind", type=click.Choice(list(store.SCOPE_KINDS)))
@click.argument("old_key")
@click.argument("new_key")
@click.option("--name", help="The new display name (default: the new key's scope's name if it has one, else the old).")
@with_appcontext
def rename_scope_command(kind, old_key, new_key, name):
    """Rename a section, tag or author key: every article moves to NEW_KEY in one transaction, and the
    old key's feeds (every format, partner and profile feeds) and listing answer 301 to the new ones.

    Records sent later with OLD_KEY make that scope anew (it then wins over the redirect): change the
    key in the CMS too.
    """
    try:
        with engine().begin() as conn:
            result = rename.rename_scope(conn, kind, old_key, new_key, name=name,
                                         site_name=current_app.config["SITE_NAME"])
    except (rename.BadRename, rename.UnknownScope) as exc:
        raise click.ClickException(str(exc)) from None
    merged = " (merged into the existing scope)" if result.merged else ""
    click.echo(f"{kind} {old_key} -> {new_key}{merged}: {result.articles} articles rewritten; "
               f"the old URLs answer 301")


media_cli = AppGroup("media", help="Article images stored before ingest probed them.")


@media_cli.command("backfill")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes that probe images and make renditions (default: one per core, at most 4; 0: none).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the walk keeps its place between runs (default: one file per database in the instance folder).")
@click.option("--restart", is_flag=True, help="Walk from the first article, whatever the state file says.")
@with_appcontext
def media_backfill_command(workers, state_path, restart):
    """Probe the local images (lead and body) of every stored article and make their missing renditions.

    An article is rewritten only when what it shows changes (a size corrected, a refused file or its
    empty figure removed, renditions added); its `updated` date stays. A killed run resumes where it
    stopped; a second run writes nothing. Every article that could not be made right is listed with
    its id, the file and why, and the command then exits 1.
    """
    config = current_app.config
    settings = images.settings_from(config)
    write_engine = importer.import_engine(config["DATABASE_URL"])
    database = write_engine.url.render_as_string(hide_password=True)
    state = backfill.ProgressFile(state_path or backfill.default_state_path(Path(current_app.instance_path), database),
                                  database, settings)
    after = None if restart else state.resume_point()
    total = backfill.remaining(write_engine, after)
    if after is not None:
        click.echo(f"resuming after article {after} ({state.path}); --restart walks from the first", err=True)
    bar = click.progressbar(length=total, label="checking images", file=sys.stderr, show_pos=True, show_eta=True)
    # Over the bar's line on a terminal (it is drawn again on its next step); plain lines in a file.
    over_bar = "\r\033[K" if sys.stderr.isatty() else ""

    def tell(kind: str, finding: backfill.ArticleFinding) -> None:
        click.echo(f"{over_bar}{kind} {finding}", err=True)

    with changes_through(write_engine), bar:
        report = backfill.backfill(write_engine, site_url=config["SITE_URL"], site_name=config["SITE_NAME"],
                                   images=settings, progress_file=state, progress=bar.update, tell=tell, after=after,
                                   workers=importer.default_workers(total >= backfill.PARALLEL_MIN_ARTICLES)
                                   if workers is None else workers)
    click.echo(f"checked {report.checked}, rewritten {len(report.rewritten)}, skipped {len(report.skipped)} "
               f"written meanwhile, {len(report.problems)} problems")
    if report.problems:
        sys.exit(1)
