"""A served or saved feed held to an aggregator profile's rules (`flask validate --profile NAME`).

The document is read back by feedparser (what many consumers use) into the facts the profile's
checks take (feedsvc/profiles/checks.py, the same checks the renderer applies before serving), so
each broken rule is reported with the id of the item that breaks it. A deletion marker (a withdrawn
article, said the profile's way) is counted in the feed but not held to a live item's rules.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

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


def withdrawn(entry, now: datetime) -> bool:
    """A deletion marker: SmartNews's media:status deleted (its text, or Media RSS's state attribute) or
    MSN's dcterms:valid in the past (a W3C-DTF instant, or the end= of a DCMI period). It tells the
    consumer an item is gone, so the rules of a live item (full text, image, title) do not apply."""
    status = entry.get("media_status")
    state = status.get("state") if isinstance(status, dict) else status
    if isinstance(state, str) and state.strip().lower() == "deleted":
        return True
    validity = entry.get("validity")
    if not isinstance(validity, str):
        return False
    end = re.search(r"end=([^;]+)", validity)
    try:
        until = datetime.fromisoformat((end.group(1) if end else validity).strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return until.tzinfo is not None and until <= now


def profile_problems(profile: Profile, body: bytes, kind: str | None, *, now: datetime | None = None) -> list[Problem]:
    """Every rule of `profile` the document breaks, each item's named by its id."""
    now = now or datetime.now(timezone.utc)
    format_name = {"rss": "rss", "atom": "atom", "jsonfeed": "json"}.get(kind or "")
    problems = []
    if format_name and format_name not in profile.formats:
        problems.append(Problem("profile.formats", f"{profile.name} takes {', '.join(profile.formats)}, not {kind}"))
    import feedparser  # here, not with the module: 12 MiB RSS in every server worker otherwise (worker-rss-1m)

    parsed = feedparser.parse(body)
    language = parsed.feed.get("language", "")
    facts = FeedFacts(items=len(parsed.entries), size=len(body), language=language,
                      title=parsed.feed.get("title", ""), description=parsed.feed.get("subtitle", ""))
    broken = feed_problems(profile, facts)
    for entry in parsed.entries:
        if withdrawn(entry, now):
            continue
        broken += item_problems(profile, _item(entry, language), now=now, feed_language=language)
    problems += [Problem(f"{profile.name}:{b.rule}", f"item {b.item_id}: {b.message}" if b.item_id else b.message)
                 for b in broken]
    return problems
