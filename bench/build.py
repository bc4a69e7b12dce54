"""Row 1: building a feed from stored records, cold (no render cache), in this process.

feedsvc's own writers (feeds.render, the path every request and the mirror take) against the
same feed built by direct lxml, plain feedgen and Django's feedgenerator (bench/baselines.py), all
reading the same articles from the same store; plus the gzip ratio the corpus reaches.
"""
from __future__ import annotations

import gzip

from feedsvc import feeds, store
from feedsvc.feeds.model import Site

from . import baselines
from .stats import Table, timed

SIZES = (50, 500)


def run(table: Table, app) -> dict:
    engine = app.extensions["feedsvc.engine"]
    site = Site.from_config(app.config)
    facts = {}
    with engine.connect() as conn:
        for n in SIZES:
            section = f"build a {n}-item feed from stored records (cold, in process)"

            def ours(fmt: str):
                return lambda: feeds.render(fmt, "site", conn=conn, site=site, limit=n)

            def other(builder):
                return lambda: builder(site, store.newest(conn, "site", n))

            lxml_rss = timed(other(baselines.lxml_rss))
            lxml_atom = timed(other(baselines.lxml_atom))
            rss = timed(ours("rss"))
            table.compare(section, "feedsvc RSS", rss, lxml_rss, "direct lxml RSS", at_most=1.5)
            for name in ("plain feedgen", "Django feedgenerator"):
                table.compare(section, f"{name} RSS", timed(other(baselines.BUILDERS[name])), lxml_rss,
                              "direct lxml RSS")
            table.compare(section, "direct lxml RSS", lxml_rss, lxml_rss, "direct lxml RSS")
            atom = timed(ours("atom"))
            table.compare(section, "feedsvc Atom", atom, lxml_rss, "direct lxml RSS", at_most=1.6)
            table.compare(section, "feedsvc Atom vs direct lxml Atom", atom, lxml_atom, "direct lxml Atom")
            table.compare(section, "feedsvc JSON Feed", timed(ours("json")), lxml_rss, "direct lxml RSS",
                          at_most=0.75)
            body = feeds.render("rss", "site", conn=conn, site=site, limit=n)
            facts[f"rss_{n}_bytes"] = len(body)
            facts[f"rss_{n}_gzip_ratio"] = len(gzip.compress(body, 6)) / len(body)
        bodies = [a.body_html.encode() for a in store.newest(conn, "site", 200)]
    facts["body_gzip_ratio"] = sum(len(gzip.compress(b, 6)) for b in bodies) / sum(len(b) for b in bodies)
    facts["body_kib"] = sum(len(b) for b in bodies) / len(bodies) / 1024
    return facts
