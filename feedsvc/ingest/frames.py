"""Which third-party frames an article body may show, and with which sandbox and referrer policy.

A frame draws a third party's page inside ours: it can show a fake sign-in form under our
headline and learns the article's URL from the Referer. So a frame survives only when its `src`
is one of the player/embed addresses allowed by the FRAME_HOSTS setting; every other frame becomes
a link (sanitize.py). The same list is the pages' CSP `frame-src` (web/security_headers.py), so a
body stored before this rule existed still cannot load anything else.

An entry is a host (`player.vimeo.com`) or a host with a path prefix (`www.google.com/maps/embed`,
which allows that path and everything below it). Hosts known here get the sandbox flags and the
referrer policy their player needs; any other host the operator adds gets OTHER_PLAYER.
No player ever gets allow-top-navigation: a frame must not be able to replace our page.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna


@dataclass(frozen=True)
class Player:
    """What an allowed frame is given: sandbox flags, referrer policy, permissions (`allow`)."""
    sandbox: str
    referrer_policy: str
    allow: str = ""


# Popups opened by a player (the "watch on YouTube" logo, a profile link) are the provider's own
# pages in a new tab; inside the sandbox they would lose scripts and forms, so they escape it.
_SCRIPTED = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox"
# Video players: allow-presentation for casting. YouTube refuses to play without a Referer (error
# 153) and Vimeo's domain-restricted videos check it: they get the origin, never the article path.
VIDEO_PLAYER = Player(_SCRIPTED + " allow-presentation", "strict-origin-when-cross-origin",
                      "encrypted-media; picture-in-picture; fullscreen")
# Posts and audio work without any Referer.
POST = Player(_SCRIPTED, "no-referrer")
AUDIO_PLAYER = Player(_SCRIPTED, "no-referrer", "encrypted-media")
# Maps Embed API keys are restricted by referring site.
MAP = Player(_SCRIPTED, "strict-origin-when-cross-origin", "fullscreen")
OTHER_PLAYER = Player(_SCRIPTED, "strict-origin-when-cross-origin")

KNOWN_PLAYERS = {
    "www.youtube.com/embed": VIDEO_PLAYER,
    "www.youtube-nocookie.com/embed": VIDEO_PLAYER,
    "player.vimeo.com/video": VIDEO_PLAYER,
    "www.facebook.com/plugins": Player(_SCRIPTED + " allow-presentation", "no-referrer",
                                       "encrypted-media; picture-in-picture; fullscreen"),
    "platform.twitter.com/embed": POST,
    "www.instagram.com": POST,  # embeds are /p/<code>/embed, /reel/<code>/embed
    "open.spotify.com/embed": AUDIO_PLAYER,
    "www.google.com/maps/embed": MAP,
}
DEFAULT_FRAME_HOSTS = tuple(KNOWN_PLAYERS)

# Lower-case DNS names and plain path segments only: an entry becomes a CSP source expression, where
# a space, ";" or "," would start another source or directive.
_ENTRY = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(/[A-Za-z0-9_~-]+)*")
# Dot segments and encoded separators: a browser normalises them away, so "/embed/../x" is not below /embed.
_PATH_TRICKS = re.compile(r"(^|/)\.{1,2}(/|$)|%2[ef]|%5c|\\", re.IGNORECASE)


class FrameHostError(ValueError):
    """A FRAME_HOSTS entry that is not a host or host/path."""


@dataclass(frozen=True)
class FramePolicy:
    entries: tuple[str, ...]

    def player_for(self, src: str) -> Player | None:
        """How a frame of `src` is shown, or None when it may not be a frame at all."""
        try:
            parts = urlsplit(src.strip())
            port = parts.port
        except ValueError:
            return None
        if parts.scheme.lower() != "https" or parts.username is not None or port not in (None, 443) \
                or _PATH_TRICKS.search(parts.path):
            return None
        host = (parts.hostname or "").lower()
        for entry in self.entries:
            entry_host, slash, prefix = entry.partition("/")
            below = not slash or parts.path == "/" + prefix or parts.path.startswith("/" + prefix + "/")
            if host == entry_host and below:
                return KNOWN_PLAYERS.get(entry, OTHER_PLAYER)
        return None

    def csp_sources(self) -> list[str]:
        """CSP source expressions for `frame-src`; a path source without a final "/" matches that path only."""
        sources = []
        for entry in self.entries:
            sources.append(f"https://{entry}")
            if "/" in entry:
                sources.append(f"https://{entry}/")
        return sources


@functools.lru_cache(maxsize=8)
def frame_policy(entries: tuple[str, ...] = DEFAULT_FRAME_HOSTS) -> FramePolicy:
    """The policy of a FRAME_HOSTS value; an entry that is not a host or host/path raises FrameHostError."""
    for entry in entries:
        if not _ENTRY.fullmatch(entry):
            raise FrameHostError(f"{entry!r} is not a host name or host/path (lower-case, no scheme, port "
                                 f"or query)")
    return FramePolicy(tuple(entries))


# Names readers know a provider by, for the link that stands in for a frame or embed; by host
# suffix, the longest match winning (maps.google.com before google.com).
PROVIDER_NAMES = {
    "youtube.com": "YouTube", "youtu.be": "YouTube", "youtube-nocookie.com": "YouTube",
    "vimeo.com": "Vimeo", "facebook.com": "Facebook", "fb.watch": "Facebook",
    "twitter.com": "X (Twitter)", "x.com": "X (Twitter)", "instagram.com": "Instagram",
    "spotify.com": "Spotify", "soundcloud.com": "SoundCloud", "dailymotion.com": "Dailymotion",
    "maps.google.com": "Google Maps", "google.com": "Google", "openstreetmap.org": "OpenStreetMap",
    "jiosaavn.com": "JioSaavn", "gaana.com": "Gaana", "linkedin.com": "LinkedIn",
    "threads.net": "Threads", "reddit.com": "Reddit", "tiktok.com": "TikTok",
}


# The link that stands in for an entry of a record's `embeds` in feeds and on AMP pages, by provider.
EMBED_LABELS = {
    "youtube": "YouTube पर वीडियो देखें",
    "vimeo": "Vimeo पर वीडियो देखें",
    "twitter": "X (Twitter) पर पोस्ट देखें",
    "instagram": "Instagram पर पोस्ट देखें",
    "facebook": "Facebook पर पोस्ट देखें",
}


def embed_label(provider: str, url: str) -> str:
    """The text of the link to an embed: by its provider, else by the name its URL's host goes by."""
    return EMBED_LABELS.get(provider) or f"{provider_name(url)} पर देखें"


def provider_name(url: str) -> str:
    """The provider a reader knows `url` by ("Google Maps"), else its host as people read it."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return url
    if host.endswith("google.com") and urlsplit(url).path.startswith("/maps"):
        return "Google Maps"
    for suffix in sorted(PROVIDER_NAMES, key=len, reverse=True):
        if host == suffix or host.endswith("." + suffix):
            return PROVIDER_NAMES[suffix]
    return _readable_host(host) or url


def _readable_host(host: str) -> str:
    try:
        return idna.decode(host) if "xn--" in host else host
    except idna.IDNAError:
        return host
