"""Circuit breaker (pure): stop calling a provider that keeps failing, probe it later.

::

    closed ──(failure_threshold consecutive failures)──> open
    open ──(cooldown elapsed)──> half_open
    half_open ──(one probe allowed at a time)──> success: closed | failure: open

Every call takes ``now`` (any monotonic clock, seconds); the legal moves are the table
``TRANSITIONS`` and an event a state has no entry for raises :class:`IllegalTransition`
naming the state. A probe that never reports back frees its slot after another
``cooldown``, so a lost probe cannot wedge the breaker half-open; a probe that ends saying
nothing about the provider (cancelled, a local resource error) gives its slot back at once
(:meth:`CircuitBreaker.release`).

Which outcome of a call counts is the table ``VERDICTS`` (:func:`verdict_of`): only the
provider's own failures count against it; a deliberate answer (4xx, 429, a quota error,
streaming refused) proves it alive; a failure on our side (``local_resource``) is never
recorded. :func:`shared_breaker` is the process-wide registry: one breaker per provider,
shared by all sessions of the process.
"""

from __future__ import annotations

import enum
import math

from ..errors import ErrorKind, ProviderError
from .shared import SharedRegistry

__all__ = [
    "TRANSITIONS",
    "VERDICTS",
    "BreakerEvent",
    "BreakerState",
    "CircuitBreaker",
    "IllegalTransition",
    "Verdict",
    "clear_registry",
    "seconds_until",
    "shared_breaker",
    "verdict_of",
]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(enum.StrEnum):
    SUCCESS = "success"        # a call succeeded
    FAILURE = "failure"        # a call failed, below the threshold
    TRIP = "trip"              # a call failed and reached the threshold
    COOLDOWN = "cooldown"      # the cool-down elapsed
    PROBE = "probe"            # a probe was let through
    RELEASE = "release"        # a probe ended saying nothing about the provider


CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

_E = BreakerEvent
TRANSITIONS: dict[BreakerState, dict[BreakerEvent, BreakerState]] = {
    # A released probe may find the circuit already closed or reopened by other calls.
    CLOSED: {_E.SUCCESS: CLOSED, _E.FAILURE: CLOSED, _E.TRIP: OPEN, _E.RELEASE: CLOSED},
    # A late answer of a call started before the breaker opened changes nothing.
    OPEN: {_E.COOLDOWN: HALF_OPEN, _E.SUCCESS: OPEN, _E.FAILURE: OPEN, _E.RELEASE: OPEN},
    HALF_OPEN: {_E.PROBE: HALF_OPEN, _E.SUCCESS: CLOSED, _E.FAILURE: OPEN,
                _E.RELEASE: HALF_OPEN},
}


class Verdict(enum.StrEnum):
    """What the outcome of one call says about the provider's health."""

    FAILURE = "failure"    # the provider failed: counts towards opening the circuit
    SUCCESS = "success"    # the provider answered (even if it refused): it is alive
    NEUTRAL = "neutral"    # says nothing about the provider: never recorded


_V = Verdict
VERDICTS: dict[ErrorKind, Verdict] = {
    # the provider (or the way to it) failed
    ErrorKind.SERVER: _V.FAILURE,
    ErrorKind.OVERLOADED: _V.FAILURE,
    ErrorKind.TIMEOUT: _V.FAILURE,
    ErrorKind.CONNECTION: _V.FAILURE,
    ErrorKind.STREAM_INTERRUPTED: _V.FAILURE,
    # a deliberate answer: the provider is up; the request, the key or the pace was at fault
    ErrorKind.RATE_LIMITED: _V.SUCCESS,      # the rate limiter adapts instead
    ErrorKind.QUOTA: _V.SUCCESS,
    ErrorKind.AUTH: _V.SUCCESS,
    ErrorKind.PERMISSION: _V.SUCCESS,
    ErrorKind.NOT_FOUND: _V.SUCCESS,
    ErrorKind.BAD_REQUEST: _V.SUCCESS,
    ErrorKind.CONTEXT_LENGTH: _V.SUCCESS,
    ErrorKind.STREAMING_UNSUPPORTED: _V.SUCCESS,
    ErrorKind.MALFORMED_RESPONSE: _V.SUCCESS,  # not the protocol at all: a base_url to fix
    # our own machine ran out of something: not the provider's fault
    ErrorKind.LOCAL_RESOURCE: _V.NEUTRAL,
}


def verdict_of(error: ProviderError) -> Verdict:
    """The verdict on a failed call. A garbled 200 stream (``malformed_response`` marked
    worth another try) is a transfer that broke, so it counts like an interrupted stream."""
    if error.kind is ErrorKind.MALFORMED_RESPONSE and error.retry_safe:
        return Verdict.FAILURE
    return VERDICTS[error.kind]


class IllegalTransition(RuntimeError):
    """An event arrived in a state that has no move for it."""

    def __init__(self, state: BreakerState, event: BreakerEvent) -> None:
        self.state = state
        self.event = event
        super().__init__(f"circuit breaker: no transition for {event.value} in state {state.value}")


def seconds_until(at: float, now: float) -> float:
    """The wait from ``now`` to ``at`` such that ``now + wait >= at`` holds in floats (0.0
    when ``at`` has come): ``at - now`` alone can be one step short, and a sleeper that
    wakes one step early sees the same state again and loses an attempt to rounding."""
    wait = at - now
    if wait <= 0.0:
        return 0.0
    while now + wait < at:
        wait = math.nextafter(wait, math.inf)
    return wait


class CircuitBreaker:
    """closed → open after ``failure_threshold`` consecutive failures → half_open after
    ``cooldown`` seconds (one probe at a time) → closed on the probe's success, open again
    on its failure."""

    __slots__ = ("_failures", "_opened_at", "_probe_at", "_state", "cooldown",
                 "failure_threshold")

    def __init__(self, failure_threshold: int = 5, cooldown: float = 30.0) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.failure_threshold = failure_threshold
        self.cooldown = float(cooldown)
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None  # when the probe in flight was let through

    def _fire(self, event: BreakerEvent, now: float) -> BreakerState:
        try:
            new = TRANSITIONS[self._state][event]
        except KeyError:
            raise IllegalTransition(self._state, event) from None
        if new is OPEN and self._state is not OPEN:
            self._opened_at = now
        if new is not HALF_OPEN:
            self._probe_at = None
        if new is CLOSED and self._state is not CLOSED:
            self._failures = 0
        self._state = new
        return new

    def _advance(self, now: float) -> None:
        if self._state is OPEN and now >= self._opened_at + self.cooldown:
            self._fire(BreakerEvent.COOLDOWN, now)
        if (self._state is HALF_OPEN and self._probe_at is not None
                and now >= self._probe_at + self.cooldown):
            self._probe_at = None  # the probe never reported back: free its slot

    def state(self, now: float) -> BreakerState:
        """The state at ``now`` (open turns half_open once the cool-down has elapsed)."""
        self._advance(now)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in half_open this takes the single probe slot."""
        self._advance(now)
        if self._state is CLOSED:
            return True
        if self._state is HALF_OPEN and self._probe_at is None:
            self._fire(BreakerEvent.PROBE, now)
            self._probe_at = now
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until :meth:`allow` could say yes (0.0 if it would now): ``now +
        retry_in(now)`` is never short of that moment, so a caller that sleeps this long
        is let through (a plain subtraction can land one float step early)."""
        self._advance(now)
        if self._state is OPEN:
            return seconds_until(self._opened_at + self.cooldown, now)
        if self._state is HALF_OPEN and self._probe_at is not None:
            return seconds_until(self._probe_at + self.cooldown, now)
        return 0.0

    def record_success(self, now: float) -> None:
        """A call succeeded: resets the failure count; a probe's success closes the circuit."""
        self._advance(now)
        if self._state is CLOSED:
            self._failures = 0
        self._fire(BreakerEvent.SUCCESS, now)

    def release(self, now: float, probe_at: float) -> None:
        """A probe let through at ``probe_at`` ended saying nothing about the provider
        (cancelled, a local error): its slot is free again at once. Nothing happens when
        the slot has meanwhile passed to another probe or the state has moved on."""
        self._advance(now)
        if self._state is HALF_OPEN and self._probe_at == probe_at:
            self._fire(BreakerEvent.RELEASE, now)
            self._probe_at = None

    def record(self, verdict: Verdict, now: float, *, probe_at: float | None = None) -> None:
        """Record one call's verdict; ``probe_at`` is when it was let through if it was
        the half-open probe (a neutral probe then releases its slot)."""
        if verdict is Verdict.FAILURE:
            self.record_failure(now)
        elif verdict is Verdict.SUCCESS:
            self.record_success(now)
        elif probe_at is not None:
            self.release(now, probe_at)

    def probe_started_at(self, now: float) -> float | None:
        """When the probe in flight was let through (None: no probe in flight)."""
        self._advance(now)
        return self._probe_at if self._state is HALF_OPEN else None

    def record_failure(self, now: float) -> None:
        """A call failed: the threshold-th consecutive one (or any probe's) opens the circuit."""
        self._advance(now)
        if self._state is CLOSED:
            self._failures += 1
            tripped = self._failures >= self.failure_threshold
            self._fire(BreakerEvent.TRIP if tripped else BreakerEvent.FAILURE, now)
        else:
            self._fire(BreakerEvent.FAILURE, now)


_registry: SharedRegistry[CircuitBreaker] = SharedRegistry()


def shared_breaker(key: str, threshold: int, cooldown: float) -> CircuitBreaker:
    """The process-wide breaker for ``key`` (see ``ratelimit.limiter_key``); first caller's
    settings win."""
    return _registry.get(key, lambda: CircuitBreaker(threshold, cooldown))


def clear_registry() -> None:
    """Forget every shared breaker (tests)."""
    _registry.clear()
