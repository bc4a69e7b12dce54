"""A profile's rules as checks: what an item or a whole feed breaks, by rule name.

The same checks run twice: on the entries being rendered (feedsvc/render/profiles.py leaves an item
that breaks one out) and on a served or saved document (`flask validate --profile`), whose items are
read back by feedparser. So they look only at `ItemFacts` and `FeedFacts`, which either side fills.
A rule name is "<rule>.<field>" of the profile file (title.max, image.min_px, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

from feedsvc.profiles import Profile
from feedsvc.profiles.text import length, trailing_teaser

# How far past now an item's date may lie before it counts as future-dated (clocks drift).
CLOCK_SLACK = timedelta(minutes=5)
# The rules an item breaks because of when it is checked (date_problems): its place in the profile's
# window of time, not a fault of the article.
DATE_RULES = frozenset({"dates.no_future", "window.max_age_days"})


@dataclass(frozen=True)
class Broken:
    """One rule an item (or the feed, item_id None) breaks."""
    rule: str
    message: str
    item_id: str | None = None

    def __str__(self) -> str:
        return f"{self.item_id}: {self.rule}: {self.message}" if self.item_id else f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class ItemFacts:
    id: str
    title: str
    summary: str
    published: datetime | None
    link: str
    language: str | None = None
    has_content: bool = False
    image_width: int | None = None
    image_height: int | None = None
    has_image: bool = False


@dataclass(frozen=True)
class FeedFacts:
    items: int
    size: int
    language: str
    title: str
    description: str


def item_problems(profile: Profile, item: ItemFacts, *, now: datetime, feed_language: str) -> list[Broken]:
    """Every rule of `profile` that `item` breaks."""
    return lasting_problems(profile, item, feed_language=feed_language) + date_problems(profile, item, now=now)


def date_problems(profile: Profile, item: ItemFacts, *, now: datetime) -> list[Broken]:
    """The rules an item breaks because of when it is checked (a future date, an age limit)."""
    return [Broken(rule, message, item.id) for rule, message in _date_problems(profile, item, now)]


def timely_span(profile: Profile, item: ItemFacts) -> tuple[datetime | None, datetime | None]:
    """(from, until): the times `now` may take for date_problems to find nothing (None: no bound), so a
    renderer that keeps an item checks its dates by two comparisons and asks for messages only outside."""
    if item.published is None:
        return None, None
    # In UTC, as renderers take `now`: comparing two datetimes of one tzinfo skips their utcoffset()
    # calls (a renderer compares every item's span at every check).
    published = item.published.astimezone(timezone.utc)
    start = published - CLOCK_SLACK if profile.value("dates", "no_future") else None
    max_age = profile.value("window", "max_age_days")
    return start, published + timedelta(days=max_age) if max_age else None


def lasting_problems(profile: Profile, item: ItemFacts, *, feed_language: str) -> list[Broken]:
    """The rules an item breaks whenever it is checked: a function of the item alone, so the renderer
    keeps the answer with the shaped entry (feedsvc/render/profiles.py)."""
    found: list[tuple[str, str]] = []
    title = profile.rule("title")
    if "min" in title and length(item.title) < title["min"]:
        found.append(("title.min", f"title has {length(item.title)} letters; at least {title['min']} needed"))
    if "max" in title and length(item.title) > title["max"]:
        found.append(("title.max", f"title has {length(item.title)} letters; at most {title['max']} allowed"))
    minimum = profile.value("summary", "min")
    if minimum and length(item.summary) < minimum:
        found.append(("summary.min", f"summary has {length(item.summary)} letters; at least {minimum} needed"))
    teaser = trailing_teaser(item.summary, tuple(profile.value("summary", "teasers", ())))
    if teaser:
        found.append(("summary.teasers", f"summary ends with the teaser {teaser!r}"))
    if profile.value("text", "full") and not item.has_content:
        found.append(("text.full", "no full text (content:encoded / content)"))
    found += image_problems(profile, item)
    if profile.value("language", "one_language") and item.language and \
            item.language.split("-")[0] != feed_language.split("-")[0]:
        found.append(("language.one_language", f"item is in {item.language!r}, the feed in {feed_language!r}"))
    if "utm" in profile.rule("links") and not profile.value("links", "utm"):
        tagged = [k for k, _ in parse_qsl(urlsplit(item.link).query) if k.startswith("utm_")]
        if tagged:
            found.append(("links.utm", f"link carries {', '.join(tagged)}; this consumer wants none"))
    return [Broken(rule, message, item.id) for rule, message in found]


def image_problems(profile: Profile, item: ItemFacts) -> list[tuple[str, str]]:
    """(rule, message) of each image rule the item breaks."""
    image = profile.rule("image")
    if not image:
        return []
    if not item.has_image:
        return [("image.without", "no image; this consumer leaves such items out")] \
            if image.get("without") == "leave-out" else []
    width, height = item.image_width, item.image_height
    if not (width and height):
        return [("image.min_px", "image size unknown (no width and height)")] if "min_px" in image else []
    found = []
    side = min(width, height) if image.get("side") == "shortest" else max(width, height)
    if "min_px" in image and side < image["min_px"]:
        found.append(("image.min_px", f"image is {width}×{height}; its {image.get('side', 'longest')} side "
                                      f"must be at least {image['min_px']} px"))
    aspect = width / height
    if not image.get("aspect_min", 0) <= aspect <= image.get("aspect_max", float("inf")):
        found.append(("image.aspect", f"image aspect {aspect:.2f} is outside {image.get('aspect_min')}–"
                                      f"{image.get('aspect_max')}"))
    return found


def _date_problems(profile: Profile, item: ItemFacts, now: datetime) -> list[tuple[str, str]]:
    if item.published is None:
        return []
    found = []
    if profile.value("dates", "no_future") and item.published > now + CLOCK_SLACK:
        found.append(("dates.no_future", f"dated {item.published.isoformat()}, after now"))
    max_age = profile.value("window", "max_age_days")
    if max_age and now - item.published > timedelta(days=max_age):
        found.append(("window.max_age_days", f"dated {item.published.isoformat()}, more than {max_age} days ago"))
    return found


def feed_problems(profile: Profile, feed: FeedFacts) -> list[Broken]:
    """Every rule of `profile` the feed as a whole breaks."""
    found: list[tuple[str, str]] = []
    window, channel = profile.rule("window"), profile.rule("channel")
    if "max_count" in window and feed.items > window["max_count"]:
        found.append(("window.max_count", f"{feed.items} items; at most {window['max_count']}"))
    if "min_count" in window and feed.items < window["min_count"]:
        found.append(("window.min_count", f"{feed.items} items; at least {window['min_count']} wanted"))
    maximum = profile.value("bytes", "max")
    if maximum and feed.size > maximum:
        found.append(("bytes.max", f"{feed.size:,} bytes; at most {maximum:,}"))
    tag = profile.value("language", "tag")
    if tag and feed.language != tag:
        found.append(("language.tag", f"feed language is {feed.language!r}; {tag!r} wanted"))
    for name, text in (("title_max", feed.title), ("description_max", feed.description)):
        if name in channel and length(text) > channel[name]:
            found.append((f"channel.{name}", f"{length(text)} letters; at most {channel[name]}"))
    return [Broken(rule, message) for rule, message in found]
