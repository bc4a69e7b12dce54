"""A served or saved feed held to an aggregator profile's rules (`flask validate --profile NAME`).

The document is read back by feedparser (what many consumers use) into the facts the profile's
checks take (feedsvc/profiles/checks.py, the same checks the renderer applies before serving), so
each broken rule is reported with the id of the item that breaks it.
"""
from __future__ import annotations

from datetime import datetime, timezone

import feedparser

from feedsvc.profiles import Profile
from feedsvc.profiles.checks import FeedFacts, ItemFacts, feed_problems, item_problems
from feedsvc.validate.problems import Problem


def _number(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _published(entry) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def _item(entry, feed_language: str) -> ItemFacts:
    images = [m for m in entry.get("media_content", []) if m.get("medium", "image") == "image"]
    image = images[0] if images else None
    return ItemFacts(
        id=entry.get("id") or entry.get("link", ""), title=entry.get("title", ""),
        summary=entry.get("summary", ""), published=_published(entry), link=entry.get("link", ""),
        language=entry.get("language") or feed_language, has_content=bool(entry.get("content")),
        image_width=_number(image.get("width")) if image else None,
        image_height=_number(image.get("height")) if image else None, has_image=image is not None)


def profile_problems(profile: Profile, body: bytes, kind: str | None, *, now: datetime | None = None) -> list[Problem]:
    """Every rule of `profile` the document breaks, each item's named by its id."""
    now = now or datetime.now(timezone.utc)
    format_name = {"rss": "rss", "atom": "atom", "jsonfeed": "json"}.get(kind or "")
    problems = []
    if format_name and format_name not in profile.formats:
        problems.append(Problem("profile.formats", f"{profile.name} takes {', '.join(profile.formats)}, not {kind}"))
    parsed = feedparser.parse(body)
    language = parsed.feed.get("language", "")
    facts = FeedFacts(items=len(parsed.entries), size=len(body), language=language,
                      title=parsed.feed.get("title", ""), description=parsed.feed.get("subtitle", ""))
    broken = feed_problems(profile, facts)
    for entry in parsed.entries:
        broken += item_problems(profile, _item(entry, language), now=now, feed_language=language)
    problems += [Problem(f"{profile.name}:{b.rule}", f"item {b.item_id}: {b.message}" if b.item_id else b.message)
                 for b in broken]
    return problems
