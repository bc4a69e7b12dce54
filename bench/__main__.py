"""`python -m bench` (`make bench`): every row of the performance table, measured in one run.

`--list` names every row; `--only ROW[,ROW...]` measures just the steps holding those rows (a row
is always measured with its baselines, side by side); `--json FILE` writes the rows as JSON (`make
bench` writes bench/results/last-run.json, from which `python -m bench.readme` makes the README's
performance block). The table goes to stdout, progress to stderr.

Loopback only, bounded (fixed wrk durations and write counts), stops by itself; never part of the
test suite. Environment: BENCH_ROWS (default 1,000,000: the big database, built once and kept in
bench/out/), BENCH_IMPORT_ROWS (5,000), BENCH_REPEATS (5), BENCH_POSTGRESQL_URL
(postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from . import load, results, scale, stats
from .stats import Table
from .steps import STEPS, Run, UnknownRows, select, servers_missing


def row_names(ctx, param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    try:
        select(names)
    except UnknownRows as error:
        raise click.BadParameter(str(error)) from None
    return names


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--list", "list_rows", is_flag=True, help="Name every row, with what it measures, and exit.")
@click.option("--only", callback=row_names, metavar="ROW[,ROW...]",
              help="Measure only the steps holding these rows; write only these rows (and machine-noise).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the rows as JSON to FILE (make bench: bench/results/last-run.json).")
def main(list_rows: bool, only: list[str] | None, json_path: Path | None) -> None:
    """Measure feedsvc against baselines in the same run and print the table."""
    if list_rows:
        for step in STEPS:
            for name, description in step.rows.items():
                click.echo(f"{name:32} {description}")
        return
    steps = select(only)
    if servers_missing(steps):
        raise click.ClickException("these rows need wrk and nginx: run `make bench-deps` (Debian packages wrk, nginx)")
    repeats = int(os.environ.get("BENCH_REPEATS", stats.REPEATS))
    run, table = Run(repeats, load.rows_wanted()), Table()
    started, load_before = time.perf_counter(), os.getloadavg()
    failures = []
    for step in steps:
        click.echo(f"== {step.title}", err=True)
        failure = step.run(table, run)
        if failure is not None:
            failures.append(failure)
    run.facts["bench_out_gb"] = round(results.disk_use(load.OUT) / 1e9, 1)
    settings = {"BENCH_ROWS": run.rows, "BENCH_IMPORT_ROWS": scale.IMPORT_ROWS, "BENCH_REPEATS": repeats}
    document = results.document(table, only=only, settings=settings, machine_line=results.machine(load_before),
                                seconds=time.perf_counter() - started, facts=run.facts, plans=run.plans,
                                failed=[failure.as_json() for failure in failures])
    click.echo(render(document, table))
    if json_path is not None:
        results.write(json_path, document)
        click.echo(f"rows written to {json_path}", err=True)
    if failures:
        raise click.ClickException(f"{len(failures)} step(s) failed, their rows not measured: "
                                   + "; ".join(f"{f.step} ({f.error})" for f in failures))


def render(document: dict, table: Table) -> str:
    shown = Table([row for row in table.rows if any(row.name == r["name"] for r in document["rows"])])
    missed = [r for r in document["rows"] if r["met"] is False]
    noise = next(row for row in table.rows if row.name == "machine-noise").sample
    lines = [
        f"feedsvc bench — {document['date']} — {document['machine']}, {document['minutes']} min",
        "",
        shown.render(),
        "",
        f"Targets met: {sum(r['met'] is True for r in document['rows'])}; missed: {len(missed)}"
        + (" — " + "; ".join(f"{r['name']} ({r['target']})" for r in missed) if missed else ""),
        f"Machine noise: the same work took {noise.range_text()} ms (median {noise.median:.1f} ms, "
        f"spread {noise.spread:.0%}); rows whose spread is larger than that were disturbed while measured.",
    ]
    facts = document["facts"]
    if "body_kib" in facts:
        lines.append("Corpus: article bodies average {:.1f} KiB; gzip -6 shrinks a body alone to {:.2f} of its size"
                     .format(facts["body_kib"], facts["body_gzip_ratio"])
                     + "".join(f", the {n}-item RSS to {facts[f'rss_{n}_gzip_ratio']:.2f}" for n in (50, 500)
                               if f"rss_{n}_gzip_ratio" in facts) + ".")
    for failure in document["failed"]:
        lines.append(f"FAILED: {failure['step']} ({failure['error']}): not measured: {', '.join(failure['rows'])}")
    if document["plans"]:
        lines += ["", "Query plans:", *document["plans"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main(prog_name="python -m bench")
