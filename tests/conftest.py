"""The suite's fixtures live in tests/support/ (plugins); this file only loads them and sets the access log
and the property tests' example counts."""
import pytest
from hypothesis import settings

from feedsvc.ops import access_log

pytest_plugins = ["tests.support.apps", "tests.support.chromium", "tests.support.folders", "tests.support.mirrors",
                  "tests.support.ordering", "tests.support.pictures", "tests.support.records", "tests.support.routing",
                  "tests.support.templates", "tests.support.visibility"]

# Property tests take their example count from the profile, not from their own @settings: `make test`
# (and a bare `pytest`) runs "full"; `make test-fast` passes --hypothesis-profile=fast, a tenth of it.
settings.register_profile("full", max_examples=400, deadline=None)
settings.register_profile("fast", max_examples=40, deadline=None)
settings.load_profile("full")


@pytest.fixture(autouse=True, scope="session")
def access_lines_at_once():
    """Access lines written as they are logged (not batched), so pytest shows each with its test."""
    access_log.install(flush_ms=0)
