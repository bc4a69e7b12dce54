"""HTTP blueprints, one per area of the URL space."""
from importlib import import_module

# Each module defines `bp`; the order only matters for routes that could overlap.
BLUEPRINT_MODULES = ("api", "media", "health", "feeds", "profile_feeds", "probes", "discovery", "embed", "partner_feeds",
                     "pages", "metrics", "desk")


def register_blueprints(app) -> None:
    for name in BLUEPRINT_MODULES:
        app.register_blueprint(import_module(f"{__name__}.{name}").bp)
