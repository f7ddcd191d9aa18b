"""Per-credential request limits (pure): one token bucket per caller, and the headers.

Each credential (and, for requests that fail authentication, each client address) gets a
``resilience.ratelimit.TokenBucket`` of ``requests_per_minute`` tokens refilled at that rate
per minute. A request takes a token or is refused with the seconds until one is back. The
answer's headers follow common practice: ``x-ratelimit-limit`` (per minute),
``x-ratelimit-remaining`` (whole requests left now), ``x-ratelimit-reset`` (seconds until
the allowance is full again) and, on a refusal, ``retry-after`` (whole seconds, rounded up).

Nothing here reads a clock: every call takes ``now``. Buckets of callers idle long enough
to be full again are forgotten, so the table stays as small as the set of active callers.
"""

from __future__ import annotations

import math

import attrs

from ..resilience.ratelimit import TokenBucket

__all__ = ["Decision", "RequestLimits"]


@attrs.frozen
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int           # seconds until full
    retry_after: int     # seconds until one request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {"x-ratelimit-limit": str(self.limit),
               "x-ratelimit-remaining": str(self.remaining),
               "x-ratelimit-reset": str(self.reset)}
        if not self.allowed:
            out["retry-after"] = str(self.retry_after)
        return out


class RequestLimits:
    """Token buckets keyed by caller (see the module docstring)."""

    def __init__(self, requests_per_minute: int, *, max_idle_buckets: int = 10_000) -> None:
        self.per_minute = requests_per_minute
        self.rate = requests_per_minute / 60.0
        self._buckets: dict[str, TokenBucket] = {}
        self._max = max_idle_buckets

    def take(self, key: str, now: float) -> Decision:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket(self.per_minute, self.rate)
        wait = bucket.try_take(1.0, now)
        level = bucket.level(now)
        reset = math.ceil(max(0.0, bucket.capacity - level) / self.rate)
        return Decision(wait == 0.0, self.per_minute, max(0, math.floor(level)), reset,
                        0 if wait == 0.0 else max(1, math.ceil(wait)))

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.level(now) >= b.capacity]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
