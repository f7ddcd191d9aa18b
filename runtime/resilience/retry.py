"""Backoff math (pure): exponential backoff with full jitter, honouring retry-after.

``delay = uniform(0, min(max_delay, base_delay * 2**(attempt-1)))`` ("full jitter", AWS
architecture blog), unless the provider said how long to wait: then its ``retry-after``
wins (capped at ``max_wait`` so a hostile header cannot park a session for a day).
"""

from __future__ import annotations

import random

import attrs

from ..errors import ProviderError

__all__ = ["RetryPolicy"]


@attrs.frozen
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 300.0

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered delay after failed attempt ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1)))

    def delay(self, attempt: int, error: ProviderError | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if error is not None and error.retry_after is not None:
            return min(max(0.0, error.retry_after), self.max_wait)
        return float((rng or random).uniform(0.0, self.ceiling(attempt)))

    def should_retry(self, attempt: int, error: ProviderError) -> bool:
        """Whether a failure of attempt ``attempt`` (1-based) is worth another try."""
        return error.retryable and attempt < self.max_attempts
