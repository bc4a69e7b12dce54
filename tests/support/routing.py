"""URL builders compiled once per test process, not once per route of every test app.

Werkzeug turns each route into two URL builders by generating Python code (an AST) and compiling it
(`Rule._compile_builder`, werkzeug/routing/rules.py). With about 55 routes an app, that is three quarters
of the ~30 ms CPU a test app takes to build (cProfile of `create_app`, 2026-12-07), and the suite builds
well over a thousand apps from the same routes. A builder is a function of the rule's text, its parsed
parts (`_trace`), the names of its defaults and, for a default that fills a URL variable, that default
through its converter; it reads everything else from the rule it is bound to when called. So one
compiled function serves every rule made from the same inputs; each rule still binds its own copy
(`__get__`), exactly as `Rule.compile` does. tests/test_suite_support.py checks that the builders
served from here are the code Werkzeug compiles. A production process builds its app once: no need there.
"""
from __future__ import annotations

from werkzeug.routing.rules import Rule

_compile_builder = Rule._compile_builder
_builders: dict[tuple, object] = {}


def _inputs(rule: Rule, append_unknown: bool) -> tuple:
    defaults = rule.defaults or {}
    filled = tuple((str(name), rule._converters[name].to_url(value) if name in rule._converters else None)
                   for name, value in defaults.items())
    return append_unknown, rule.rule, tuple(rule._trace), filled


def _compile_builder_once(self: Rule, append_unknown: bool = True):
    key = _inputs(self, append_unknown)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(self, append_unknown)
    return builder


def pytest_configure(config) -> None:
    Rule._compile_builder = _compile_builder_once  # type: ignore[method-assign]


def pytest_unconfigure(config) -> None:
    Rule._compile_builder = _compile_builder
    _builders.clear()
