"""The client's address from X-Forwarded-For, as appended by FEEDSVC_TRUSTED_PROXY_HOPS trusted proxies."""
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # Outermost, so everything inside (the fast path, rate limits, the access log) sees the client.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)
