"""deploy/gunicorn.conf.py hands freed memory back after renders, at most once a second, and after the
last render of a burst even when no request follows."""
from __future__ import annotations

import os
import runpy
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def test_a_burst_of_renders_is_trimmed_once_a_second_and_the_last_one_by_a_timer(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))   # the file sets defaults in the environment
    had_metrics_dir = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    hooks = runpy.run_path(str(CONF))["post_request"].__globals__
    if not had_metrics_dir:   # the (empty) folder the file made for the workers' metrics
        os.rmdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    clock, trims, cache = [100.0], [], SimpleNamespace(stats=Counter())
    monkeypatch.setitem(hooks, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setitem(hooks, "_malloc_trim", lambda: trims.append(clock[0]))
    timers = []
    monkeypatch.setitem(hooks, "_start_timer", lambda seconds, then: timers.append((clock[0] + seconds, then)))
    hooks["_render_cache"][0] = cache

    def request(at: float, renders: int = 0) -> None:
        clock[0] = at
        cache.stats["renders"] += renders
        hooks["post_request"](None, None, {}, None)

    def timer_fires() -> None:
        at, then = timers.pop(0)
        clock[0] = at
        then()

    request(100.0, renders=1)
    assert trims == [100.0] and not timers
    for at in (100.2, 100.4, 100.6):   # a write's fan-out: a render on each request
        request(at, renders=1)
    request(100.8)
    assert trims == [100.0] and len(timers) == 1   # one trim pending for the whole second
    timer_fires()   # no request follows the burst: the timer trims what its renders freed
    assert trims == [100.0, 101.0]
    request(103.0)   # nothing rendered since
    assert trims == [100.0, 101.0] and not timers
    request(103.5, renders=1)   # a second after the last trim: at once again
    assert trims == [100.0, 101.0, 103.5] and not timers
