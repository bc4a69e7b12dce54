"""Redis rate-limit counters taken in small leases by a busy process: one round trip per lease, not per hit.

limits' RedisStorage increments a window's counter in Redis on every hit (one Lua call, a network round
trip). A poller that fetches a write's fan-out (196 feeds in a second or two) made two such calls per
feed, its ceiling and its render budget: about a fifth of the request path's Python work and a wait on
the network for each feed (bench row `fanout`, cProfile of the gunicorn workers, 2026-12-07).

`LeasedRedisStorage` keeps limits' counters and their meaning, and only changes how often it asks:
- a key hit again while its previous lease was used up within LEASE_SECONDS takes the next lease twice
  as big (1, 2, 4, ... at most MAX_LEASE, and at most the limit's LIMIT_SHARE-th part): one INCRBY for
  the whole lease, on the same shared counter, so every process's hits still add up in Redis;
- each hit of a lease is answered the count it would have had in the counter (the lease's top minus what
  is left), so a limit refuses at exactly the same hit as when counted one by one;
- a lease not used up within LEASE_SECONDS is dropped; its unused units stay counted (a client that
  stops is charged up to a lease more, never less), and a lease cannot outlive a window by more than
  LEASE_SECONDS. Either way the error is at most one lease per process, under one percent of the limit;
- a key hit rarely (or a small limit: under 2 * LIMIT_SHARE, such as failed API authentication's
  10/minute) is counted one by one, exactly as before.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from limits.storage import RedisStorage

LEASE_SECONDS = 1.0
MAX_LEASE = 64
LIMIT_SHARE = 100   # a lease is at most this part of the limit it counts for
MAX_KEYS = 10_000   # leases held at once (clients × windows); beyond it the expired ones are swept
clock = time.monotonic


@dataclass
class Lease:
    top: int        # the counter's value in Redis after this lease was taken
    left: int       # units of it not handed out yet
    size: int
    until: float    # monotonic time after which it is dropped


def limit_amount(key: str) -> int:
    """The limit a counter key counts for: limits' RateLimitItem.key_for ends '/<amount>/<multiples>/<granularity>'."""
    parts = key.rsplit("/", 3)
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else 0


class LeasedRedisStorage(RedisStorage):
    """limits' Redis storage (same URIs behind 'feedsvc-'), counting busy keys in leases (module docstring)."""
    STORAGE_SCHEME = ["feedsvc-redis", "feedsvc-rediss"]

    def __init__(self, uri: str, **options):
        super().__init__(uri.removeprefix("feedsvc-"), **options)
        self._leases: dict[str, Lease] = {}
        self._lease_lock = threading.Lock()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = clock()
        with self._lease_lock:
            lease = self._leases.get(key)
            if lease is not None and lease.until > now and lease.left >= amount:
                lease.left -= amount
                return lease.top - lease.left
            size = self._next_size(key, amount, lease, now)
        top = super().incr(key, expiry, size)
        with self._lease_lock:
            if len(self._leases) >= MAX_KEYS:
                self._sweep(now)
            # Two hits that took a lease at once: the later one's is kept, the other's rest stays counted.
            self._leases[key] = Lease(top, size - amount, size, now + LEASE_SECONDS)
        return top - (size - amount)

    @staticmethod
    def _next_size(key: str, amount: int, lease: Lease | None, now: float) -> int:
        """Twice the last lease when it was used up while still valid; else one hit's worth."""
        if lease is None or lease.until <= now:
            return amount
        cap = min(MAX_LEASE, limit_amount(key) // LIMIT_SHARE)
        return max(amount, min(cap, lease.size * 2))

    def _sweep(self, now: float) -> None:
        for key in [key for key, lease in self._leases.items() if lease.until <= now]:
            del self._leases[key]
        if len(self._leases) >= MAX_KEYS:
            self._leases.clear()

    def clear(self, key: str) -> None:
        with self._lease_lock:
            self._leases.pop(key, None)
        super().clear(key)

    def reset(self) -> int | None:
        with self._lease_lock:
            self._leases.clear()
        return super().reset()
