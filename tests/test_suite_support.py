"""The suite's own shortcuts (tests/support/) give what they stand in for."""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from tests.support import routing


def test_every_route_builds_with_the_code_werkzeug_compiles_for_it(make_app):
    first, second = make_app(), make_app()
    for app in (first, second):
        for rule in app.url_map.iter_rules():
            for append_unknown, bound in ((False, rule._build), (True, rule._build_unknown)):
                assert bound.__self__ is rule
                assert bound.__func__.__code__ == routing._compile_builder(rule, append_unknown).__code__, rule
    # Compiled once, shared by both apps: the cache is in use.
    pairs = zip(first.url_map.iter_rules(), second.url_map.iter_rules(), strict=True)
    assert all(a.rule == b.rule and a._build.__func__ is b._build.__func__ for a, b in pairs)


def test_a_default_that_fills_a_url_variable_gets_a_builder_of_its_own():
    urls = Map([Rule("/page/<int:n>", endpoint="page", defaults={"n": 1}), Rule("/page/<int:n>", endpoint="nth"),
                Rule("/list/<int:n>", endpoint="list", defaults={"n": 2})]).bind("news.example")
    assert urls.build("page") == "/page/1" and urls.build("nth", {"n": 7}) == "/page/7"
    assert urls.build("list") == "/list/2" and urls.build("nth", {"n": 7, "q": "x"}) == "/page/7?q=x"
