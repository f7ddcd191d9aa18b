"""``strategy: provider``: the vendors' own context management, as request options (pure).

* OpenAI Responses: ``context_management: [{"type": "compaction", "compact_threshold": N}]``
  on ``POST /responses``. When the rendered input crosses N the server compacts it and the
  output holds a ``compaction`` item (``id``, ``encrypted_content``) that must be sent back
  as an input item on the next request; what came before it no longer counts.
* Anthropic Messages (beta header ``context-management-2025-06-27``):
  ``context_management: {"edits": [...]}`` with ``clear_thinking_20251015`` (listed
  first, only with extended thinking), ``clear_tool_uses_20250919`` (trigger, keep) and,
  on the models that have it (beta header ``compact-2026-01-12``), ``compact_20260112``:
  server-side compaction, whose ``compaction`` block (``content``, ``encrypted_content``)
  comes in the assistant message and goes back verbatim.

The codecs keep both compaction shapes as ``BuiltinToolPart(item_type="compaction")``
passed back verbatim to the protocol that produced them; the ledger counts the
conversation from the latest one. Other protocols have no such option:
``ContextManager`` then summarizes (``local_strategy``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from ..model import Params
from .fit import ContextPolicy

__all__ = [
    "ANTHROPIC_COMPACTION_BETA",
    "ANTHROPIC_CONTEXT_BETA",
    "COMPACTION_MIN_TRIGGER",
    "VendorOptions",
    "merge_beta",
    "vendor_options",
]

ANTHROPIC_CONTEXT_BETA = "context-management-2025-06-27"
ANTHROPIC_COMPACTION_BETA = "compact-2026-01-12"
COMPACTION_MIN_TRIGGER = 50_000  # Anthropic's lowest compaction trigger
THRESHOLD_RATIO = 0.8
_COMPACTING = ("claude-opus-4-6", "claude-opus-4-7", "claude-sonnet-4-6", "claude-mythos")


@attrs.frozen
class VendorOptions:
    """What to add to a provider's requests: ``extra`` (merged into ``Params.extra``) and
    ``betas`` (``anthropic-beta`` values)."""

    extra: dict[str, Any] = attrs.field(factory=dict)
    betas: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.extra)

    def params(self, p: Params) -> Params:
        """``p`` with the options merged into its ``extra``."""
        return _with_extra(p, self.extra)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` with the betas added to ``anthropic-beta``."""
        return merge_beta(headers, self.betas)


def _with_extra(p: Params, extra: dict[str, Any]) -> Params:
    import msgspec

    return msgspec.structs.replace(p, extra={**p.extra, **extra})


def merge_beta(headers: Mapping[str, str], betas: tuple[str, ...]) -> dict[str, str]:
    """Add ``betas`` to the comma-separated ``anthropic-beta`` header, once each."""
    out = {k: v for k, v in headers.items() if k.lower() != "anthropic-beta"}
    current = [v.strip() for k, val in headers.items() if k.lower() == "anthropic-beta"
               for v in val.split(",") if v.strip()]
    values = list(dict.fromkeys([*current, *betas]))
    if values:
        out["anthropic-beta"] = ",".join(values)
    return out


def vendor_options(protocol: str, model: str, policy: ContextPolicy, window: int, *,
                   thinking: bool = False) -> VendorOptions:
    """The request options of ``strategy: provider`` for ``protocol`` (empty for other
    strategies and for protocols without vendor context management). The vendor acts at
    80 % of ``window - reserve_output``, before the local safety net would."""
    if policy.strategy != "provider":
        return VendorOptions()
    threshold = max(1, math.floor((window - policy.reserve_output) * THRESHOLD_RATIO))
    if protocol == "openai-responses":
        return VendorOptions({"context_management": [
            {"type": "compaction", "compact_threshold": threshold}]})
    if protocol != "anthropic":
        return VendorOptions()
    edits: list[dict[str, Any]] = []
    betas = [ANTHROPIC_CONTEXT_BETA]
    if thinking:
        edits.append({"type": "clear_thinking_20251015",
                      "keep": {"type": "thinking_turns", "value": 1}})
    name = model.lower().split("/")[-1].replace(".", "-")
    if name.startswith(_COMPACTING) and threshold >= COMPACTION_MIN_TRIGGER:
        edits.append({"type": "compact_20260112",
                      "trigger": {"type": "input_tokens", "value": threshold}})
        betas.append(ANTHROPIC_COMPACTION_BETA)
    else:
        edits.append({"type": "clear_tool_uses_20250919",
                      "trigger": {"type": "input_tokens", "value": threshold},
                      "keep": {"type": "tool_uses", "value": policy.keep_recent_turns}})
    return VendorOptions({"context_management": {"edits": edits}}, tuple(betas))
