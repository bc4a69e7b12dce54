"""How `make test` and `make test-fast` (`-n 2 --dist loadgroup`) share the tests between the two workers.

- Each `xdist_group` goes to one worker whole: its tests share an expensive module or session fixture
  (the sample mirror's export, the official AMP validator's run, a corpus). pytest-xdist 3.8 marks a
  grouped test by appending "@group" to its node id, but on pytest 9.2 ids are structured and its
  assignment (`item._nodeid`) no longer takes effect, so every group was split silently
  (pytest-dev/pytest-xdist#1386, fix open in #1388). The worker side here makes the same id with the
  structured type; when xdist does it itself the id already ends in the suffix and is left alone.
- The other tests go out in runs of CHUNK consecutive tests of one file, not one by one: loadgroup makes
  each ungrouped test a unit of its own and tops a worker up only when it holds two or fewer, so with
  tests of a few milliseconds each worker waited for the controller between tests (627 tests of four
  files: 174-244 s wall under `--dist loadgroup`, 128 s under `--dist load`, same CPU; load 15).
  Consecutive tests of a file also keep its module fixtures on one worker.
- Groups first, largest first; then slow tests; each part in collected order (a stable sort). So the
  run does not end with one worker on a long test or group while the other is idle.
"""
from __future__ import annotations

from collections import Counter

import pytest
from _pytest.nodeid import NodeId
from xdist.scheduler import LoadGroupScheduling

CHUNK = 8


def group_of(item: pytest.Item) -> str | None:
    """The worker a test must share, as xdist names it: its `xdist_group` names joined, or None."""
    names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


@pytest.hookimpl(trylast=True)  # after `sampled` has marked its variants slow (tests/support/apps.py)
def pytest_collection_modifyitems(config, items) -> None:
    groups = {item.nodeid: group_of(item) for item in items}
    sizes = Counter(groups.values())
    items.sort(key=lambda item: (groups[item.nodeid] is None, -sizes[groups[item.nodeid]],
                                 groups[item.nodeid] or "", item.get_closest_marker("slow") is None))
    if getattr(config.option, "loadgroup", False):  # an xdist worker of a --dist loadgroup run
        for item in items:
            group = groups[item.nodeid]
            if group and not item.nodeid.endswith(f"@{group}"):
                item._id = NodeId.parse(f"{item.nodeid}@{group}")


class GroupsAndChunks(LoadGroupScheduling):
    """loadgroup, with the ungrouped tests in units of up to CHUNK consecutive tests of one file."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the collected order above is the order wanted
        self._units: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        if scope != nodeid:
            return scope
        if not self._units:
            self._chunk(self.collection or [])
        return self._units.get(nodeid, nodeid)

    def _chunk(self, collection: list[str]) -> None:
        run: list[str] = []
        for nodeid in collection + [""]:
            if run and (len(run) == CHUNK or nodeid.split("::")[0] != run[0].split("::")[0]
                        or super()._split_scope(nodeid) != nodeid):
                for member in run:
                    self._units[member] = f"{run[0]} +{len(run) - 1}"
                run = []
            if nodeid and super()._split_scope(nodeid) == nodeid:
                run.append(nodeid)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":
        return GroupsAndChunks(config, log)
    return None
