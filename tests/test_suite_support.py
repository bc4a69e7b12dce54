"""The suite's own shortcuts (tests/support/) give what they stand in for."""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from tests.support import routing, templates


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


def test_every_template_runs_the_code_its_own_app_compiles_from_it(make_app):
    first, second = make_app(), make_app(SITE_URL="http://other.example")
    names = first.jinja_env.list_templates()
    assert names and isinstance(second.jinja_env.bytecode_cache, templates.InMemory)
    for name in names:
        first.jinja_env.get_template(name)  # compiled once, by the first app
        source, filename, _ = second.jinja_env.loader.get_source(second.jinja_env, name)
        bucket = second.jinja_env.bytecode_cache.get_bucket(second.jinja_env, name, filename, source)
        assert bucket.code == second.jinja_env.compile(source, name, filename), name  # compile() reads no cache
