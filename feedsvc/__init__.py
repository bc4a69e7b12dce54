"""feedsvc: stored Hindi news articles in, valid RSS, Atom, JSON Feed, AMP and pages out."""
from flask import Flask

from feedsvc import cli, config
from feedsvc.ops import desk_counters, partners
from feedsvc.publish import schedule, websub
from feedsvc.web import (
    app_signals,
    db,
    documents,
    errors,
    guards,
    metrics,
    ratelimit,
    register_blueprints,
    render_cache,
    security_headers,
    surrogate,
)
from feedsvc.web.middleware import fastpath, proxy


def create_app(test_config: dict | None = None) -> Flask:
    """The app, each piece given what it needs; the comments say where the order matters."""
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)

    engine = db.init_app(app)                 # one engine per app, a connection per request
    cache = documents.init_app(app, engine)   # the render-once cache; change counters forgotten on its writes
    render_cache.output_revision()            # in every ETag: render/ and templates/ read now, a missing one fails now
    errors.register_error_handlers(app)       # one JSON error shape; a store outage answers 503, not 500
    # Before any other request hook (the limiter's looks partner keys up in the store): a NUL byte
    # in a URL answers 400 before any route or query sees it.
    guards.init_app(app)
    websub.init_app(app, engine)              # outbox rows inside the writes through `engine`; the hub sender
    schedule.init_app(app, engine)            # embargoed articles made live at their time, pinged like any write
    register_blueprints(app)
    desk_counters.init_app(app, engine)       # the desk's per-feed counts, written in batches (the metrics hooks count)
    metrics.init_app(app, engine, cache)      # /metrics: requests, the render cache's hits and builds, the mirror's lag
    security_headers.init_app(app)            # only /embed/* may be framed
    surrogate.init_app(app)                   # Surrogate-Key / Cache-Tag: what each response holds, for purges
    limiter = ratelimit.init_app(app)         # limits on feeds and oEmbed, per partner key or client address
    partners.install_log_redaction(app)       # partner keys never reach a log line
    if app.config["VALIDATE_ON_RENDER"]:      # every response checked before it is sent (a debug mode)
        from feedsvc import validate  # here: its grammars are 3.5 MiB a serving worker need not hold
        validate.init_app(app)
    # FEEDSVC_FAST_PATH=1: cached public feeds replayed at the WSGI layer, counted on the app's own limiter.
    fastpath.init_app(app, engine=engine, counters=documents.counters(app), limiter=limiter)
    proxy.init_app(app)                       # last: the outermost WSGI layer, so all inside see the client's address
    cli.register(app)
    return app


def close_app(app: Flask) -> None:
    """Stop what the app started (the WebSub sender and scheduler threads, its signal receivers) and close
    its database pool."""
    app_signals.disconnect(app)
    websub.publisher(app).stop()
    schedule.scheduler(app).stop()
    desk_counters.counters(app).close()      # its last counts, while the engine is still open
    db.engine(app).dispose()
