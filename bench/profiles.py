"""Aggregator profile feeds (issue 18 item 4): served as fast as the public feeds, and cheap to re-render.

Serving: a cached profile feed and its 304, through gunicorn, against the minimal Flask app returning
the same bytes (the public rows' baseline, bench/serve.py), one row each per built-in profile, the
profile's first format, gzip. Fan-out: after one write, every profile variant of the site feed
(every profile, every format it allows) rendered from the store, against the public site feed in
its three formats, each as the app renders it on a change (composed from the app's entry fragments,
render/profile_fragments.py and feeds/fragments.py); in process, round-robin repeats. The public
feed written whole (no fragments) is timed too, and its ratio given in the row's note.
"""
from __future__ import annotations

import gc
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

from feedsvc import profiles as profile_files
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.write import commit_write, upsert
from feedsvc.render import feeds, profile_fragments
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds import FORMATS, Scope
from feedsvc.render.feeds.model import Site
from feedsvc.web import db, documents
from feedsvc.web.profile_feeds import profiles_of

from . import wrk
from .serve import PAIRED_ROUNDS, PAIRED_SECONDS, WORKERS, app_env, fetch, paired_rates
from .servers import Gunicorn
from .stats import Sample, Table

PROFILES = sorted(profile_files.built_in())
SERVE_ROWS = {
    **{f"serve-cached-profile-{name}": f"feedsvc serving the {name} profile's cached site feed gzipped, vs a "
                                       "minimal Flask app with the same bytes (target ≥ 0.9×, as the public feed)"
       for name in PROFILES},
    **{f"serve-304-profile-{name}": f"feedsvc answering a conditional GET of the {name} profile's site feed with "
                                    "304, vs the minimal app's 304 (target ≥ 0.9×, as the public feed)"
       for name in PROFILES},
}
FANOUT_ROWS = {"profile-fanout": "after one write: every profile variant of the site feed (all profiles, all their "
                                 "formats) rendered, vs the public site feed in its three formats (target ≤ 2×)"}
IST = timezone(timedelta(hours=5, minutes=30))


def profile_path(name: str) -> str:
    profile = profile_files.built_in()[name]
    return shaping.profile_feed_path(name, Scope("site"), profile.formats[0])


def serving(table: Table, database_url: str, mirror: Path, workdir: Path, repeats: int) -> None:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = app_env(database_url)
    gzip = {"Accept-Encoding": "gzip"}
    with ExitStack() as stack:
        ours = stack.enter_context(Gunicorn("wsgi:app", env=env, workers=WORKERS, log_path=logs / "feedsvc-profiles.log"))
        rows = {}
        for name in PROFILES:
            path = profile_path(name)
            status, headers, body = fetch(ours.url(path))
            if status != 200 or (mirror / path.lstrip("/")).read_bytes() != body:
                raise RuntimeError(f"{path}: the mirror's file is not the app's: export the mirror first")
            validator = headers["ETag"].strip('"')
            minimal = stack.enter_context(Gunicorn(
                "bench.apps:minimal()", workers=WORKERS, log_path=logs / f"minimal-{name}.log",
                env={"BENCH_BODY": str(mirror / path.lstrip("/")), "BENCH_ETAG": validator,
                     "BENCH_CONTENT_TYPE": headers["Content-Type"]}))
            # Each row beside its baseline: measured one after the other, in turn first (stats.interleaved).
            rows[f"{name}: feedsvc"] = (ours.url(path), gzip, 200)
            rows[f"{name}: minimal"] = (minimal.url("/feed"), gzip, 200)
            rows[f"{name}: 304 minimal"] = (minimal.url("/feed"), {"If-None-Match": f'"{validator}"'}, 304)
            rows[f"{name}: 304 feedsvc"] = (ours.url(path), {**gzip, "If-None-Match": f'"{validator}-gzip"'}, 304)
        for label, (url, headers, expected) in rows.items():
            got = fetch(url, headers)[0]
            if got != expected:
                raise RuntimeError(f"{label}: {url} answered {got}, expected {expected}")
            wrk.run(url, headers=headers, seconds=1)   # warm: caches filled, replays recorded
        rates = paired_rates(rows, repeats, lambda label, seconds: wrk.run(rows[label][0], headers=rows[label][1],
                                                                           seconds=seconds))
    s = {label: Sample(values, "req/s", higher_is_better=True) for label, values in rates.items()}
    section = (f"serve a cached profile feed, gzip, and its 304 (one server process each; wrk -c{wrk.CONNECTIONS} "
               f"-d{PAIRED_SECONDS}s × {repeats * PAIRED_ROUNDS} rounds, each row beside its baseline; "
               "ratio: the median of the rounds' ratios)")
    for name in PROFILES:
        table.compare(f"serve-cached-profile-{name}", section, f"{name} profile feed, gzip", s[f"{name}: feedsvc"],
                      s[f"{name}: minimal"], "minimal app, same bytes", at_least=0.9, paired=True)
        table.compare(f"serve-304-profile-{name}", section, f"{name} profile feed 304", s[f"{name}: 304 feedsvc"],
                      s[f"{name}: 304 minimal"], "minimal app 304", at_least=0.9, paired=True)


def fanout(table: Table, app, repeats: int) -> None:
    """Each repeat writes one new article to the site (and its section), then renders each side, round-robin."""
    engine, site = db.engine(app), Site.from_config(app.config)
    every = list(profiles_of(app).values())
    written = [0]

    def write_one() -> None:
        written[0] += 1
        when = (datetime.now(IST) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
        record = {"id": f"bench-fanout-{time.time_ns()}", "slug": f"bench-fanout-{time.time_ns()}",
                  "title": f"बेंच के लिए नई ख़बर संख्या {written[0]}: संसद में आज अहम बहस",
                  "summary": "संसद में आज कई अहम विधेयकों पर बहस होगी।",
                  "body_html": "<p>संसद में आज कई अहम विधेयकों पर बहस होगी।</p>" * 20,
                  "section": {"key": "national", "name": "देश"}, "authors": [{"key": "bench", "name": "बेंच"}],
                  "published": when, "updated": when, "status": "published"}
        commit_write(engine, upsert, parse_record(record, site_url=site.url), site_name=site.name)

    # The app's own cache of entry fragments (FEED_FRAGMENTS_MAX_BYTES), kept across writes as in the app.
    fragments = documents.fragments(app)

    def public(conn, state) -> None:
        for fmt in FORMATS:
            feeds.render(fmt, "site", conn=conn, site=site, state=state, fragments=fragments)

    def public_whole(conn, state) -> None:
        for fmt in FORMATS:
            feeds.render(fmt, "site", conn=conn, site=site, state=state)

    def profiles(conn, state) -> None:
        # As feedsvc/web/profile_feeds.py does on a change: the stamps read once (those the public pages of
        # the state read, or read here for them: Fragments.stamps), then each variant composed.
        base = profile_fragments.load_base(conn, site, Scope("site"), state, every, fragments=fragments)
        now = datetime.now(timezone.utc)
        for profile in every:
            for fmt in profile.formats:
                composed = None if fragments is None else profile_fragments.render(
                    profile, fmt, base, conn=conn, self_url=site.url, now=now, fragments=fragments)
                if composed is None:
                    shaped = shaping.shape(profile, shaping.load_base_feed(conn, site, Scope("site"), state, every),
                                           fmt=fmt, self_url=site.url, now=now)
                    shaping.write(profile, fmt, shaped)

    renders = (("profiles", profiles), ("public", public), ("public whole", public_whole))
    times: dict[str, list[float]] = {name: [] for name, _ in renders}
    with engine.connect() as conn:
        for n in range(repeats + 1):   # the first round warms (imports, page cache, shaped entries, fragments)
            write_one()   # one write, then every render after it (each side's caches see one new article)
            conn.rollback()   # a fresh snapshot: the write is seen
            state = feeds.state_of(conn, "site")
            for name, render in renders[n % len(renders):] + renders[:n % len(renders)]:
                gc.collect()
                gc.disable()
                try:
                    started = time.perf_counter()
                    render(conn, state)
                    elapsed = (time.perf_counter() - started) * 1000
                finally:
                    gc.enable()
                if n:
                    times[name].append(elapsed)
    variants = sum(len(p.formats) for p in every)
    whole = Sample(times["public whole"], "ms")
    profiled = Sample(times["profiles"], "ms")
    table.compare("profile-fanout", "render after one write (in process, cold render cache)",
                  f"{len(every)} profiles, {variants} variants of the site feed", profiled,
                  Sample(times["public"], "ms"), f"public site feed, {len(FORMATS)} formats", at_most=2,
                  note="both composed from entry fragments, as the app renders them; entries shaped once per "
                       f"article version and profile; vs the public feed written whole: "
                       f"{profiled.median / whole.median:.2f}× ({whole.median:.1f} ms)")
