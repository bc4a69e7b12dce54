"""The suite's fixtures live in tests/support/ (plugins); this file only loads them and sets the access log."""
import pytest

from feedsvc.ops import access_log

pytest_plugins = ["tests.support.apps", "tests.support.chromium", "tests.support.records"]


@pytest.fixture(autouse=True, scope="session")
def access_lines_at_once():
    """Access lines written as they are logged (not batched), so pytest shows each with its test."""
    access_log.install(flush_ms=0)
