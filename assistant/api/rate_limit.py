"""Request rate limits as token buckets (`per_minute` requests a minute on average, bursts up to as many): in this
process when the store is a SQLite file (one server), in the database when it is PostgreSQL, so that every replica
counts against the same bucket (a key's limit holds whichever replica its requests reach)."""

from __future__ import annotations

import time
from threading import Lock


class RateLimiter:
    """Buckets kept in this process; `allow` says whether one more request may go now, or how many seconds until
    it may."""

    shared = False

    def __init__(self, per_minute: int, max_tracked: int = 100_000):
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_tracked = max_tracked
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, last refill)
        self._lock = Lock()

    def allow(self, who: str) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                allowed, wait = True, 0.0
            else:
                self._buckets[who] = (tokens, now)
                allowed, wait = False, (1 - tokens) / self.rate
            if len(self._buckets) > self.max_tracked:  # forget the oldest half (full buckets by now)
                for stale in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.max_tracked // 2]:
                    del self._buckets[stale]
        return allowed, wait


class SharedRateLimiter:
    """Buckets in the database (`store.coordination`), named `namespace:who`: one statement a request, timed by
    the database's clock."""

    shared = True

    def __init__(self, coordination, namespace: str, per_minute: int):
        self.coordination, self.namespace, self.per_minute = coordination, namespace, per_minute

    def allow(self, who: str) -> tuple[bool, float]:
        return self.coordination.take(f"{self.namespace}:{who}"[:200], self.per_minute)


def rate_limiter(store, namespace: str, per_minute: int) -> RateLimiter | SharedRateLimiter:
    """Shared buckets on PostgreSQL (replicas), this process's own on SQLite."""
    if store.engine.dialect.name == "postgresql":
        return SharedRateLimiter(store.coordination, namespace, per_minute)
    return RateLimiter(per_minute)
