"""Rendering is total: an article that cannot be rendered is left out of the document it is in.

Ingest checks every value with the renderers' own parsers; this is for records stored before those
checks, and for whatever a renderer still chokes on. A document of several articles (a feed, a
listing, a sitemap, the latest-headlines widget) builds each through `each_rendered`: a failing
article is left out and the document is made of the others. A document that *is* one article (its
page, its AMP page, its embed card) is built inside `whole_article`, which turns the failure into
`Unrenderable` for the view to answer as "temporarily unavailable".

Either way the failure is logged once per document kind, article and version — a bounded memory of
what was logged, so a document rebuilt on every request does not flood the log — and announced on
`skipped` (sender: the document kind), which feedsvc/ops/metrics.py counts.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterable, Iterator, TypeVar, overload

from blinker import Namespace
from sqlalchemy.exc import SQLAlchemyError

from feedsvc.ingest.records import Article

log = logging.getLogger(__name__)

# Sent once per article left out of a document being built; sender: the document kind.
skipped = Namespace().signal("feedsvc.article-skipped")
LOGGED_MAX = 10_000   # (kind, article, version) keys remembered; the oldest is forgotten first

T = TypeVar("T")
R = TypeVar("R")


class Unrenderable(Exception):
    """A document that is one article cannot be rendered from its stored record (already logged)."""

    def __init__(self, kind: str, article_id: str):
        super().__init__(f"article {article_id!r} cannot be rendered as {kind}")
        self.kind, self.article_id = kind, article_id


class LoggedOnce:
    """A bounded, thread-safe set: `first(key)` is true the first time a key is offered."""

    def __init__(self, size: int):
        self.size, self.keys, self.lock = size, OrderedDict(), threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self.lock:
            if key in self.keys:
                self.keys.move_to_end(key)
                return False
            self.keys[key] = None
            if len(self.keys) > self.size:
                self.keys.popitem(last=False)
            return True

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()


logged_once = LoggedOnce(LOGGED_MAX)


def version_of(article: Article) -> str:
    """A digest of the stored article: it changes with any edit (repr, as the failing value may not encode)."""
    return hashlib.blake2b(repr(article).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def left_out(kind: str, article_id: str, version: Hashable, error: BaseException) -> None:
    """Count one article left out of a `kind` document; log it the first time for this version.

    `version` is the stored row's version where the caller has the row, else `version_of(article)`.
    """
    skipped.send(kind)
    if logged_once.first((kind, article_id, version)):
        log.warning("article %r (version %s) left out of %s: it cannot be rendered: %s: %s",
                    article_id, version, kind, type(error).__name__, error)


def _article_key(article: Article) -> tuple[str, Hashable]:
    return article.id, version_of(article)


@overload
def each_rendered(kind: str, items: Iterable[Article], render: Callable[[Article], R], key: None = None) -> list[R]: ...


@overload
def each_rendered(kind: str, items: Iterable[T], render: Callable[[T], R],
                  key: Callable[[T], tuple[str, Hashable]]) -> list[R]: ...


def each_rendered(kind: str, items: Iterable, render: Callable[[Any], R],
                  key: Callable[[Any], tuple[str, Hashable]] | None = None) -> list[R]:
    """render(item) for every item it succeeds for; the others are left out (logged and counted).

    `key(item)` -> (article id, version) names the article an item stands for; by default the item
    is an Article. A store error is not the article's fault and propagates.
    """
    key = key or _article_key
    rendered = []
    for item in items:
        try:
            rendered.append(render(item))
        except SQLAlchemyError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever the renderer raised, the article is left out
            left_out(kind, *key(item), error)
    return rendered


@contextmanager
def whole_article(kind: str, article_id: str, version: Hashable) -> Iterator[None]:
    """Around building a document that is one article: a failure becomes Unrenderable (logged, counted)."""
    try:
        yield
    except SQLAlchemyError:
        raise
    except Exception as error:  # noqa: BLE001
        left_out(kind, article_id, version, error)
        raise Unrenderable(kind, article_id) from error
