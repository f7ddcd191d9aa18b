"""Token estimates of canonical messages (pure), and their calibration per provider.

Without the provider's tokenizer a request's size is guessed from its canonical JSON:
about four bytes a token (``pricing.estimate_tokens`` uses the same rule for the rate
limiter). Per part type:

* text, tool calls, tool results, provider-executed items: the bytes of the part's
  canonical JSON / 4;
* images: a fixed ``IMAGE_TOKENS`` (vendors bill an image by its pixels, which the
  canonical part does not carry; 1,600 is Anthropic's figure for a ~1.15 megapixel image
  and above OpenAI's 765 for a high-detail 1024x1024 tile set);
* reasoning: the provider's own item when it is kept (``raw``), else the text, summary,
  signature and encrypted payload, each by its length: opaque payloads are sent back and
  counted as input.

A message costs its parts plus ``MESSAGE_OVERHEAD`` (role and framing). Each message is
estimated once, when it joins the conversation (see ``ledger``), so a long session never
re-encodes its history.

``Calibration`` scales estimates per provider by the ratio of the ``input_tokens`` the
provider reported for the previous request to what was estimated for it, so the
estimator's bias (code, non-English text, a tokenizer's quirks) is corrected after one
request. ``tokenizer_for`` picks a real tokenizer where one is installed and usable
offline (``tiktoken`` for OpenAI models, when its encoding files are already cached).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import msgspec

from ..model import ImagePart, Message, Part, ReasoningPart, TextPart, ToolResultPart, ToolSpec

__all__ = [
    "BYTES_PER_TOKEN",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "Calibration",
    "Counter",
    "message_tokens",
    "prompt_tokens",
    "request_tokens",
    "tokenizer_for",
]

BYTES_PER_TOKEN = 4
IMAGE_TOKENS = 1_600
MESSAGE_OVERHEAD = 4
_PART_OVERHEAD = 2

Counter = Callable[[str], int]
"""A real tokenizer: text -> token count."""

_encode = msgspec.json.Encoder().encode


def _bytes(n: int) -> int:
    return math.ceil(n / BYTES_PER_TOKEN)


def _text_tokens(text: str, counter: Counter | None) -> int:
    """Raises ``UnicodeEncodeError`` for text that is not valid UTF-8 (a lone surrogate):
    the conversation makes such text valid when it first estimates it."""
    if counter is not None:
        return counter(text)
    return _bytes(len(text.encode("utf-8")))


def _reasoning_tokens(p: ReasoningPart, counter: Counter | None) -> int:
    if p.raw is not None:
        return _bytes(len(_encode(p.raw)))
    n = _text_tokens(p.text, counter) + sum(_text_tokens(s, counter) for s in p.summary)
    opaque = len(p.signature or "") + len(p.encrypted or "")
    return n + _bytes(opaque)


def _result_tokens(p: ToolResultPart, counter: Counter | None) -> int:
    if isinstance(p.content, str):
        body = _text_tokens(p.content, counter)
    else:
        body = sum(IMAGE_TOKENS if isinstance(c, ImagePart) else _text_tokens(c.text, counter)
                   for c in p.content)
    return body + _bytes(len(p.call_id) + len(p.name or "") + 24)


def part_tokens(p: Part, counter: Counter | None = None) -> int:
    """The estimated tokens of one part (see the module docstring)."""
    if isinstance(p, TextPart):
        n = _text_tokens(p.text, counter)
    elif isinstance(p, ImagePart):
        n = IMAGE_TOKENS
    elif isinstance(p, ReasoningPart):
        n = _reasoning_tokens(p, counter)
    elif isinstance(p, ToolResultPart):
        n = _result_tokens(p, counter)
    else:  # ToolCallPart, BuiltinToolPart: their canonical JSON
        n = _bytes(len(_encode(p)))
    return n + _PART_OVERHEAD


def message_tokens(m: Message, counter: Counter | None = None) -> int:
    """The estimated tokens of one message."""
    return MESSAGE_OVERHEAD + sum(part_tokens(p, counter) for p in m.parts)


def prompt_tokens(system: str | None, tools: Iterable[ToolSpec],
                  counter: Counter | None = None) -> int:
    """What a request costs besides its messages: the system prompt and the tool specs."""
    n = _text_tokens(system, counter) + MESSAGE_OVERHEAD if system else 0
    return n + sum(_bytes(len(_encode(t))) for t in tools)


def request_tokens(messages: Iterable[Message], system: str | None = None,
                   tools: Iterable[ToolSpec] = (), counter: Counter | None = None) -> int:
    """A whole request's estimate (walks every message: for one-off counts such as the
    fake server's, not for the conductor's per-turn check, which uses the ledger)."""
    return prompt_tokens(system, tools, counter) + sum(message_tokens(m, counter)
                                                       for m in messages)


@attrs.define
class Calibration:
    """Ratio of reported to estimated input tokens, per provider entry.

    ``observe(provider, estimated, reported)`` after each response that reported usage;
    ``scale(provider, estimate)`` before the next request. The ratio is the last one
    observed, clamped to ``[low, high]`` so that one odd report (a cached prefix billed
    oddly, a gateway's bug) cannot make the estimate absurd."""

    low: float = 0.25
    high: float = 4.0
    ratios: dict[str, float] = attrs.field(factory=dict)

    def observe(self, provider: str, estimated: int, reported: int) -> float:
        """Record one request's figures; returns the ratio now in force."""
        if estimated > 0 and reported > 0:
            self.ratios[provider] = min(self.high, max(self.low, reported / estimated))
        return self.ratio(provider)

    def ratio(self, provider: str) -> float:
        return self.ratios.get(provider, 1.0)

    def scale(self, provider: str, estimate: int) -> int:
        """``estimate`` in the provider's tokens."""
        return math.ceil(estimate * self.ratio(provider))

    def unscale(self, provider: str, tokens: int) -> int:
        """How many estimated tokens fit in ``tokens`` of the provider's."""
        return math.floor(tokens / self.ratio(provider))


_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-")


def tokenizer_for(model: str, *, loader: Callable[[str], Any] | None = None) -> Counter | None:
    """A real tokenizer for ``model`` when one is installed and usable offline, else None
    (the byte estimator then serves, corrected by ``Calibration``).

    Only OpenAI models have a public tokenizer (``tiktoken``). It is not a dependency of
    this project: its wheel installs offline, but its encodings are fetched over the
    network on first use, which a sandbox or CI cannot do and which no pure module may do
    behind the caller's back. So it is used only when importable and its encoding loads
    without the network (``TIKTOKEN_CACHE_DIR`` pointing at cached files); ``loader`` is
    the seam tests use (``model -> encoding with .encode``)."""
    name = model.lower().split("/")[-1]
    if not name.startswith(_OPENAI_PREFIXES):
        return None
    if loader is None:
        loader = _tiktoken_offline
    try:
        enc = loader(name)
    except Exception:  # not installed, unknown model, files not cached: no tokenizer
        return None
    if enc is None:
        return None

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    return count


def _tiktoken_offline(model: str) -> Any:
    import importlib
    import os

    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        return None  # the encoding would be downloaded: not here
    tiktoken = importlib.import_module("tiktoken")
    return tiktoken.encoding_for_model(model)
