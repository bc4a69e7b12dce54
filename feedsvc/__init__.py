"""feedsvc: stored Hindi news articles in, valid RSS, Atom, JSON Feed, AMP and pages out."""
from flask import Flask

from . import config


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)

    from .web import db, register_blueprints
    db.init_app(app)
    from . import faults
    faults.init_app(app)  # a store outage answers 503 with Retry-After, not 500
    register_blueprints(app)

    from . import cli
    cli.register(app)
    return app
