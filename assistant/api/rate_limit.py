"""Request rate limits: a token bucket per key or client address (in this process; each replica limits its own)."""

from __future__ import annotations

import time
from threading import Lock


class RateLimiter:
    """`per_minute` requests a minute on average, bursts up to the same number; `allow` says whether one more may
    go now, or how many seconds until it may."""

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
