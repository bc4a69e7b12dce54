"""Cache purges: the surrogate keys a response is tagged with, and the purge endpoints told when they change.

Every response names what it holds (feedsvc/web/surrogate.py): a feed or listing its scope
("site", "section:<key>", "tag:<key>", "author:<key>"), a page, AMP page, embed card or oEmbed
answer its article ("article:<id>"). A write that changes scopes and articles puts one outbox row
per (endpoint, key) in its own transaction (feedsvc/publish/websub.py sends them, with retries),
so a CDN drops its copies of exactly what changed:

- Fastly: `POST {api}/service/{id}/purge/{key}` with `Fastly-Key`, one request per key;
- Cloudflare: `POST {api}/zones/{zone}/purge_cache` with `{"tags": [...]}` and a bearer token;
- any webhook: `POST {url}` with `{"keys": [...]}`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import quote

from feedsvc.config import ConfigError
from feedsvc.publish.outbound import post

ARTICLE_PREFIX = "article:"  # an article id never collides with a scope ("site", "section:x", ...)
CLOUDFLARE_TAGS_PER_CALL = 30


def surrogate_key(name: str) -> str:
    """A scope or article name as a key every CDN takes: printable ASCII, no space (Fastly's
    separator) and no comma (Cloudflare's); other characters percent-encoded as in a URL."""
    return quote(name, safe=":")


def article_key(article_id: str) -> str:
    return surrogate_key(ARTICLE_PREFIX + article_id)


def change_keys(scopes: Iterable[str], article_ids: Iterable[str] = ()) -> list[str]:
    """The keys a write changes: its scopes' feeds and listings, and its articles' pages."""
    return [surrogate_key(s) for s in sorted(scopes)] + [article_key(a) for a in sorted(set(article_ids))]


Send = Callable[[list[str], float, str], None]  # (keys, timeout, user agent); raises PublishError


@dataclass(frozen=True)
class Endpoint:
    target: str   # how the outbox names it (websub_outbox.hub_url); never holds a secret
    send: Send

    def __hash__(self):
        return hash(self.target)


def fastly(api: str, service: str, key: str) -> Endpoint:
    def send(keys: list[str], timeout: float, user_agent: str) -> None:
        for k in keys:
            post(f"{api}/service/{quote(service, safe='')}/purge/{quote(k, safe='')}", b"",
                 {"Fastly-Key": key, "Accept": "application/json", "User-Agent": user_agent}, timeout=timeout)
    return Endpoint(f"fastly:{service}", send)


def cloudflare(api: str, zone: str, token: str) -> Endpoint:
    def send(keys: list[str], timeout: float, user_agent: str) -> None:
        for start in range(0, len(keys), CLOUDFLARE_TAGS_PER_CALL):
            body = json.dumps({"tags": keys[start:start + CLOUDFLARE_TAGS_PER_CALL]}).encode()
            post(f"{api}/zones/{quote(zone, safe='')}/purge_cache", body,
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "User-Agent": user_agent},
                 timeout=timeout)
    return Endpoint(f"cloudflare:{zone}", send)


def webhook(url: str) -> Endpoint:
    def send(keys: list[str], timeout: float, user_agent: str) -> None:
        post(url, json.dumps({"keys": keys}).encode(), {"Content-Type": "application/json", "User-Agent": user_agent},
             timeout=timeout)
    return Endpoint(url, send)


def endpoints(config) -> tuple[Endpoint, ...]:
    """The purge endpoints the settings configure (none by default)."""
    found = []
    if config["PURGE_FASTLY_SERVICE"]:
        if not config["PURGE_FASTLY_KEY"]:
            raise ConfigError("FEEDSVC_PURGE_FASTLY_KEY: required with FEEDSVC_PURGE_FASTLY_SERVICE")
        found.append(fastly(config["PURGE_FASTLY_API"].rstrip("/"), config["PURGE_FASTLY_SERVICE"],
                            config["PURGE_FASTLY_KEY"]))
    if config["PURGE_CLOUDFLARE_ZONE"]:
        if not config["PURGE_CLOUDFLARE_TOKEN"]:
            raise ConfigError("FEEDSVC_PURGE_CLOUDFLARE_TOKEN: required with FEEDSVC_PURGE_CLOUDFLARE_ZONE")
        found.append(cloudflare(config["PURGE_CLOUDFLARE_API"].rstrip("/"), config["PURGE_CLOUDFLARE_ZONE"],
                                config["PURGE_CLOUDFLARE_TOKEN"]))
    found += [webhook(url) for url in dict.fromkeys(config["PURGE_WEBHOOKS"])]
    return tuple(found)
