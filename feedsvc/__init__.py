"""feedsvc: stored Hindi news articles in, valid RSS, Atom, JSON Feed, AMP and pages out."""
from flask import Flask

from feedsvc import cli, config, validate
from feedsvc.ops import partners
from feedsvc.publish import websub
from feedsvc.web import db, documents, faults, guards, ratelimit, register_blueprints, security_headers
from feedsvc.web.middleware import fastpath


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)

    db.init_app(app)                  # one engine per app, a connection per request
    documents.init_app(app)           # the render-once cache and the change-counter cache
    faults.init_app(app)              # a store outage answers 503 with Retry-After, not 500
    guards.init_app(app)              # a NUL byte in a URL answers 400 before any route or query sees it
    websub.init_app(app)              # the outbox listener on the store's writes, and the hub sender
    register_blueprints(app)
    security_headers.init_app(app)    # only /embed/* may be framed
    ratelimit.init_app(app)           # limits on feeds and oEmbed, per partner key or client address
    partners.install_log_redaction(app)  # partner keys never reach a log line
    validate.init_app(app)            # FEEDSVC_VALIDATE_ON_RENDER=1 checks every response before it is sent
    fastpath.init_app(app)            # FEEDSVC_FAST_PATH=1: cached public feeds replayed at the WSGI layer
    cli.register(app)
    return app
