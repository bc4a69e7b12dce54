"""feedsvc: stored Hindi news articles in, valid RSS, Atom, JSON Feed, AMP and pages out."""
from flask import Flask

from . import config


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)

    from .web import db, register_blueprints
    db.init_app(app)
    from . import faults, guards
    faults.init_app(app)  # a store outage answers 503 with Retry-After, not 500
    guards.init_app(app)  # a NUL byte in a URL answers 400 before any route or query sees it
    from . import websub
    websub.init_app(app)  # the outbox listener on the store's writes, and the hub sender
    register_blueprints(app)
    from . import partners, ratelimit, security_headers
    security_headers.init_app(app)    # only /embed/* may be framed
    ratelimit.init_app(app)           # limits on feeds and oEmbed, per partner key or client address
    partners.install_log_redaction(app)  # partner keys never reach a log line

    from . import validate
    validate.init_app(app)  # FEEDSVC_VALIDATE_ON_RENDER=1 checks every response before it is sent

    from . import fastpath
    fastpath.init_app(app)  # FEEDSVC_FAST_PATH=1: cached public feeds answered by replaying the app's answers

    from . import cli
    cli.register(app)
    return app
