"""Slow tests handed out first, so that the parallel run does not end with one worker on a long test
while the other is idle.

pytest-xdist (`--dist loadgroup`) gives the `xdist_group` groups out first, largest first, then single
tests in the order they were collected: files alphabetically, so a long test late in the alphabet
(test_slow_clients, test_multi_node, ...) used to start with little else left to run beside it.
Within each part the collected order stays (a stable sort), and so do fixtures shared by a module.
"""
from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)  # after `sampled` has marked its variants slow (tests/support/apps.py)
def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
