"""The videos an article carries: players (YouTube, Vimeo) from its embeds and body frames, and its own
files (<video> in the body). Feeds mark such an article as a video item and list it in the video scope.

Read from the safe body (sanitize.py has made every attribute value double-quoted) and the record's
embeds, so a stored article answers the same at ingest, in the migration's backfill and when rendered.
"""
from __future__ import annotations

import html
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedsvc.ingest.players import youtube_id, youtube_player_url
from feedsvc.ingest.sanitize import clean_text

YOUTUBE_THUMBNAIL = "https://i.ytimg.com/vi/{id}/hqdefault.jpg"  # 480x360, exists for every video
YOUTUBE_THUMBNAIL_SIZE = (480, 360)
_VIMEO_ID = re.compile(r"^/(?:video/)?(\d{1,12})(?:/|$)")
_VIDEO = re.compile(r"<video((?:[^>\"]|\"[^\"]*\")*)>(.*?)</video>", re.DOTALL)
_IFRAME = re.compile(r"<iframe((?:[^>\"]|\"[^\"]*\")*)>", re.DOTALL)
_ATTRIBUTE = re.compile(r'\s([a-z-]+)="([^"]*)"')
_SOURCE = re.compile(r"<source((?:[^>\"]|\"[^\"]*\")*)>")


@dataclass(frozen=True)
class VideoRef:
    """One video: seen through a `player` page (Media RSS media:player) or a `file` (media:content url)."""
    title: str
    player: str | None = None
    file: str | None = None
    type: str | None = None              # the file's MIME type
    thumbnail: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    duration: int | None = None          # seconds, when the record says

    @property
    def url(self) -> str:
        return self.file or self.player or ""


def vimeo_player_url(url: str) -> str | None:
    """The embeddable player of a vimeo.com or player.vimeo.com video URL; None for anything else."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in ("vimeo.com", "www.vimeo.com", "player.vimeo.com"):
        return None
    found = _VIMEO_ID.match(parts.path)
    return f"https://player.vimeo.com/video/{found.group(1)}" if found else None


def _player(url: str, title: str, duration: int | None = None) -> VideoRef | None:
    video = youtube_id(url)
    if video:
        width, height = YOUTUBE_THUMBNAIL_SIZE
        return VideoRef(title, player=youtube_player_url(url), thumbnail=YOUTUBE_THUMBNAIL.format(id=video),
                        thumbnail_width=width, thumbnail_height=height, duration=duration)
    player = vimeo_player_url(url)
    return VideoRef(title, player=player, duration=duration) if player else None


def _attributes(text: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(text)}


def _file_type(url: str, given: str | None) -> str | None:
    if given:
        return given.split(";")[0].strip() or None
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed if guessed and guessed.startswith("video/") else None


def _files(body_html: str, title: str) -> list[VideoRef]:
    found = []
    for own, inner in _VIDEO.findall(body_html):
        attributes = _attributes(own)
        sources = [_attributes(source) for source in _SOURCE.findall(inner)]
        chosen = {"src": attributes["src"]} if attributes.get("src") else next(
            (s for s in sources if s.get("src")), None)
        if chosen:
            found.append(VideoRef(title, file=chosen["src"], type=_file_type(chosen["src"], chosen.get("type")),
                                  thumbnail=attributes.get("poster") or None))
    return found


def videos_in(embeds: list[dict], body_html: str, title: str) -> list[VideoRef]:
    """Every video of an article, each once: the record's player embeds, then the body's player frames
    and its own video files, in order. `title` names a video that has no title of its own."""
    unique: dict[str, VideoRef] = {}
    for video in _videos(embeds, body_html, title):
        if video.url not in unique:
            unique[video.url] = video
    return list(unique.values())


def _videos(embeds: list[dict], body_html: str, title: str) -> Iterator[VideoRef]:
    for embed in embeds:
        video = _player(embed["url"], _own_title(embed.get("title"), title), embed.get("duration"))
        if video is not None:
            yield video
    if "<iframe" in body_html:
        for own in _IFRAME.findall(body_html):
            video = _player(_attributes(own).get("src", ""), _own_title(_attributes(own).get("title"), title))
            if video is not None:
                yield video
    if "<video" in body_html:
        yield from _files(body_html, title)


def _own_title(given: str | None, article_title: str) -> str:
    """A player's own title as plain text (it becomes media:title and a JSON Feed attachment title, which
    readers treat as text: an embed titled '</script>' is no title), else the article's. Cleaned here,
    where stored embeds are read, so records stored before this rule render clean too."""
    return clean_text(given or "") or article_title


def has_video(embeds: list[dict], body_html: str) -> bool:
    """Whether an article carries a video: what puts it in the video scope (store.SCOPE_KINDS). Asked
    of every article written, twice: it stops at the first video."""
    return next(_videos(embeds, body_html, ""), None) is not None
