"""Which feed reader a User-Agent names, and how many subscribers it reports for the feed.

Hosted readers poll a feed once for all their users and say how many they are in the User-Agent
(`Feedly/1.0 (+http://www.feedly.com/fetcher.html; 265 subscribers; )`); desktop and phone
readers poll once per reader and report nothing. tests/data/reader_user_agents.tsv holds the
real strings this table was checked against; a reader that is not listed counts as "other".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# (family, pattern), the first match wins: several readers say "like FeedFetcher-Google", and
# NewsBlur quotes a browser's User-Agent, so those come before Google's and the browsers'.
FAMILIES: tuple[tuple[str, re.Pattern], ...] = tuple((family, re.compile(pattern, re.IGNORECASE)) for family, pattern in (
    ("feedly", r"\bfeedly\b"),
    ("inoreader", r"\binoreader\b"),
    ("feedbin", r"\bfeedbin\b"),
    ("newsblur", r"\bnewsblur\b"),
    ("theoldreader", r"\btheoldreader\b"),
    ("feedspot", r"\bfeedspot\b"),
    ("bazqux", r"\bbazqux\b"),
    ("netvibes", r"\bnetvibes\b"),
    ("feedwrangler", r"\bfeed ?wrangler\b"),
    ("bloglovin", r"\bbloglovin\b"),
    ("miniflux", r"\bminiflux\b"),
    ("freshrss", r"\bfreshrss\b"),
    ("ttrss", r"\btiny tiny rss\b|\btt-rss\b"),
    ("nextcloud", r"\bnextcloud[- ]news\b"),
    ("netnewswire", r"\bnetnewswire\b"),
    ("reeder", r"\breeder\b"),
    ("feeder", r"\bfeeder\b.*spacecowboy|spacecowboy.*\bfeeder\b"),
    ("akregator", r"\bakregator\b"),
    ("liferea", r"\bliferea\b"),
    ("superfeedr", r"\bsuperfeedr\b"),
    ("google", r"\bfeedfetcher-google\b"),
    ("slack", r"\bslackbot\b"),
    ("tool", r"^(curl|wget|python-requests|python-urllib|go-http-client|okhttp|java|libwww-perl)\b"),
    ("browser", r"^Mozilla/5\.0 .*(Firefox|Chrome|Safari)/"),
))
# How the desk names each family; a family missing here is shown by its key.
LABELS = {
    "feedly": "Feedly", "inoreader": "Inoreader", "feedbin": "Feedbin", "newsblur": "NewsBlur",
    "theoldreader": "The Old Reader", "feedspot": "Feedspot", "bazqux": "BazQux Reader", "netvibes": "Netvibes",
    "feedwrangler": "Feed Wrangler", "bloglovin": "Bloglovin", "miniflux": "Miniflux", "freshrss": "FreshRSS",
    "ttrss": "Tiny Tiny RSS", "nextcloud": "Nextcloud News", "netnewswire": "NetNewsWire", "reeder": "Reeder",
    "feeder": "Feeder", "akregator": "Akregator", "liferea": "Liferea", "superfeedr": "Superfeedr",
    "google": "Google FeedFetcher", "slack": "Slack", "tool": "HTTP tools", "browser": "Browsers",
    "other": "Other", "none": "No User-Agent",
}
OTHER, NONE = "other", "none"
# "265 subscribers", "1 subscriber", "1,024 subscribers"
SUBSCRIBERS = re.compile(r"(\d{1,3}(?:,\d{3})+|\d{1,9})\s+subscribers?\b", re.IGNORECASE)
# A longer string is no reader's: it is not worth matching (and not worth keeping in the cache).
MAX_LENGTH = 512


@dataclass(frozen=True)
class ReaderReport:
    family: str                 # a key of LABELS
    subscribers: int | None     # what the reader reports for this feed, None when it reports nothing


@lru_cache(maxsize=2048)
def parse(user_agent: str | None) -> ReaderReport:
    """The reader family of a User-Agent and the subscriber count it reports (cached: pollers repeat)."""
    if not user_agent:
        return ReaderReport(NONE, None)
    user_agent = user_agent[:MAX_LENGTH]
    family = next((name for name, pattern in FAMILIES if pattern.search(user_agent)), OTHER)
    found = SUBSCRIBERS.search(user_agent) if family not in ("browser", "tool") else None
    return ReaderReport(family, int(found.group(1).replace(",", "")) if found else None)


def label(family: str) -> str:
    return LABELS.get(family, family)
