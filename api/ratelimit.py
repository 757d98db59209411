"""The API's own per-key rate limit: the same rule as the Nginx gateway's, so that the API port
reached directly (it is open on loopback) is no way around it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class KeyBuckets:
    """A token bucket per key: `rate` requests per second sustained, bursts of `burst`. Only
    authenticated keys get a bucket, so their number is bounded by the configured keys. Used from
    the event loop only (no lock)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 when the request may go on; otherwise the seconds until it could."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(self.burst), updated=now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate
