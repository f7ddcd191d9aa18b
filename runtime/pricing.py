"""Prices and cost (pure).

``PRICES`` gives USD per million tokens for input, cached input (prompt-cache reads), cache
writes and output. Cost is computed from canonical usage, each token priced once:
``input_tokens - cache_read - cache_write`` at the input price, cache reads at the cached
price, cache writes at the cache-write price, and ``output_tokens`` (reasoning included) at
the output price. Users add or override models with ``pricing:`` in agent.yaml, which
decodes straight into ``Price``. Provider kinds that cost nothing (``local``, ``scripted``:
``runtime.providers.kinds``) are priced by ``pricing:`` alone, and at zero without an entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

import msgspec

from .model import Message, Usage

__all__ = ["PRICES", "Price", "PriceTable", "cost_of", "estimate_tokens"]

_USD = Annotated[float, msgspec.Meta(ge=0)]


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """USD per million tokens (``pricing.<model>`` in agent.yaml); the cache prices default
    to the input price."""

    input: _USD
    output: _USD
    cached_input: _USD | None = None
    cache_write: _USD | None = None

    def cost(self, u: Usage) -> float:
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        fresh = max(0, u.input_tokens - u.cache_read_tokens - u.cache_write_tokens)
        return (fresh * self.input + u.cache_read_tokens * cached
                + u.cache_write_tokens * write + u.output_tokens * self.output) / 1_000_000


def _p(i: float, o: float, c: float | None = None, w: float | None = None) -> Price:
    return Price(i, o, c, w)


# USD per million tokens (list prices, November 2026 tables of each vendor).
PRICES: dict[str, Price] = {
    "gpt-5": _p(1.25, 10.0, 0.125), "gpt-5-mini": _p(0.25, 2.0, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005), "gpt-5-pro": _p(15.0, 120.0),
    "gpt-4.1": _p(2.0, 8.0, 0.50), "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025), "gpt-4o": _p(2.50, 10.0, 1.25),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075), "o1": _p(15.0, 60.0, 7.50),
    "o1-mini": _p(1.10, 4.40, 0.55), "o3": _p(2.0, 8.0, 0.50), "o3-mini": _p(1.10, 4.40, 0.55),
    "o4-mini": _p(1.10, 4.40, 0.275),
    "claude-opus-4-5": _p(5.0, 25.0, 0.50, 6.25), "claude-opus-4-1": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": _p(15.0, 75.0, 1.50, 18.75), "claude-sonnet-4-5": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": _p(3.0, 15.0, 0.30, 3.75), "claude-3-7-sonnet": _p(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": _p(1.0, 5.0, 0.10, 1.25), "claude-3-5-haiku": _p(0.80, 4.0, 0.08, 1.0),
    "deepseek-chat": _p(0.28, 0.42, 0.028), "deepseek-reasoner": _p(0.28, 0.42, 0.028),
    "mistral-large": _p(2.0, 6.0), "mistral-small": _p(0.10, 0.30),
}

_DATE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


def _candidates(model: str) -> list[str]:
    name = model.lower().split("/")[-1].split(":")[0]
    name = name.replace("claude-sonnet-4.5", "claude-sonnet-4-5").replace(".", "-") \
        if name.startswith("claude") else name
    out = [name]
    bare = _DATE.sub("", name)
    if bare != name:
        out.append(bare)
    return out


class PriceTable:
    """Looks a model up: exact name, then without a provider prefix or date suffix, then
    the longest known prefix (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). ``extra``
    (the user's ``pricing:``) comes before the built-in table."""

    def __init__(self, extra: Mapping[str, Price] | None = None) -> None:
        user = {k.lower(): v for k, v in (extra or {}).items()}
        self._all = _Index({**PRICES, **user})
        self._user = _Index(user)

    def price(self, model: str, *, builtin: bool = True) -> Price | None:
        """The price of ``model``; with ``builtin=False`` only the user's entries count
        (a free kind's model is priced by ``pricing:`` or not at all)."""
        return (self._all if builtin else self._user).find(model)

    def cost(self, model: str, usage: Usage, *, builtin: bool = True) -> float | None:
        """USD for ``usage`` on ``model``; None when the model has no known price."""
        price = self.price(model, builtin=builtin)
        return None if price is None else price.cost(usage)


class _Index:
    """Prices by model name, with the keys longest first for the prefix match."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self.prices = prices
        self.keys = sorted(prices, key=len, reverse=True)

    def find(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        for cand in _candidates(model):
            if cand in self.prices:
                return self.prices[cand]
            for key in self.keys:
                if cand.startswith(key + "-"):
                    return self.prices[key]
        return None


def estimate_tokens(messages: list[Message]) -> int:
    """A cheap guess of the tokens of some messages before a provider counts them: four
    bytes of their canonical JSON a token (used where the real count is not known yet: the
    rate limiter's reservation, the budget check before a request)."""
    return len(msgspec.json.encode(messages)) // 4


def cost_of(model: str, usage: Usage, table: PriceTable | None = None) -> float | None:
    return (table or PriceTable()).cost(model, usage)
