"""Flask CLI commands that drive the store: init-db, import-articles, generate-articles."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from feedsvc import store
from feedsvc.ingest import importer


def _engine():
    return current_app.extensions["feedsvc.engine"]


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or upgrade the database schema (Alembic migrations)."""
    store.migrate(_engine())
    click.echo(f"schema up to date: {_engine().url.render_as_string(hide_password=True)}")


@click.command("import-articles")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@with_appcontext
def import_articles_command(paths):
    """Validate and upsert article records from .json/.jsonl files and folders.

    Every good record is stored; every bad one is reported with its file, field and reason, and
    the command then exits 1. Running it twice changes nothing.
    """
    engine = importer.import_engine(current_app.config["DATABASE_URL"])
    store.migrate(engine)
    files = importer.source_files(paths)
    total = sum(p.stat().st_size for p in files)
    with click.progressbar(length=total, label="importing", file=sys.stderr,
                           show_pos=False, show_percent=True, show_eta=True) as bar:
        report = importer.import_files(engine, files, site_url=current_app.config["SITE_URL"],
                                     site_name=current_app.config["SITE_NAME"], progress=bar.update)
    for line in report.stale:
        click.echo(f"skipped {line}", err=True)
    for err in report.errors:
        for problem in err.problems:
            click.echo(f"rejected {err.source}: {problem.field}: {problem.reason}", err=True)
    click.echo(f"stored {report.stored} (created {report.created}, updated {report.updated}), "
               f"unchanged {report.unchanged}, skipped {len(report.stale)} older than stored, "
               f"rejected {len(report.errors)}")
    if report.errors:
        sys.exit(1)


@click.command("generate-articles")
@click.argument("count", type=click.IntRange(min=1))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="JSON Lines file to write (replaced if it exists).")
@click.option("--seed", default=0, show_default=True, help="Same seed, same records.")
def generate_articles_command(count, out, seed):
    """Write COUNT synthetic Hindi news records (bench/synth.py) as JSON Lines, for benchmarks."""
    from bench import synth
    synth.write_jsonl(out, count, seed=seed, show_progress=True)
    click.echo(f"wrote {count} records to {out}")


def register(app) -> None:
    from feedsvc.ops import partners
    for command in (init_db_command, import_articles_command, generate_articles_command, partners.cli):
        app.cli.add_command(command)
    from feedsvc.publish.websub import websub_cli
    app.cli.add_command(websub_cli)
    from feedsvc.publish.mirror import export_command
    app.cli.add_command(export_command)
    from feedsvc.validate import validate_command
    app.cli.add_command(validate_command)
