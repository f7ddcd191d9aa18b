"""Rate limiting (pure): token buckets for requests and tokens per minute.

A :class:`TokenBucket` holds up to ``capacity`` tokens and refills ``refill_per_second``;
``try_take(n, now)`` either takes ``n`` (and returns 0.0) or returns the seconds after which
it could. A :class:`RateLimiter` combines a request bucket and a token bucket for one
provider, corrects its token estimate after each response (``settle``) and adapts to the
provider's own view of what remains (``observe_headers``): until the provider's reset time
the buckets never hold more than the provider said remains; a 429's ``retry-after``
(``hold``) stops every request until then.

Nothing here reads a clock or sleeps: every call takes ``now`` (any monotonic clock, in
seconds), so the arithmetic is deterministic and tested without I/O. :func:`acquire` is the
one trio-side helper; it imports trio lazily, so this module stays importable without it.
:func:`shared_limiter` is the process-wide registry: every session of the process that talks
to the same provider (name + base_url + key) shares one limiter.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from .shared import SharedRegistry

__all__ = [
    "RateLimiter",
    "TokenBucket",
    "acquire",
    "clear_registry",
    "header_caps",
    "limiter_key",
    "parse_duration",
    "shared_limiter",
]

# A grant is allowed when the level is short of ``n`` by at most this much: waiting exactly
# the returned delay then always succeeds despite floating-point rounding.
_EPS = 1e-9


class TokenBucket:
    """``capacity`` tokens at most, refilled at ``refill_per_second``; ``math.inf`` = no limit.

    The level only goes below zero through :meth:`debit` (a response that used more than
    was reserved): later takes then wait for the debt to be paid back. ``try_take`` never
    makes the level negative and never returns a negative wait.
    """

    __slots__ = ("_cap_level", "_cap_until", "_last", "_level", "capacity", "rate")

    def __init__(self, capacity: float, refill_per_second: float) -> None:
        if not capacity > 0 or not refill_per_second > 0:
            raise ValueError("capacity and refill_per_second must be positive")
        self.capacity = float(capacity)
        self.rate = float(refill_per_second)
        self._level = self.capacity
        self._last: float | None = None
        # The provider's word: at most ``_cap_level`` remain until ``_cap_until``.
        self._cap_level = math.inf
        self._cap_until = -math.inf

    def _refill(self, now: float) -> None:
        last = self._last
        if last is None or now > last:
            if last is not None and self._level < self.capacity:
                # now > last, so an infinite rate gives inf (then capacity), never nan
                level = self._level + (now - last) * self.rate
                self._level = level if level < self.capacity else self.capacity
            self._last = now
        if self._cap_until <= now and self._cap_level != math.inf:
            self._cap_level = math.inf

    def level(self, now: float) -> float:
        """Tokens available at ``now`` (the provider's cap included)."""
        self._refill(now)
        return min(self._level, self._cap_level)

    def wait_for(self, n: float, now: float) -> float:
        """Seconds until ``n`` tokens could be taken (0.0 if now); takes nothing."""
        if n > self.capacity:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.capacity}")
        self._refill(now)
        wait = 0.0
        if self._level + _EPS * max(1.0, n) < n:
            wait = (n - self._level) / self.rate
        if self._cap_level + _EPS * max(1.0, n) < n:
            # The provider refills everything at its reset; our own bucket may still be short.
            wait = max(wait, self._cap_until - now)
        return max(0.0, wait)

    def take(self, n: float, now: float) -> None:
        """Take ``n`` tokens (after :meth:`wait_for` said 0: the level stays >= 0)."""
        self._refill(now)
        self._take(n)

    def _take(self, n: float) -> None:
        level = self._level - n
        # Within the rounding slack of wait_for, land on 0 rather than a hair below it.
        self._level = 0.0 if -_EPS * max(1.0, n) <= level < 0.0 else level
        if self._cap_level != math.inf:
            self._cap_level = max(0.0, self._cap_level - n)

    def try_take(self, n: float, now: float) -> float:
        """Take ``n`` tokens and return 0.0, or return the seconds to wait until it would."""
        wait = self.wait_for(n, now)
        if wait == 0.0:
            self._take(n)
        return wait

    def credit(self, n: float, now: float) -> None:
        """Give back ``n`` tokens (a reservation that was too large), up to the capacity."""
        self._refill(now)
        self._level = min(self.capacity, self._level + n)

    def debit(self, n: float, now: float) -> None:
        """Take ``n`` more tokens already spent; the level may go into debt (not below -capacity)."""
        self._refill(now)
        self._level = max(-self.capacity, self._level - n)
        if self._cap_level != math.inf:
            self._cap_level = max(0.0, self._cap_level - n)

    def cap(self, remaining: float, until: float, now: float) -> None:
        """The provider says ``remaining`` tokens are left until ``until``: hold to it."""
        self._refill(now)
        remaining = max(0.0, remaining)
        if until > now:
            self._cap_level, self._cap_until = remaining, until
        else:
            self._level = min(self._level, remaining)


_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
# Go's time.Duration.String() as OpenAI sends it: "1h2m3.5s", "6m0s", "20ms", "150µs".
_DURATION = re.compile("".join(f"(?:{_NUM}{unit})?" for unit in
                               ("d", "h", "m", "s", "ms", "(?:us|µs)", "ns")))
_UNITS = (86400.0, 3600.0, 60.0, 1.0, 1e-3, 1e-6, 1e-9)


@functools.lru_cache(maxsize=512)
def parse_duration(text: str) -> float | None:
    """Seconds in an OpenAI reset duration ("6m0s", "1.5s", "20ms", "1h2m") or a bare number."""
    text = text.strip()
    if not text:
        return None
    if text[-1].isdigit():
        try:
            value = float(text)
        except ValueError:
            return None
        return max(0.0, value) if math.isfinite(value) else None
    m = _DURATION.fullmatch(text)
    if m is None:
        return None
    return sum(float(v) * u for v, u in zip(m.groups(), _UNITS, strict=True) if v is not None)


@functools.lru_cache(maxsize=512)
def _epoch(text: str) -> float | None:
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return stamp.timestamp()


def _parse_timestamp(text: str, wall: float) -> float | None:
    """Seconds until an RFC 3339 reset timestamp (Anthropic); a duration is accepted too."""
    text = text.strip()
    if len(text) < 10 or text[4:5] != "-":
        return parse_duration(text)
    epoch = _epoch(text)
    return None if epoch is None else max(0.0, epoch - wall)


def _parse_openai_reset(text: str, wall: float) -> float | None:
    return parse_duration(text)


_Reset = Callable[[str, float], "float | None"]
# remaining header -> (bucket, its reset header, how that reset is written)
_REMAINING: dict[str, tuple[str, str, _Reset]] = {
    "x-ratelimit-remaining-requests":
        ("requests", "x-ratelimit-reset-requests", _parse_openai_reset),
    "x-ratelimit-remaining-tokens":
        ("tokens", "x-ratelimit-reset-tokens", _parse_openai_reset),
    "anthropic-ratelimit-requests-remaining":
        ("requests", "anthropic-ratelimit-requests-reset", _parse_timestamp),
    "anthropic-ratelimit-tokens-remaining":
        ("tokens", "anthropic-ratelimit-tokens-reset", _parse_timestamp),
    "anthropic-ratelimit-input-tokens-remaining":
        ("tokens", "anthropic-ratelimit-input-tokens-reset", _parse_timestamp),
    "anthropic-ratelimit-output-tokens-remaining":
        ("tokens", "anthropic-ratelimit-output-tokens-reset", _parse_timestamp),
}


class RateLimiter:
    """Requests and tokens per minute for one provider; ``None`` = that dimension unlimited.

    Each bucket's capacity is its per-minute limit (a full minute's burst) and it refills at
    limit/60 per second, so any 60 s window grants at most twice the limit and any long run
    averages the limit. A single request estimated above the token capacity is clamped to
    it (it waits for a full bucket and empties it) rather than waiting forever.

    ``token_headers=False`` ignores the providers' token counts (a provider with no
    configured limit is paced by its 429s and request counts only: the token headers are
    read against an estimate that reserves the whole ``max_tokens``, which would make
    requests wait that nobody asked to be limited).
    """

    __slots__ = ("requests", "token_headers", "tokens")

    def __init__(self, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, *,
                 token_headers: bool = True) -> None:
        self.requests = _bucket(requests_per_minute)
        self.tokens = _bucket(tokens_per_minute)
        self.token_headers = token_headers

    def _clamp(self, tokens: float) -> float:
        return min(max(0.0, float(tokens)), self.tokens.capacity)

    def reserve(self, tokens_estimate: float, now: float) -> float:
        """Seconds to wait; when 0.0 one request and ``tokens_estimate`` tokens are taken."""
        n = self._clamp(tokens_estimate)
        wait = max(self.requests.wait_for(1.0, now), self.tokens.wait_for(n, now))
        if wait == 0.0:  # both buckets were just refilled at ``now``
            self.requests._take(1.0)
            self.tokens._take(n)
        return wait

    def settle(self, actual_tokens: float, now: float, *, estimate: float) -> None:
        """Correct a granted reservation of ``estimate`` tokens to what was really used."""
        delta = max(0.0, float(actual_tokens)) - self._clamp(estimate)
        if delta < 0:
            self.tokens.credit(-delta, now)
        elif delta > 0:
            self.tokens.debit(delta, now)

    def hold(self, seconds: float, now: float) -> None:
        """The provider answered 429 with ``retry-after``: no request goes out before
        ``now + seconds`` (every session sharing this limiter waits)."""
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        bucket, until = self.requests, now + seconds
        if bucket.level(now) == 0.0 and bucket._cap_until >= until:
            return  # already held at least as long (a header or an earlier 429)
        bucket.cap(0.0, until, now)

    def observe_headers(self, headers: Mapping[str, str], now: float,
                        wall: float | None = None) -> None:
        """Adapt to ``x-ratelimit-*`` / ``anthropic-ratelimit-*`` response headers.

        ``wall`` is the wall-clock time (``time.time()``) matching ``now``, used to turn an
        RFC 3339 reset timestamp into a delay. Unparsable values are ignored.
        """
        for bucket, (remaining, delay) in header_caps(headers, wall).items():
            if bucket == "tokens" and not self.token_headers:
                continue
            target = self.requests if bucket == "requests" else self.tokens
            target.cap(remaining, now + delay if delay is not None else now, now)


def header_caps(headers: Mapping[str, str], wall: float | None = None
                ) -> dict[str, tuple[float, float | None]]:
    """What rate-limit response headers say, per bucket (``requests``, ``tokens``):
    ``(remaining, seconds until the reset or None)``, the tightest when several headers
    speak of one bucket. ``wall`` is the wall-clock time of the response."""
    found = {k.lower(): v for k, v in headers.items() if "ratelimit" in k.lower()}
    if not found:
        return {}
    wall_now = time.time() if wall is None else wall
    best: dict[str, tuple[float, float | None]] = {}
    for header, (bucket, reset_header, parse_reset) in _REMAINING.items():
        raw = found.get(header)
        if raw is None:
            continue
        try:
            remaining = float(raw)
        except ValueError:
            continue
        if not math.isfinite(remaining):
            continue
        reset_raw = found.get(reset_header)
        delay = parse_reset(reset_raw, wall_now) if reset_raw is not None else None
        old = best.get(bucket)
        if old is None or remaining < old[0] or (remaining == old[0]
                                                 and (delay or 0.0) > (old[1] or 0.0)):
            best[bucket] = (remaining, delay)
    return best


def _bucket(per_minute: float | None) -> TokenBucket:
    if per_minute is None:
        return TokenBucket(math.inf, math.inf)
    if not per_minute > 0:
        raise ValueError(f"a per-minute limit must be positive, not {per_minute}")
    return TokenBucket(per_minute, per_minute / 60.0)


_registry: SharedRegistry[RateLimiter] = SharedRegistry()


def limiter_key(provider: str, base_url: str, api_key: str | None) -> str:
    """The registry key of a provider: name, base_url and a hash of the key (never the key)."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    return f"{provider}|{base_url.rstrip('/')}|{digest}"


def shared_limiter(key: str, rpm: float | None, tpm: float | None, *,
                   token_headers: bool = True) -> RateLimiter:
    """The process-wide limiter for ``key``; the first caller's limits win."""
    return _registry.get(key, lambda: RateLimiter(rpm, tpm, token_headers=token_headers))


def clear_registry() -> None:
    """Forget every shared limiter (tests)."""
    _registry.clear()


async def acquire(limiter: RateLimiter, tokens: float, *,
                  clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], Awaitable[object]] | None = None) -> float:
    """Wait (never fail) until ``limiter`` grants a request of ``tokens``; the seconds waited."""
    if clock is None or sleep is None:
        import trio

        clock = clock or trio.current_time
        sleep = sleep or trio.sleep
    waited = 0.0
    while True:
        wait = limiter.reserve(tokens, clock())
        if wait <= 0.0:
            return waited
        await sleep(wait)
        waited += wait
