"""The benchmark as an interface: named rows, `--only`, the JSON of a row, the README block made from it.

Nothing here measures: the commands are run with arguments that stop before any step does.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import readme, results, steps
from bench.__main__ import main as bench_main
from bench.stats import Row, Sample, Table

ROOT = Path(__file__).resolve().parent.parent


def test_list_names_every_row_once_with_a_description():
    done = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    listed = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert list(listed) == list(steps.ROWS)
    assert len(steps.ROWS) == sum(len(step.rows) for step in steps.STEPS), "a row name is declared by two steps"
    for name in ("build-50-rss", "serve-cached-identity", "serve-304", "mirror-freshness-site", "import-rate",
                 "import-1m", "newest-50-1m-sqlite-site", "worker-rss-1m"):
        assert listed[name].strip()


def test_only_refuses_an_unknown_row_and_lists_the_names():
    result = CliRunner().invoke(bench_main, ["--only", "build-50-rss,no-such-row", "--json", "/dev/null"])
    assert result.exit_code == 2
    assert "no-such-row" in result.output
    for name in steps.ROWS:
        assert name in result.output


def test_only_selects_the_steps_holding_the_rows_and_the_noise():
    chosen = steps.select(["build-50-rss", "serve-304"])
    assert [step.title for step in chosen] == ["machine noise", "building 50-item feeds",
                                               "serving a cached feed and 304 (wrk)"]
    assert steps.select(None) == steps.STEPS


def test_a_step_that_makes_an_undeclared_row_fails():
    step = steps.Step("test", {"declared": "x"}, lambda table, run: table.add(Row("other", "s", "w", None)))
    with pytest.raises(RuntimeError, match="other"):
        step.run(Table(), None)


def test_a_row_in_json_has_every_field():
    table = Table()
    table.compare("build-50-rss", "build", "feedsvc RSS", Sample([2.0, 3.0, 4.0], "ms"), Sample([2.0], "ms"),
                  "direct lxml RSS", at_most=1.5)
    table.add(Row("mirror-freshness-site", "fresh", "site", Sample([0.1, 0.3], "s"), target="p99 ≤ 1 s", met=True,
                  value=0.3, statistic="p99"))
    table.add(Row("newest-50-1m-postgresql-site", "newest", "not measured", None))
    document = results.document(table, only=None, settings={"BENCH_ROWS": 10}, machine_line="m", seconds=60,
                                facts={}, plans=[])
    rows = json.loads(json.dumps(document))["rows"]
    for row in rows:
        assert tuple(row) == results.ROW_FIELDS
    ratio, p99, absent = rows
    assert (ratio["value"], ratio["unit"], ratio["ratio"], ratio["baseline"], ratio["target"], ratio["met"]) == \
        (3.0, "ms", 1.5, "direct lxml RSS", "≤ 1.5×", True)
    assert (p99["value"], p99["statistic"]) == (0.3, "p99")
    assert (absent["value"], absent["met"], absent["values"]) == (None, None, [])


def test_committed_results_have_every_field_and_make_the_readmes_block():
    run = results.read()
    assert run["only"] is None and run["source"] and run["date"] and run["machine"]
    for row in run["rows"]:
        assert tuple(row) == results.ROW_FIELDS
        assert row["name"] in steps.ROWS, row["name"]
    text = readme.README.read_text("utf-8")
    assert readme.replaced(text, readme.block(run)) == text, "README's block is stale: run python -m bench.readme"


def test_readme_block_is_idempotent_and_keeps_what_is_outside_the_markers():
    run = results.read()
    text = f"# before\n\n{readme.START}\nhand-typed figures\n{readme.END}\n\nafter\n"
    once = readme.replaced(text, readme.block(run))
    assert readme.replaced(once, readme.block(run)) == once
    assert "hand-typed" not in once
    assert once.startswith("# before\n\n") and once.endswith(f"{readme.END}\n\nafter\n")
    assert "`build-50-rss`" in once


@pytest.mark.parametrize("text", ["no markers at all\n", f"{readme.START}\nonly the start\n",
                                  f"{readme.END}\n{readme.START}\n", f"{readme.START}{readme.END}{readme.START}{readme.END}"])
def test_readme_without_one_pair_of_markers_fails_loudly(text, tmp_path):
    with pytest.raises(readme.ReadmeError, match="bench:start"):
        readme.replaced(text, "block")
    path = tmp_path / "README.md"
    path.write_text(text, "utf-8")
    result = CliRunner().invoke(readme.main, ["--readme", str(path)])
    assert result.exit_code == 1 and "bench:start" in result.output
    assert path.read_text("utf-8") == text


def test_readme_refuses_a_partial_run(tmp_path):
    partial = {**results.read(), "only": ["build-50-rss"]}
    path = tmp_path / "partial.json"
    results.write(path, partial)
    result = CliRunner().invoke(readme.main, ["--results", str(path), "--check"])
    assert result.exit_code == 1 and "partial run" in result.output
