"""Baseline WSGI apps for the serving rows, run under the same gunicorn settings as feedsvc.

    gunicorn -c deploy/gunicorn.conf.py 'bench.apps:minimal()'     precomputed bytes, the least Flask can do
    gunicorn -c deploy/gunicorn.conf.py 'bench.apps:render_each()'  feedgen (feeds.render) on every request

BENCH_BODY names the identity file (its .gz sibling is served to gzip clients); BENCH_ETAG is the
validator the minimal app answers 304 to. render_each() reads FEEDSVC_* like the real app.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, request

from feedsvc.web import db


def minimal() -> Flask:
    """A Flask app returning the same precomputed bytes feedsvc serves: identity or gzip, or 304."""
    body_path = Path(os.environ["BENCH_BODY"])
    identity = body_path.read_bytes()
    packed = Path(str(body_path) + ".gz").read_bytes()
    etag = os.environ.get("BENCH_ETAG", "bench")
    content_type = os.environ.get("BENCH_CONTENT_TYPE", "application/rss+xml; charset=utf-8")
    app = Flask(__name__)

    @app.get("/feed")
    def feed():
        if request.headers.get("If-None-Match") == f'"{etag}"':
            return Response(status=304, headers={"ETag": f'"{etag}"'})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(packed, content_type=content_type, headers={"Content-Encoding": "gzip",
                                                                       "ETag": f'"{etag}-gzip"', "Vary": "Accept-Encoding"})
        return Response(identity, content_type=content_type, headers={"ETag": f'"{etag}"', "Vary": "Accept-Encoding"})

    return app


def render_each() -> Flask:
    """feedsvc's own renderer (feedgen) called on every request, no render cache: the naive server."""
    from feedsvc import create_app
    from feedsvc.render import feeds
    from feedsvc.render.feeds.model import Site

    app = create_app()
    site = Site.from_config(app.config)
    engine = db.engine(app)
    naive = Flask(__name__)

    @naive.get("/feed")
    def feed():
        with engine.connect() as conn:
            body = feeds.render("rss", "site", conn=conn, site=site)
        return Response(body, content_type="application/rss+xml; charset=utf-8")

    return naive
