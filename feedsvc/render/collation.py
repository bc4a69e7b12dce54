"""Names in the order their readers expect: ICU's collation for the site's language (for Hindi,
Devanagari in dictionary order: अ before क before स before ह), not the order of code points or of
the Latin keys behind the names."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Iterable

from feedsvc.render.feeds.model import Scope

if TYPE_CHECKING:
    from icu import Collator


@lru_cache(maxsize=4)
def collator(language: str) -> Collator:
    # PyICU is imported here, at the first directory page: 7 MiB RSS (ICU's libraries and their data)
    # that a worker serving only feeds and pages never needs (bench row worker-rss-1m).
    from icu import Collator, Locale, UCollAttribute, UCollAttributeValue

    # Shared between threads: ICU's collators are safe for concurrent use of their const methods.
    collator = Collator.createInstance(Locale(language))
    # Numbers in names by their value: "विषय 2" before "विषय 10".
    collator.setAttribute(UCollAttribute.NUMERIC_COLLATION, UCollAttributeValue.ON)
    return collator


def by_name(scopes: Iterable[Scope], language: str) -> list[Scope]:
    """Scopes sorted by their names as `language` orders them; the key settles ties (two of one name)."""
    sort_key = collator(language).getSortKey
    return sorted(scopes, key=lambda scope: (sort_key(scope.name or scope.key), scope.key))
