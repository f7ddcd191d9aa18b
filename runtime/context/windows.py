"""Context windows of known models (pure): how many tokens a request may hold.

``WINDOWS`` maps a model family to its window in tokens (input and output together, as
the vendors state it). ``WindowTable`` looks a model up the way ``pricing.PriceTable``
does: exact name, then without a provider prefix (``anthropic/``, ``openai/``), a ``:free``
style suffix or a date suffix, then the longest known family prefix followed by ``-`` or
``.`` (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``, ``gpt-5.1`` -> ``gpt-5``).

Where a window comes from, in order (``context_window``): ``providers.<name>.context_window``
in agent.yaml, a llama.cpp server's ``/props`` (``window_from_props``), this table.

Sources, per family (vendors' model pages as of November 2026):

* OpenAI: platform.openai.com/docs/models (gpt-5 family 400,000; gpt-5 chat variants
  128,000; gpt-4.1 family 1,047,576; gpt-4o 128,000; o1/o3/o4-mini 200,000; gpt-oss
  131,072 from its model card).
* Anthropic: docs.anthropic.com/en/docs/about-claude/models/overview and
  .../build-with-claude/context-windows (200,000 for Claude 3.x and 4.x; Sonnet 4 and
  4.5 reach 1,000,000 with the ``context-1m-2025-08-07`` beta header; Opus 4.6+ and
  Sonnet 4.6 have 1,000,000).
* Google: ai.google.dev/gemini-api/docs/models (input token limit 1,048,576 for Gemini
  2.x/3.x and 1.5 Flash, 2,097,152 for 1.5 Pro).
* DeepSeek: api-docs.deepseek.com/quick_start/pricing (128K for deepseek-chat and
  deepseek-reasoner, V3.x).
* Mistral: docs.mistral.ai/getting-started/models (128k for Large, Medium, Small,
  Ministral, Devstral; 256k for Codestral).
* Meta Llama: the Llama 3.1-3.3 model cards (128k = 131,072), Llama 4 (Maverick 1M).
* Qwen: the Qwen2.5 / Qwen3 model cards (32,768 and 40,960 native, without YaRN; Qwen3
  Coder and the 2507 releases 262,144).
* Gemma: the Gemma 2 / Gemma 3 model cards (8,192; 32,768 for Gemma 3 270M and 1B,
  131,072 for 4B and up).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ONE_MILLION_BETA", "WINDOWS", "WindowTable", "beta_values", "context_window",
           "window_from_props"]

ONE_MILLION_BETA = "context-1m-2025-08-07"

WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-5": 400_000, "gpt-5-chat": 128_000, "gpt-5-chat-latest": 128_000,
    "gpt-5.1-chat": 128_000, "gpt-5.2-chat": 128_000, "gpt-5.3-chat": 128_000,
    "gpt-4.1": 1_047_576, "gpt-4o": 128_000, "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000, "gpt-4": 8_192, "gpt-3.5-turbo": 16_385,
    "o1": 200_000, "o1-mini": 128_000, "o1-preview": 128_000, "o3": 200_000,
    "o3-mini": 200_000, "o4-mini": 200_000, "codex-mini": 200_000, "gpt-oss": 131_072,
    # Anthropic
    "claude-3": 200_000, "claude-opus-4": 200_000, "claude-sonnet-4": 200_000,
    "claude-haiku-4": 200_000, "claude-opus-4-6": 1_000_000, "claude-opus-4-7": 1_000_000,
    "claude-sonnet-4-6": 1_000_000,
    # Google
    "gemini-1.5-pro": 2_097_152, "gemini-1.5-flash": 1_048_576, "gemini-2": 1_048_576,
    "gemini-3": 1_048_576,
    # DeepSeek
    "deepseek-chat": 128_000, "deepseek-reasoner": 128_000, "deepseek-v3": 128_000,
    "deepseek-r1": 128_000,
    # Mistral
    "mistral-large": 131_072, "mistral-medium": 131_072, "mistral-small": 131_072,
    "ministral": 131_072, "devstral": 131_072, "codestral": 256_000,
    # Meta Llama
    "llama-3": 8_192, "llama-3.1": 131_072, "llama-3.2": 131_072, "llama-3.3": 131_072,
    "llama-4-maverick": 1_048_576, "llama-4-scout": 10_000_000,
    # Qwen
    "qwen2.5": 32_768, "qwen3": 40_960, "qwen3-coder": 262_144,
    "qwen3-235b-a22b-2507": 262_144,
    # Gemma
    "gemma-2": 8_192, "gemma-3": 131_072, "gemma-3-1b": 32_768, "gemma-3-270m": 32_768,
}

# Models whose window grows with a beta header: (family prefix, header value, window).
_BETA_WINDOWS: tuple[tuple[str, str, int], ...] = (
    ("claude-sonnet-4", ONE_MILLION_BETA, 1_000_000),
    ("claude-sonnet-4-5", ONE_MILLION_BETA, 1_000_000),
)

_DATE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|latest)$")


def _candidates(model: str) -> list[str]:
    name = model.strip().lower().split("/")[-1].split(":")[0]
    if name.startswith("claude"):
        name = name.replace(".", "-")
    out = [name]
    bare = _DATE.sub("", name)
    if bare != name:
        out.append(bare)
    return out


class WindowTable:
    """Looks a model's window up; ``extra`` adds or overrides families."""

    def __init__(self, extra: Mapping[str, int] | None = None) -> None:
        self._windows = dict(WINDOWS)
        if extra:
            self._windows.update({k.lower(): v for k, v in extra.items()})
        self._keys = sorted(self._windows, key=len, reverse=True)

    def family(self, model: str) -> str | None:
        """The table key that ``model`` matches, or None."""
        for cand in _candidates(model):
            if cand in self._windows:
                return cand
            for key in self._keys:
                if cand.startswith(key) and cand[len(key):len(key) + 1] in ("-", "."):
                    return key
        return None

    def window(self, model: str, *, betas: Iterable[str] = ()) -> int | None:
        """The window of ``model`` in tokens (None when unknown); ``betas`` are the
        ``anthropic-beta`` values the requests carry (a 1M-context beta widens it)."""
        key = self.family(model)
        if key is None:
            return None
        enabled = set(betas)
        for prefix, beta, size in _BETA_WINDOWS:
            if key == prefix and beta in enabled:
                return size
        return self._windows[key]


def beta_values(headers: Mapping[str, str] | None) -> list[str]:
    """The ``anthropic-beta`` values of ``headers``."""
    if not headers:
        return []
    out: list[str] = []
    for name, value in headers.items():
        if name.lower() == "anthropic-beta":
            out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def context_window(model: str, *, override: int | None = None, props: int | None = None,
                   headers: Mapping[str, str] | None = None,
                   table: WindowTable | None = None) -> int | None:
    """The window a session must respect: the configured ``override``
    (``providers.<name>.context_window``), else what a llama.cpp server's ``/props``
    said, else the table (``headers`` may enable a wider beta window); None if unknown."""
    if override is not None:
        return override
    if props is not None:
        return props
    return (table or WindowTable()).window(model, betas=beta_values(headers))


def window_from_props(payload: Any) -> int | None:
    """``n_ctx`` of a llama.cpp ``GET /props`` answer: ``default_generation_settings.n_ctx``
    (the per-slot context), or ``n_ctx`` at the top level in some versions; None when the
    answer holds neither (the server is not llama.cpp)."""
    if not isinstance(payload, dict):
        return None
    settings = payload.get("default_generation_settings")
    for source in (settings, payload):
        if isinstance(source, dict):
            n = source.get("n_ctx")
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                return n
    return None
