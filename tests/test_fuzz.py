"""The fuzz targets in fuzz/, run so CI exercises them: the sanitiser -> AMP converter, and any URL and
date in a record -> the renderers' URL and date paths.

In process, every hostile HTML record goes through the same pair and must keep the house rules
and carry no active content; in a subprocess, libFuzzer drives the target for a bounded number of
inputs (seeded with the hostile corpus) and must finish without a crash or a failed assertion.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.threats import amp_script, json_ld_script, parse_document, threats

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "fuzz" / "fuzz_sanitize_amp.py"
URL_DATE_TARGET = ROOT / "fuzz" / "fuzz_record_urls_dates.py"
HOSTILE_HTML = Path(__file__).resolve().parent / "hostile" / "html"
RUNS = 2000


@pytest.fixture(scope="module")
def target():
    sys.path.insert(0, str(TARGET.parent))
    try:
        import fuzz_sanitize_amp
    finally:
        sys.path.remove(str(TARGET.parent))
    return fuzz_sanitize_amp


@pytest.mark.parametrize("path", sorted(HOSTILE_HTML.glob("*.html")), ids=lambda p: p.stem)
def test_hostile_html_through_the_sanitiser_and_amp_converter(target, path):
    page = target.check(path.read_text("utf-8"), headline="<script>alert(1)</script>",
                        embed=("other", "https://evil.example/\"><script>alert(2)</script>"))
    found = threats(parse_document(page), allowed_script=lambda s: json_ld_script(s) or amp_script(s),
                    fragment=False)
    assert not found, found


@pytest.mark.slow
# The URL/date target builds a whole feed entry per input (~50 ms): fewer runs keep it near 30 s.
@pytest.mark.parametrize("target_path, seeds, runs", [(TARGET, HOSTILE_HTML, RUNS), (URL_DATE_TARGET, None, 600)],
                         ids=["sanitize-amp", "record-urls-dates"])
def test_fuzz_target_survives_bounded_libfuzzer_run(tmp_path, target_path, seeds, runs):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [sys.executable, str(target_path), f"-runs={runs}", "-seed=1", "-max_len=4096", "-timeout=20",
         f"-artifact_prefix={tmp_path}/", str(corpus), *([str(seeds)] if seeds else [])],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
