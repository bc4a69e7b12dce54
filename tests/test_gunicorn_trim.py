"""deploy/gunicorn.conf.py hands freed memory back after renders, at most once a second."""
from __future__ import annotations

import os
import runpy
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def test_a_burst_of_renders_is_trimmed_once_a_second_and_the_last_one_later(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))   # the file sets defaults in the environment
    had_metrics_dir = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    hooks = runpy.run_path(str(CONF))["post_request"].__globals__
    if not had_metrics_dir:   # the (empty) folder the file made for the workers' metrics
        os.rmdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    clock, trims, cache = [100.0], [], SimpleNamespace(stats=Counter())
    monkeypatch.setitem(hooks, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setitem(hooks, "_malloc_trim", lambda: trims.append(clock[0]))
    hooks["_render_cache"][0] = cache

    def request(at: float, renders: int = 0) -> None:
        clock[0] = at
        cache.stats["renders"] += renders
        hooks["post_request"](None, None, {}, None)

    request(100.0, renders=1)
    assert trims == [100.0]
    for at in (100.2, 100.4, 100.6):   # a write's fan-out: a render on each request
        request(at, renders=1)
    request(100.8)
    assert trims == [100.0]
    request(101.1)   # no render of its own: the renders since the last trim are trimmed now
    assert trims == [100.0, 101.1]
    request(103.0)   # nothing rendered since
    assert trims == [100.0, 101.1]
