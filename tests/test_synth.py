"""The synthetic corpus generator: deterministic, schema-valid, varied, realistic in size and compressibility."""
from __future__ import annotations

import collections
import json
import re
import statistics
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from bench import synth
from bench.synth import BODY_MAX_BYTES, BODY_MIN_BYTES, generate_records, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "feedsvc" / "schemas" / "article.json").read_text(encoding="utf-8"))
IST = timedelta(hours=5, minutes=30)
# 3,000 records take about 0.6 s CPU to generate: one worker makes them, once, for every test that reads them.
pytestmark = pytest.mark.xdist_group("synth-corpus")


@pytest.fixture(scope="module")
def corpus():
    return list(generate_records(3000, seed=0))


def test_same_seed_gives_the_same_records_and_another_seed_does_not():
    first = list(generate_records(40, seed=7))
    assert first == list(generate_records(40, seed=7))
    other = list(generate_records(40, seed=8))
    assert [r["body_html"] for r in first] != [r["body_html"] for r in other]


def test_a_record_reads_the_same_whatever_the_corpus_size():
    small = list(generate_records(10, seed=3))
    large = list(generate_records(500, seed=3))[:10]
    def drop_times(r):
        return {k: v for k, v in r.items() if k not in ("published", "updated")}
    assert [drop_times(r) for r in small] == [drop_times(r) for r in large]


def test_records_validate_against_the_schema(corpus):
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for record in corpus[:400]:
        assert [e.message for e in validator.iter_errors(record)] == [], record["id"]


def test_bodies_are_3_to_6_kb_of_simple_html_without_template_leftovers(corpus):
    allowed = {"div", "p", "h2", "ul", "li", "blockquote"}
    for record in corpus:
        body = record["body_html"]
        assert BODY_MIN_BYTES <= len(body.encode("utf-8")) <= BODY_MAX_BYTES, record["id"]
        tree = lxml.html.fragment_fromstring(body, create_parent="div")
        assert {el.tag for el in tree.iter()} <= allowed
        assert not any(c in body + record["title"] for c in "{}[]"), record["id"]
        assert record["summary"] and body.startswith("<p>" + record["summary"])


def test_ids_and_slugs_are_unique_and_well_formed(corpus):
    assert len({r["id"] for r in corpus}) == len({r["slug"] for r in corpus}) == len(corpus)
    assert corpus[0]["id"] == "syn-0000001" and corpus[-1]["id"] == "syn-0003000"
    assert max(len(r["slug"]) for r in corpus) <= 80


def test_publication_times_run_back_from_start_over_the_span():
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    records = list(generate_records(2000, seed=1, start=start, span_days=3 * 365))
    published = [datetime.fromisoformat(r["published"]) for r in records]
    assert all(p.utcoffset() == IST for p in published)
    assert all(a > b for a, b in pairwise(published)), "newest first, strictly"
    assert published[0] <= start and start - published[-1] > timedelta(days=3 * 365 - 2)
    updated = [datetime.fromisoformat(r["updated"]) for r in records]
    assert all(p <= u <= start for p, u in zip(published, updated, strict=True))
    assert 0.15 < sum(u > p for p, u in zip(published, updated, strict=True)) / len(records) < 0.35


def test_naive_start_is_refused():
    with pytest.raises(ValueError):
        next(generate_records(1, start=datetime(2025, 1, 1)))


def test_corpus_spreads_over_sections_tags_and_authors(corpus):
    sections = collections.Counter(r["section"]["key"] for r in corpus)
    tags = collections.Counter(t["key"] for r in corpus for t in r["tags"])
    authors = collections.Counter(a["key"] for r in corpus for a in r["authors"])
    assert len(sections) == 10 and min(sections.values()) > 50
    section_tags = {t["key"] for t in synth._ALL_TAGS}
    assert section_tags <= set(tags)
    long_tail = [k for k in tags if k not in section_tags]
    assert 0.4 < sum(tags[k] for k in long_tail) / len(corpus) < 0.6
    assert len(long_tail) > len(corpus) / 10    # spread wide, not a few hot tags
    assert len(authors) == 30
    assert {e["provider"] for r in corpus for e in r.get("embeds", [])} == {"youtube", "twitter"}


def test_the_tag_pool_holds_fifty_thousand_distinct_valid_keys():
    keys = [t["key"] for t in synth._ALL_TAGS + synth.LONG_TAIL_TAGS]
    assert len(keys) == len(set(keys)) == synth.TAG_COUNT
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", k) and len(k) <= 64 for k in keys)


def test_bodies_are_varied(corpus):
    text = " ".join(lxml.html.fragment_fromstring(r["body_html"], create_parent="div").text_content() for r in corpus[:200])
    sentences = [s.strip() for s in text.split("।") if s.strip()]
    assert len(set(sentences)) / len(sentences) > 0.9
    assert len({r["title"] for r in corpus}) / len(corpus) > 0.97


def test_gzip_ratio_is_close_to_real_hindi_news(corpus):
    """Real Hindi news HTML gzips (-6) to 0.25–0.35 per article; the generator must not be far more compressible."""
    ratios = [len(zlib.compress(b, 6)) / len(b) for b in (r["body_html"].encode("utf-8") for r in corpus[:500])]
    assert 0.26 <= statistics.mean(ratios) <= 0.34
    assert min(ratios) >= 0.22 and max(ratios) <= 0.40
    # Fifty bodies in a row, like a feed: templates recur across records, so lower, but not absurdly low.
    feed = "".join(r["body_html"] for r in corpus[:50]).encode("utf-8")
    assert len(zlib.compress(feed, 6)) / len(feed) >= 0.14


def test_write_jsonl_writes_one_unescaped_record_per_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    assert write_jsonl(path, 25, seed=4) == 25
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(generate_records(25, seed=4))
    assert "\\u09" not in lines[0] and "क" in lines[0]


def test_write_jsonl_shows_a_progress_bar_when_asked(tmp_path):
    import click

    @click.command()
    def command():
        write_jsonl(tmp_path / "c.jsonl", 1500, seed=5, show_progress=True)

    result = CliRunner().invoke(command)
    assert result.exit_code == 0, result.output
    assert "Generating articles" in result.output  # click draws the bar itself only on a terminal
    assert len((tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()) == 1500


def test_command_line_writes_count_records_of_the_seed(tmp_path):
    """`python -m bench.synth COUNT --out FILE --seed N`, as bench/load.py runs it."""
    path = tmp_path / "corpus.jsonl"
    done = subprocess.run([sys.executable, "-m", "bench.synth", "25", "--out", str(path), "--seed", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(generate_records(25, seed=4))
    assert "wrote 25 records" in done.stdout


def test_images_point_at_shipped_media():
    media = ROOT / "articles" / "media"
    urls = {r["image"]["url"] for r in generate_records(500, seed=6)}
    assert all((media / url.removeprefix("/media/")).is_file() for url in urls)
    assert synth.START.utcoffset() == IST
