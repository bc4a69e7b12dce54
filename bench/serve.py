"""Rows 2 and 3: serving a cached feed and answering 304, through real servers on loopback.

feedsvc under gunicorn (deploy/gunicorn.conf.py), a minimal Flask app returning the same bytes under
the same settings, nginx serving the mirror's file of the same bytes (gzip_static), and feedsvc's
renderer called on every request. Repeats go round-robin over the rows, forwards and backwards in
turn, each row beside its baseline (stats.interleaved), and a row's ratio is the median of the
repeats' own ratios: a noisy moment on this shared machine then lowers both sides of one ratio.
"""
from __future__ import annotations

import urllib.request
from contextlib import ExitStack
from pathlib import Path

from . import wrk
from .servers import Gunicorn, Nginx
from .stats import REPEATS, Sample, Table, interleaved

FEED = "/feeds/rss.xml"
# One process per server. With two, wrk's keep-alive connections land on the workers by an accept
# race, so each run measured one busy worker or two by chance: rows came out bimodal (spreads of
# 50-80%, ratios between 0.73x and 1.39x for the same code). One worker each compares the cost of
# a request, which is what the ratios are about; wrk gets the other core.
WORKERS = 1
# Many short runs, each row's beside its baseline's, and the median of their ratios: 63 alternating
# 1-second runs of the google-news profile feed (gzip) and the minimal app at load 10-11 gave 1.00x,
# 1.04x and 1.02x per 21 of them; the same runs summed to 7 of 3 s each side, as the rows were
# measured before (medians apart), 0.90x, 1.05x and 0.99x (2026-12-07). The shared machine's load
# moves within seconds: the closer in time the two sides, and the more ratios, the less it shows.
PAIRED_SECONDS = 1
PAIRED_ROUNDS = 3   # rounds per repeat (BENCH_REPEATS): 21 ratios a row with 7


def paired_rates(rows: dict, repeats: int, measure) -> dict[str, list[float]]:
    """wrk's req/s for each label of `rows` (in the order given: each row beside its baseline), in
    PAIRED_ROUNDS * repeats interleaved rounds of PAIRED_SECONDS runs; measure(label, seconds)."""
    return interleaved(list(rows), lambda label: measure(label, PAIRED_SECONDS), repeats * PAIRED_ROUNDS)


ROWS = {
    "serve-cached-identity": "feedsvc serving a cached feed, no compression, vs a minimal Flask app (target ≥ 0.9×)",
    "serve-cached-gzip": "feedsvc serving a cached feed gzipped, vs a minimal Flask app (target ≥ 0.9×)",
    "serve-minimal-identity": "the minimal Flask app returning the same bytes, vs nginx (a baseline)",
    "serve-minimal-gzip": "the minimal Flask app, gzipped, vs nginx gzip_static (a baseline)",
    "serve-nginx-identity": "nginx serving the mirror's file (the fastest baseline)",
    "serve-nginx-gzip": "nginx gzip_static serving the mirror's .gz (the fastest baseline)",
    "serve-flask-only-gzip": "feedsvc without its fast path (Flask all the way), vs the minimal app",
    "serve-vs-feedgen": "feedsvc's cached feed vs rendering it with feedgen on every request (target ≥ 10×)",
    "serve-feedgen-each-request": "feedgen rendering on every request, vs nginx (a baseline)",
    "serve-304": "feedsvc answering a conditional GET with 304, vs the minimal app's 304 (target ≥ 0.9×)",
    "serve-304-minimal": "the minimal Flask app's 304, vs nginx's (a baseline)",
    "serve-304-nginx": "nginx's 304 (the fastest baseline)",
    "serve-desk-counting-cached": "feedsvc's cached feed with the desk's counts, vs with FEEDSVC_DESK_COUNTS=0 "
                                  "(target ≥ 0.95×)",
    "serve-desk-counting-304": "feedsvc's 304 with the desk's counts, vs with FEEDSVC_DESK_COUNTS=0 (target ≥ 0.95×)",
}


def fetch(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def app_env(database_url: str) -> dict:
    """feedsvc's settings for the benchmark: the bench database, rate limits raised out of the way
    (one client address would hit them at once; the limiter still runs on every request)."""
    return {"FEEDSVC_DATABASE_URL": database_url, "FEEDSVC_SITE_URL": "http://news.example",
            "FEEDSVC_RATELIMIT_PUBLIC": "100000000/minute", "FEEDSVC_WEBSUB_SENDER": "worker",
            "FEEDSVC_MAX_REQUESTS": "0"}


def run(table: Table, database_url: str, mirror: Path, workdir: Path, repeats: int = REPEATS) -> dict:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = app_env(database_url)
    with ExitStack() as stack:
        ours = stack.enter_context(Gunicorn("wsgi:app", env=env, workers=WORKERS, log_path=logs / "feedsvc.log"))
        status, headers, body = fetch(ours.url(FEED))
        assert status == 200, status
        mirrored = (mirror / FEED.lstrip("/")).read_bytes()
        if mirrored != body:
            raise RuntimeError("the mirror's feed is not the app's: export the mirror first")
        validator = headers["ETag"].strip('"')
        minimal = stack.enter_context(Gunicorn("bench.apps:minimal()", workers=WORKERS, log_path=logs / "minimal.log",
                                               env={"BENCH_BODY": str(mirror / FEED.lstrip("/")),
                                                    "BENCH_ETAG": validator}))
        naive = stack.enter_context(Gunicorn("bench.apps:render_each()", env=env, workers=WORKERS,
                                             log_path=logs / "naive.log"))
        flask_only = stack.enter_context(Gunicorn("wsgi:app", env={**env, "FEEDSVC_FAST_PATH": "0"},
                                                  workers=WORKERS, log_path=logs / "feedsvc-flask.log"))
        # The same app with the desk's counting off: what counting costs a cached feed and a 304.
        uncounted = stack.enter_context(Gunicorn("wsgi:app", env={**env, "FEEDSVC_DESK_COUNTS": "0"},
                                                 workers=WORKERS, log_path=logs / "feedsvc-uncounted.log"))
        nginx = stack.enter_context(Nginx(mirror, workdir / "nginx-serve", app_port=ours.port, workers=WORKERS))
        nginx_etag = fetch(nginx.url(FEED))[1]["ETag"]
        gzip = {"Accept-Encoding": "gzip"}
        # Each row beside its baseline (stats.interleaved: one after the other, in turn first), so its
        # ratio is taken per repeat; feedgen, 10x off its target, sits between its two.
        not_modified = {**gzip, "If-None-Match": f'"{validator}-gzip"'}
        rows = {
            "feedsvc without desk counts, identity": (uncounted.url(FEED), {}),
            "feedsvc, identity": (ours.url(FEED), {}),
            "minimal Flask app, identity": (minimal.url("/feed"), {}),
            "nginx gzip_static, identity": (nginx.url(FEED), {}),
            "feedgen render on every request": (naive.url("/feed"), {}),
            "nginx gzip_static, gzip": (nginx.url(FEED), gzip),
            "minimal Flask app, gzip": (minimal.url("/feed"), gzip),
            "feedsvc, gzip": (ours.url(FEED), gzip),
            "feedsvc without the fast path, gzip": (flask_only.url(FEED), gzip),
            "304: nginx": (nginx.url(FEED), {"If-None-Match": nginx_etag}),
            "304: minimal Flask app": (minimal.url("/feed"), {"If-None-Match": f'"{validator}"'}),
            "304: feedsvc": (ours.url(FEED), not_modified),
            "304: feedsvc without desk counts": (uncounted.url(FEED), not_modified),
        }
        for name, (url, hdrs) in rows.items():
            expected = 304 if name.startswith("304") else 200
            got = fetch(url, hdrs)[0]
            if got != expected:
                raise RuntimeError(f"{name}: {url} answered {got}, expected {expected}")
        for url, hdrs in rows.values():   # warm: caches filled, replays recorded, workers busy once
            wrk.run(url, headers=hdrs, seconds=1)

        def measure(name: str, seconds: int) -> float:
            url, hdrs = rows[name]
            return wrk.run(url, headers=hdrs, seconds=seconds)
        rates = paired_rates(rows, repeats, measure)
    s = {name: Sample(values, "req/s", higher_is_better=True) for name, values in rates.items()}
    section = (f"serve a cached {len(body) // 1024} KiB feed (one server process each; wrk -t{wrk.THREADS} "
               f"-c{wrk.CONNECTIONS} -d{PAIRED_SECONDS}s × {repeats * PAIRED_ROUNDS} rounds, loopback)")
    for encoding in ("identity", "gzip"):
        ours_s = s[f"feedsvc, {encoding}"]
        table.compare(f"serve-cached-{encoding}", section, f"feedsvc, {encoding}", ours_s, s[f"minimal Flask app, {encoding}"],
                      f"minimal app, {encoding}", at_least=0.9, paired=True)
        table.compare(f"serve-minimal-{encoding}", section, f"minimal Flask app, {encoding}", s[f"minimal Flask app, {encoding}"],
                      s[f"nginx gzip_static, {encoding}"], f"nginx, {encoding}", paired=True)
        table.compare(f"serve-nginx-{encoding}", section, f"nginx gzip_static, {encoding}", s[f"nginx gzip_static, {encoding}"],
                      s[f"nginx gzip_static, {encoding}"], f"nginx, {encoding}", paired=True)
    table.compare("serve-flask-only-gzip", section, "feedsvc without the fast path, gzip (Flask all the way)",
                  s["feedsvc without the fast path, gzip"], s["minimal Flask app, gzip"], "minimal app, gzip", paired=True)
    table.compare("serve-vs-feedgen", section, "feedsvc, identity vs rendering every time", s["feedsvc, identity"],
                  s["feedgen render on every request"], "feedgen each request", at_least=10, paired=True)
    table.compare("serve-feedgen-each-request", section, "feedgen render on every request", s["feedgen render on every request"],
                  s["nginx gzip_static, identity"], "nginx, identity", paired=True)
    section = "answer a conditional GET with 304"
    table.compare("serve-304", section, "feedsvc 304", s["304: feedsvc"], s["304: minimal Flask app"], "minimal app 304",
                  at_least=0.9, paired=True)
    table.compare("serve-304-minimal", section, "minimal Flask app 304", s["304: minimal Flask app"], s["304: nginx"],
                  "nginx 304", paired=True)
    table.compare("serve-304-nginx", section, "nginx 304", s["304: nginx"], s["304: nginx"], "nginx 304", paired=True)
    section = "the desk's counts on the serving path (in memory, written in batches)"
    table.compare("serve-desk-counting-cached", section, "feedsvc, identity, counted", s["feedsvc, identity"],
                  s["feedsvc without desk counts, identity"], "counting off", at_least=0.95, paired=True)
    table.compare("serve-desk-counting-304", section, "feedsvc 304, counted", s["304: feedsvc"],
                  s["304: feedsvc without desk counts"], "counting off", at_least=0.95, paired=True)
    return {"feed_bytes": len(body)}
