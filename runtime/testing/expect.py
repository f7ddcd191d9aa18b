"""Views of decoded parts in the shape of a recording's ``expect`` record (see
``../shared/recordings/README.md``): what the recording tests compare against and what
``--record`` writes for new captures. Pure."""

from __future__ import annotations

from typing import Any

from ..model import BuiltinToolPart, ReasoningPart

__all__ = ["builtin_view", "reasoning_view"]


def reasoning_view(p: ReasoningPart) -> dict[str, Any]:
    """A reasoning part as an ``expect.reasoning`` record (``kind`` is its ``type``)."""
    if p.kind == "thinking":
        return {"type": "thinking", "thinking": p.text, "has_signature": p.signature is not None}
    if p.kind == "redacted_thinking":
        return {"type": "redacted_thinking", "has_data": p.encrypted is not None}
    if p.protocol == "openai-responses":
        return {"type": "reasoning", "id": p.id, "has_encrypted_content": p.encrypted is not None,
                "summary": list(p.summary)}
    if p.kind.startswith("reasoning_details:"):
        return {"type": p.kind, "id": p.id, "text": p.text or None,
                "has_signature": p.signature is not None, "has_data": p.encrypted is not None}
    return {"type": p.kind, "text": p.text}


def builtin_view(p: BuiltinToolPart, protocol: str) -> dict[str, Any]:
    """A provider-executed tool item as an ``expect.builtin_tool_calls`` record."""
    d: dict[str, Any] = {"type": p.item_type, "id": p.id}
    if protocol == "anthropic":
        d["name"] = p.name
    return d
