"""`python -m bench.readme [--check]`: the README's performance block, made from the last run's JSON.

Replaces what lies between `<!-- bench:start -->` and `<!-- bench:end -->` in README.md with the
rows that have a target, from bench/results/last-run.json (which `make bench` writes), so the
README's figures are never typed by hand. `--check` changes nothing and exits 1 when the block
is not what the JSON makes.
"""
from __future__ import annotations

from pathlib import Path

import click

from . import results
from .load import ROOT
from .stats import fmt

README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


class ReadmeError(ValueError):
    pass


def figure(row: dict) -> str:
    if row["value"] is None:
        return ""
    statistic = "" if row["statistic"] == "median" else f"{row['statistic']} "
    return f"{statistic}{fmt(row['value'])} {row['unit']}"


def cost(run: dict) -> str:
    """What the run took: its minutes and the disk bench/out/ held after it (a run before these were
    recorded says nothing)."""
    parts = [f"{run['minutes']:g} min" if run.get("minutes") is not None else "",
             f"bench/out/ holding {run['facts']['bench_out_gb']:g} GB after it"
             if run.get("facts", {}).get("bench_out_gb") is not None else ""]
    said = ", ".join(part for part in parts if part)
    return f"{said}; " if said else ""


def block(run: dict) -> str:
    """The generated text between the markers (the markers excluded)."""
    if run.get("only"):
        raise ReadmeError(f"the results hold a partial run (--only {','.join(run['only'])}): run `make bench`")
    if run.get("failed"):
        raise ReadmeError("the results hold a partial run (steps failed: "
                          + "; ".join(f"{f['step']}: {f['error']}" for f in run["failed"]) + "): run `make bench`")
    rows = [row for row in run["rows"] if row["target"]]
    met = sum(row["met"] is True for row in rows)
    lines = [
        "<!-- made by `python -m bench.readme` from bench/results/last-run.json: edit neither by hand -->",
        f"Last run: {run['date']}, {run['machine']}; BENCH_ROWS {run['settings']['BENCH_ROWS']:,}; "
        f"{cost(run)}{met} of {len(rows)} targets met. Source: {run['source']}.",
        "",
        "| row | measured | figure | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            lines.append(f"| **{section}** | | | | | |")
        ratio = f"{row['ratio']:.2f}× {row['baseline']}" if row["ratio"] is not None else ""
        met_text = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        what = row["what"] + (f" ({row['note']})" if row["note"] else "")
        lines.append(f"| `{row['name']}` | {what} | {figure(row)} | {ratio} | {row['target']} | {met_text} |")
    lines += ["", f"Every row, baselines, repeats and spreads included: `bench/results/last-run.json` "
              f"({len(run['rows'])} rows)."]
    return "\n".join(lines)


def replaced(readme: str, generated: str) -> str:
    """`readme` with the text between the markers replaced by `generated`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ReadmeError(f"README.md needs exactly one {START} followed by one {END} around the performance block")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{generated}\n{END}{tail}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if the README's block is not what the JSON makes.")
@click.option("--results", "results_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=results.LAST_RUN, show_default=True)
@click.option("--readme", "readme_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=README, show_default=True)
def main(check: bool, results_path: Path, readme_path: Path) -> None:
    """Regenerate README.md's performance block from the last bench run."""
    text = readme_path.read_text("utf-8")
    try:
        new = replaced(text, block(results.read(results_path)))
    except ReadmeError as error:
        raise click.ClickException(str(error)) from None
    if check:
        if new != text:
            raise click.ClickException(f"{readme_path}'s performance block is not {results_path}'s: "
                                       "run `python -m bench.readme`")
        return
    readme_path.write_text(new, "utf-8")


if __name__ == "__main__":
    main(prog_name="python -m bench.readme")
