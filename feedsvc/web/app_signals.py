"""Render's announcements heard per app: a receiver connected by an app's `init_app` hears only what is
sent inside that app's context, and is disconnected when the app closes (`feedsvc.close_app`).

render/ sends its signals (skips.skipped, profiles.left_out) without knowing Flask, so their sender
is a document kind or a profile name, never the app; the app is the one whose context the render
runs in (every document is rendered in a request or a command: the static mirror fetches through
the app). So two apps in one process (tests, a command beside a server) each count their own, once.
Connections are weak (blinker's default) and held by the app, so an app dropped without
`close_app` leaves no receiver behind either.
"""
from __future__ import annotations

from typing import Any, Callable

from blinker import Signal
from flask import Flask, current_app, has_app_context

_HEARD = "feedsvc.app_signals"


def connect(app: Flask, signal: Signal, receiver: Callable[..., Any]) -> None:
    """`receiver(sender, **kwargs)` hears `signal` when it is sent inside `app`'s context."""
    def heard(sender, **kwargs) -> None:
        # LocalProxy's documented way to the object behind current_app; Flask types the proxy as Flask.
        if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
            receiver(sender, **kwargs)
    app.extensions.setdefault(_HEARD, []).append((signal, heard))
    signal.connect(heard)


def disconnect(app: Flask) -> None:
    """Stop every receiver `app` connected (it is closing)."""
    for signal, heard in app.extensions.pop(_HEARD, []):
        signal.disconnect(heard)
