"""Templates compiled once per test process and shared by its apps (Jinja's bytecode cache), not once per app.

Every Flask app has a Jinja environment of its own, so each test app lexed, parsed and compiled (Python's
`compile`) every template it rendered, and the suite builds hundreds of apps from the same templates.
A Jinja bytecode cache (https://jinja.palletsprojects.com/en/stable/api/#bytecode-cache) keeps the code
compiled from a template, keyed by its name and file and checked against its source's checksum; each
app still loads that code into a template of its own environment. The code is the same whichever app
compiled it: Jinja bakes nothing of the app into it but constant-folded filters, and the app's one
filter (`uri`, feedsvc/web/pages.py) depends on no setting. A production process builds one app: no need there.
"""
from __future__ import annotations

from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class InMemory(BytecodeCache):
    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_options = Flask.jinja_options


def pytest_configure(config) -> None:
    Flask.jinja_options = {**_options, "bytecode_cache": InMemory()}


def pytest_unconfigure(config) -> None:
    Flask.jinja_options = _options
