"""Reader User-Agents: the family and the subscriber count, against real strings (tests/data/reader_user_agents.tsv)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from feedsvc.ops import user_agents

TABLE = Path(__file__).parent / "data" / "reader_user_agents.tsv"


def table_rows():
    with TABLE.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return [(r["user_agent"], r["family"], None if r["subscribers"] == "-" else int(r["subscribers"]))
            for r in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_the_table_has_at_least_twenty_reader_strings():
    assert len(table_rows()) >= 20
    assert len({family for _, family, _ in table_rows()}) >= 15


@pytest.mark.parametrize(("user_agent", "family", "subscribers"), table_rows())
def test_family_and_subscribers(user_agent, family, subscribers):
    assert user_agents.parse(user_agent) == user_agents.ReaderReport(family, subscribers)


def test_every_family_found_has_a_label():
    for _, family, _ in table_rows():
        assert user_agents.label(family) != family or family in user_agents.LABELS


@pytest.mark.parametrize("user_agent", [None, ""])
def test_no_user_agent(user_agent):
    assert user_agents.parse(user_agent) == user_agents.ReaderReport("none", None)


def test_a_browser_saying_subscribers_reports_nothing():
    ua = "Mozilla/5.0 (X11; Linux x86_64; 500 subscribers) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    assert user_agents.parse(ua) == user_agents.ReaderReport("browser", None)
