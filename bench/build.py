"""Row 1: building a feed from stored records, cold (no render cache), in this process.

feedsvc's own writers (feeds.render, the path every request and the mirror take) against the
same feed built by direct lxml, plain feedgen and Django's feedgenerator (bench/baselines.py), all
reading the same articles from the same store; plus the gzip ratio the corpus reaches.
"""
from __future__ import annotations

import gc
import gzip
import time

from feedsvc import store
from feedsvc.render import feeds
from feedsvc.render.feeds.model import Site
from feedsvc.web import db

from . import baselines
from .stats import Sample, Table

SIZES = (50, 500)


def rows(n: int) -> dict[str, str]:
    """The rows one feed size measures: name -> one line saying what it is."""
    return {
        f"build-{n}-rss": f"feedsvc's RSS of {n} items built cold, vs direct lxml RSS (target ≤ 1.5×)",
        f"build-{n}-feedgen": f"plain feedgen RSS of {n} items, vs direct lxml RSS (a baseline)",
        f"build-{n}-django": f"Django's feedgenerator RSS of {n} items, vs direct lxml RSS (a baseline)",
        f"build-{n}-lxml": f"direct lxml RSS of {n} items (the baseline itself)",
        f"build-{n}-atom": f"feedsvc's Atom of {n} items, vs direct lxml RSS (target ≤ 1.6×)",
        f"build-{n}-atom-vs-lxml-atom": f"feedsvc's Atom of {n} items, vs direct lxml Atom",
        f"build-{n}-json": f"feedsvc's JSON Feed of {n} items, vs direct lxml RSS (target ≤ 0.75×)",
    }


BASELINE_ROWS = {"plain feedgen RSS": "feedgen", "Django feedgenerator RSS": "django", "direct lxml RSS": "lxml"}


def run(table: Table, app, sizes: tuple[int, ...] = SIZES, repeats: int = 7) -> dict:
    engine = db.engine(app)
    site = Site.from_config(app.config)
    facts = {}
    with engine.connect() as conn:
        state = feeds.state_of(conn, "site")
        for n in sizes:
            def ours(fmt: str):
                # As the app calls it: the scope's state is already read (it decided the ETag).
                return lambda: feeds.render(fmt, "site", conn=conn, site=site, limit=n, state=state)

            def other(builder):
                return lambda: builder(site, store.newest(conn, "site", n))

            builders = {"feedsvc RSS": ours("rss"), "feedsvc Atom": ours("atom"), "feedsvc JSON Feed": ours("json"),
                        "direct lxml RSS": other(baselines.lxml_rss), "direct lxml Atom": other(baselines.lxml_atom),
                        **{f"{name} RSS": other(builder) for name, builder in baselines.BUILDERS.items()
                           if name != "direct lxml"}}
            s = interleaved(builders, repeats if n < 100 else max(3, repeats - 2))
            section = f"build a {n}-item feed from stored records (cold, in process)"
            lxml_rss = s["direct lxml RSS"]
            table.compare(f"build-{n}-rss", section, "feedsvc RSS", s["feedsvc RSS"], lxml_rss, "direct lxml RSS",
                          at_most=1.5)
            for name, key in BASELINE_ROWS.items():
                table.compare(f"build-{n}-{key}", section, name, s[name], lxml_rss, "direct lxml RSS")
            table.compare(f"build-{n}-atom", section, "feedsvc Atom", s["feedsvc Atom"], lxml_rss, "direct lxml RSS",
                          at_most=1.6)
            table.compare(f"build-{n}-atom-vs-lxml-atom", section, "feedsvc Atom vs direct lxml Atom", s["feedsvc Atom"],
                          s["direct lxml Atom"], "direct lxml Atom")
            table.compare(f"build-{n}-json", section, "feedsvc JSON Feed", s["feedsvc JSON Feed"], lxml_rss,
                          "direct lxml RSS", at_most=0.75)
            body = feeds.render("rss", "site", conn=conn, site=site, limit=n)
            facts[f"rss_{n}_bytes"] = len(body)
            facts[f"rss_{n}_gzip_ratio"] = len(gzip.compress(body, 6)) / len(body)
        bodies = [a.body_html.encode() for a in store.newest(conn, "site", 200)]
    facts["body_gzip_ratio"] = sum(len(gzip.compress(b, 6)) for b in bodies) / sum(len(b) for b in bodies)
    facts["body_kib"] = sum(len(b) for b in bodies) / len(bodies) / 1024
    return facts


def interleaved(builders: dict, repeats: int) -> dict[str, Sample]:
    """Each builder timed `repeats` times, round-robin, so a noisy moment hits all of them alike.

    Timed in this process's CPU time: a build is one thread's work in process (SQLite reads from
    the page cache included), and on a shared machine the wall clock also counts the time other
    processes hold the core: at load 11 these rows spread 70-170 % in wall time; in CPU time
    5-50 % at load 13-21."""
    for build in builders.values():
        build()   # warm: imports, the SQLite page cache, lru caches
    times = {name: [] for name in builders}
    for _ in range(repeats):
        for name, build in builders.items():
            # As timeit does: no cyclic GC inside a timing, so no builder pays for another's garbage.
            gc.collect()
            gc.disable()
            try:
                started = time.process_time()
                build()
                times[name].append((time.process_time() - started) * 1000)
            finally:
                gc.enable()
    return {name: Sample(values, "ms") for name, values in times.items()}


FRAGMENT_ROWS = {
    "fragments": "feedsvc's 50-item RSS, Atom and JSON Feed with every entry's fragment warm (render cache cold), "
                 "the three in turn, vs direct lxml RSS three times (target ≤ 0.25×)",
    **{f"fragments-{fmt}": f"feedsvc's 50-item {label} with every entry's fragment warm, vs direct lxml RSS "
                           f"(target ≤ 0.25×)"
       for fmt, label in (("rss", "RSS"), ("atom", "Atom"), ("json", "JSON Feed"))},
    **{f"fragments-cold-{fmt}": f"feedsvc's 50-item {label} with no fragment warm (written whole, then cut and "
                                f"kept), vs the same built without fragments (target ≤ 1.1×: no slower, within noise)"
       for fmt, label in (("rss", "RSS"), ("atom", "Atom"), ("json", "JSON Feed"))},
}


def run_fragments(table: Table, app, n: int = 50, repeats: int = 9) -> dict:
    """Feeds composed from entry fragments (feeds.Fragments) against direct lxml and against whole builds."""
    engine = db.engine(app)
    site = Site.from_config(app.config)
    warm = feeds.Fragments()
    with engine.connect() as conn:
        state = feeds.state_of(conn, "site")

        def build(fmt: str, fragments=None, fresh: bool = False):
            def run():
                return feeds.render(fmt, "site", conn=conn, site=site, limit=n, state=state,
                                    fragments=feeds.Fragments() if fresh else fragments)
            return run

        builders = {"direct lxml RSS": lambda: baselines.lxml_rss(site, store.newest(conn, "site", n))}
        for fmt in feeds.FORMATS:
            builders[f"{fmt} warm"] = build(fmt, warm)
            builders[f"{fmt} cold"] = build(fmt, fresh=True)
            builders[f"{fmt} whole"] = build(fmt)
        for fmt in feeds.FORMATS:
            assert build(fmt, warm)() == build(fmt)(), f"composed {fmt} differs from the whole build"
        s = interleaved(builders, repeats)
    section = f"build a {n}-item feed from entry fragments (in process)"
    lxml_rss = s["direct lxml RSS"]
    # Sums of one repeat's builds: a noisy moment in one format weighs as it would in a real fan-out.
    three = Sample([sum(values) for values in zip(*(s[f"{fmt} warm"].values for fmt in feeds.FORMATS),
                                                  strict=True)], "ms")
    table.compare("fragments", section, "feedsvc RSS + Atom + JSON Feed, fragments warm", three,
                  Sample([3 * value for value in lxml_rss.values], "ms"), "3 × direct lxml RSS", at_most=0.25)
    for fmt in feeds.FORMATS:
        table.compare(f"fragments-{fmt}", section, f"feedsvc {fmt}, fragments warm", s[f"{fmt} warm"], lxml_rss,
                      "direct lxml RSS", at_most=0.25)
    for fmt in feeds.FORMATS:
        table.compare(f"fragments-cold-{fmt}", section, f"feedsvc {fmt}, no fragment warm", s[f"{fmt} cold"],
                      s[f"{fmt} whole"], f"feedsvc {fmt} whole", at_most=1.1)
    return {"fragments_bytes_50_items_3_formats": warm.bytes}
