"""Video URLs: which YouTube video a URL names, where it starts, and its watch page and player."""
from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")


# Pure; asked of every embed and body link of every entry each time a feed is built.
@lru_cache(maxsize=4096)
def youtube_id(url: str) -> str | None:
    """The video id of a YouTube watch, short, embed or shorts URL; None for anything else."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    candidate = None
    if host in ("youtu.be", "www.youtu.be"):
        candidate = parts.path.lstrip("/").split("/")[0]
    elif any(host == d or host.endswith("." + d) for d in ("youtube.com", "youtube-nocookie.com")):
        if parts.path == "/watch":
            candidate = parse_qs(parts.query).get("v", [None])[0]
        else:
            segments = parts.path.strip("/").split("/")
            if len(segments) >= 2 and segments[0] in ("embed", "shorts", "v", "live"):
                candidate = segments[1]
    if candidate and _YOUTUBE_ID.match(candidate):
        return candidate
    return None


_DURATION = re.compile(r"(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s?)?")


def youtube_start(url: str) -> int | None:
    """The second a YouTube URL starts at (`start=42`, `t=42`, `t=42s`, `t=1m2s`, `#t=42`), else None."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    for value in (*query.get("start", []), *query.get("t", []), *parse_qs(parts.fragment).get("t", [])):
        found = _DURATION.fullmatch(value.strip())
        if found and any(found.groups()):
            hours, minutes, seconds = (int(group or 0) for group in found.groups())
            return (hours * 3600 + minutes * 60 + seconds) or None
    return None


def youtube_watch_url(url: str) -> str | None:
    """The watch page of the YouTube video `url` names, at the time it starts at; None if it names none."""
    return _youtube_at_start(url, "https://www.youtube.com/watch?v={video}", "&t={start}s")


def youtube_player_url(url: str) -> str | None:
    """The embeddable player of the YouTube video `url` names, at its start time; None if it names none."""
    return _youtube_at_start(url, "https://www.youtube.com/embed/{video}", "?start={start}")


@lru_cache(maxsize=4096)
def _youtube_at_start(url: str, address: str, start_parameter: str) -> str | None:
    video = youtube_id(url)
    if video is None:
        return None
    start = youtube_start(url)
    return address.format(video=video) + (start_parameter.format(start=start) if start else "")
