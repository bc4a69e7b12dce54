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
from bench.stats import Row, Sample, Table, interleaved, paired_ratio

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


def test_a_step_that_makes_an_undeclared_row_fails_and_its_rows_are_not_measured():
    step = steps.Step("test", {"declared": "x"}, lambda table, run: table.add(Row("other", "s", "w", None)))
    table = Table()
    failure = step.run(table, None)
    assert failure is not None and "other" in failure.error and failure.rows == ["declared"]
    assert [row.name for row in table.rows] == ["declared"]


def test_a_failing_step_keeps_what_it_measured_and_marks_the_rest_not_measured():
    def measure(table, run):
        table.add(Row("first", "s", "w", Sample([1.0], "ms")))
        raise TimeoutError("wrk: 8 requests timed out")

    table = Table([Row("before", "s", "w", Sample([2.0], "ms"))])
    failure = steps.Step("flaky", {"first": "one", "second": "two"}, measure).run(table, None)
    assert failure == steps.Failure("flaky", ["second"], "TimeoutError: wrk: 8 requests timed out")
    before, first, second = table.rows
    assert (before.name, first.name, first.sample.values) == ("before", "first", [1.0])
    assert (second.name, second.what, second.sample, second.met) == ("second", "two", None, None)
    assert "not measured: TimeoutError: wrk: 8 requests timed out" in second.note
    assert steps.Step("fine", {"first": "one"}, lambda table, run: table.add(Row("first", "s", "w", None))) \
        .run(Table(), None) is None


def test_a_shared_resource_that_failed_is_not_built_again():
    run, calls = steps.Run(1, 10), []

    def build():
        calls.append(1)
        raise OSError("disk full")

    for _ in range(2):
        with pytest.raises(OSError, match="disk full"):
            run._once("big", build)
    assert len(calls) == 1
    assert run._once("small", lambda: 3) == run._once("small", lambda: 4) == 3


def test_a_run_with_a_failing_step_still_writes_every_row_and_exits_nonzero(monkeypatch, tmp_path):
    noise = steps.Step("machine noise", {"machine-noise": "n"},
                       lambda table, run: table.add(Row("machine-noise", "noise", "n", Sample([1.0, 1.1], "ms"))))
    broken = steps.Step("broken", {"worker-rss-1m": "w"}, lambda table, run: 1 / 0)
    after = steps.Step("after", {"import-1m": "i"},
                       lambda table, run: table.add(Row("import-1m", "s", "i", Sample([5.0], "records/s"))))
    monkeypatch.setattr("bench.__main__.select", lambda only: [noise, broken, after])
    path = tmp_path / "run.json"
    result = CliRunner().invoke(bench_main, ["--json", str(path)])
    assert result.exit_code == 1 and "broken" in result.output and "ZeroDivisionError" in result.output
    run = results.read(path)
    assert [row["name"] for row in run["rows"]] == ["machine-noise", "worker-rss-1m", "import-1m"]
    assert run["rows"][1]["value"] is None and "ZeroDivisionError" in run["rows"][1]["note"]
    assert run["failed"] == [{"step": "broken", "rows": ["worker-rss-1m"], "error": "ZeroDivisionError: division by zero"}]
    with pytest.raises(readme.ReadmeError, match="steps failed: broken"):
        readme.block(run)


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


def test_interleaved_rounds_measure_each_label_once_and_alternate_which_goes_first():
    measured = []
    values = interleaved(["row", "baseline", "other"], lambda label: measured.append(label) or len(measured), 3)
    assert measured == ["row", "baseline", "other", "other", "baseline", "row", "row", "baseline", "other"]
    assert values == {"row": [1, 6, 7], "baseline": [2, 5, 8], "other": [3, 4, 9]}


def test_a_paired_row_is_the_median_of_its_repeats_ratios():
    # Repeat 2: the machine was busy while the row ran, and had calmed down for the baseline right after;
    # repeat 3: busy for both. The medians apart give 800/1000 = 0.8x; taken per repeat, 1.0x.
    row = Sample([1000.0, 700.0, 800.0, 1010.0, 500.0], "req/s", higher_is_better=True)
    baseline = Sample([1000.0, 1100.0, 800.0, 1000.0, 1000.0], "req/s", higher_is_better=True)
    table = Table()
    apart = table.compare("apart", "s", "w", row, baseline, "minimal app", at_least=0.9)
    paired = table.compare("paired", "s", "w", row, baseline, "minimal app", at_least=0.9, paired=True)
    assert (round(apart.ratio, 2), apart.met) == (0.8, False)
    assert (paired.ratio, paired.met) == (1.0, True)
    assert paired.note == "middle half of the rounds' ratios 0.57–1.00×, medians apart 0.80×" and apart.note == ""
    assert paired_ratio(baseline, baseline) == 1.0
    with pytest.raises(ValueError, match="paired samples of 5 and 1 values"):
        table.compare("uneven", "s", "w", row, Sample([1.0], "req/s"), "x", paired=True)


def test_committed_results_have_every_field_and_make_the_readmes_block():
    run = results.read()
    assert run["only"] is None and not run.get("failed") and run["source"] and run["date"] and run["machine"]
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


def test_readme_block_says_what_the_run_took_when_the_run_recorded_it():
    run = results.read()
    timed = {**run, "minutes": 41.5, "facts": {**run["facts"], "bench_out_gb": 23.4}}
    assert "; 41.5 min, bench/out/ holding 23.4 GB after it; " in readme.block(timed)
    untimed = {**run, "minutes": None, "facts": {}}
    assert " min" not in readme.block(untimed).splitlines()[1] and "GB" not in readme.block(untimed)


def test_disk_use_counts_every_file_below_once(tmp_path):
    (tmp_path / "mirror" / "feeds").mkdir(parents=True)
    (tmp_path / "corpus.jsonl").write_bytes(b"x" * 1000)
    (tmp_path / "mirror" / "feeds" / "rss.xml").write_bytes(b"y" * 234)
    (tmp_path / "link").symlink_to(tmp_path / "corpus.jsonl")
    assert results.disk_use(tmp_path) == 1234 + len(str(tmp_path / "corpus.jsonl"))


# ---- the fan-out rows' writes and store (bench/fanout.py): what they write, and on what ----

def test_the_fanout_write_is_a_valid_article_in_ten_corpus_tags_of_both_kinds_and_two_authors():
    import random

    from jsonschema import Draft202012Validator

    from bench import fanout, synth
    schema = json.loads((ROOT / "feedsvc" / "schemas" / "article.json").read_text(encoding="utf-8"))
    rng = random.Random(3)
    section_tags = {t["key"] for t in synth._ALL_TAGS}
    long_tail = {t["key"] for t in synth.LONG_TAIL_TAGS}
    for number in range(9_100_000, 9_100_020):
        record = fanout.wide_record(number, rng)
        Draft202012Validator(schema).validate(record)
        keys = [t["key"] for t in record["tags"]]
        assert len(set(keys)) == 10 and set(keys) <= section_tags | long_tail
        assert len(set(keys) & section_tags) == fanout.SECTION_TAGS and set(keys) & long_tail
        assert len({a["key"] for a in record["authors"]}) == 2
        warm = fanout.warm_up_record(record, number + 100_000)
        Draft202012Validator(schema).validate(warm)
        assert fanout.scope_paths(warm) == fanout.scope_paths(record)
        assert (warm["id"], warm["slug"]) != (record["id"], record["slug"])


def test_the_fanout_rows_write_to_a_copy_of_the_store_and_remove_it(tmp_path):
    import sqlite3

    from bench import fanout, load
    kept = tmp_path / "kept.sqlite"
    with sqlite3.connect(kept) as conn:
        conn.execute("CREATE TABLE scope_state (scope TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO scope_state VALUES (?)", [("site",), ("tag:a",), ("tag:b",)])
    conn.close()
    before = kept.read_bytes()
    copy, _ = fanout.store_copy(load.Loaded(kept, 0, 0.0, False), tmp_path / "work")
    assert copy.read_bytes() == before and fanout.tag_count(copy) == 2
    with sqlite3.connect(copy) as conn:
        conn.execute("INSERT INTO scope_state VALUES ('tag:written')")
    conn.close()
    fanout.remove_database(copy)
    assert kept.read_bytes() == before and not list((tmp_path / "work").iterdir())
