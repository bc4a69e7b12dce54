"""deploy/gunicorn.conf.py checks the profile files once in the master and passes their digests to the
workers, or nothing when the check fails (the workers then check, and fail, as before)."""
from __future__ import annotations

import os
import runpy
from pathlib import Path

from feedsvc import profiles

CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def _hooks(monkeypatch) -> dict:
    monkeypatch.setattr(os, "environ", dict(os.environ))   # the file sets defaults in the environment
    had_metrics_dir = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    hooks = runpy.run_path(str(CONF))["on_starting"].__globals__
    if not had_metrics_dir:   # the (empty) folder the file made for the workers' metrics
        os.rmdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    os.environ.pop(profiles.CHECKED_ENV, None)
    return hooks


def test_the_master_passes_the_checked_profiles_digests_on(monkeypatch, tmp_path):
    hooks = _hooks(monkeypatch)
    monkeypatch.chdir(CONF.parent.parent)
    extra = (profiles.BUILT_IN / "msn.toml").read_text("utf-8").replace("MSN", "MSN (ours)", 1)
    (tmp_path / "msn.toml").write_text(extra, "utf-8")
    os.environ["FEEDSVC_PROFILES_DIR"] = str(tmp_path)
    hooks["_check_profiles"]()
    digests = os.environ[profiles.CHECKED_ENV].split(",")
    assert profiles.text_digest(extra) in digests and len(digests) == len(list(profiles.BUILT_IN.glob("*.toml"))) + 1
    assert profiles.parse(tmp_path / "msn.toml").name == "msn"


def test_a_failed_check_passes_nothing_on(monkeypatch, tmp_path):
    hooks = _hooks(monkeypatch)
    monkeypatch.chdir(CONF.parent.parent)
    text = (profiles.BUILT_IN / "msn.toml").read_text("utf-8").replace("min = 21", 'min = "twenty"')
    (tmp_path / "msn.toml").write_text(text, "utf-8")
    os.environ["FEEDSVC_PROFILES_DIR"] = str(tmp_path)
    hooks["_check_profiles"]()
    assert profiles.CHECKED_ENV not in os.environ
