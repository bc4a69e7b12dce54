"""Render's signals are heard per app: metrics and desk counters count what is rendered in their own app's
context, once, and nothing after the app closes (feedsvc/web/app_signals.py)."""
from __future__ import annotations

from feedsvc import close_app
from feedsvc.ops import desk_counters
from feedsvc.ops.metrics import ENTRIES_SKIPPED, PROFILE_LEFT_OUT
from feedsvc.render import profiles, skips

ITEMS = [profiles.LeftOut("p-1", "title.min", "too short"), profiles.LeftOut("p-2", "title.min", "too short")]


def counted(metric, **labels) -> float:
    [family] = metric.collect()
    return sum(sample.value for sample in family.samples if sample.name.endswith("_total") and sample.labels == labels)


def announce() -> None:
    """What rendering one broken entry and one profile check that leaves two items out sends."""
    skips.skipped.send("signal-test")
    profiles.left_out.send("signal-test", items=ITEMS)


def left_out_noted(app) -> set:
    return {(profile, item) for profile, item, _rule in desk_counters.counters(app).pending.left_out}


def test_each_app_counts_what_is_rendered_in_its_context_once(make_app):
    first, second = make_app(), make_app()
    skipped = counted(ENTRIES_SKIPPED, document_kind="signal-test")
    left = counted(PROFILE_LEFT_OUT, profile="signal-test", rule="title.min")
    with first.app_context():
        announce()
    assert counted(ENTRIES_SKIPPED, document_kind="signal-test") - skipped == 1   # not once per app
    assert counted(PROFILE_LEFT_OUT, profile="signal-test", rule="title.min") - left == 2
    assert left_out_noted(first) == {("signal-test", "p-1"), ("signal-test", "p-2")}
    assert left_out_noted(second) == set()


def test_nothing_is_counted_outside_an_app(make_app):
    app = make_app()
    skipped = counted(ENTRIES_SKIPPED, document_kind="signal-test")
    announce()
    assert counted(ENTRIES_SKIPPED, document_kind="signal-test") == skipped
    assert left_out_noted(app) == set()


def test_a_closed_app_hears_nothing(make_app):
    app = make_app()
    receivers = len(profiles.left_out.receivers)
    make_app.apps.remove(app)   # closed here, not again when the test ends
    close_app(app)
    assert len(profiles.left_out.receivers) == receivers - 2   # the metrics' and the desk's
    skipped = counted(ENTRIES_SKIPPED, document_kind="signal-test")
    with app.app_context():
        announce()
    assert counted(ENTRIES_SKIPPED, document_kind="signal-test") == skipped
    assert left_out_noted(app) == set()
