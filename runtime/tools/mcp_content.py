"""Pure helpers for MCP tools: exposed tool names and tool results as text.

No I/O and no trio here: :func:`exposed_name` maps a server's tool name to the
``<server>__<tool>`` name offered to the model, and :func:`result_text` turns a
``CallToolResult``'s content blocks into the text the model reads (images, audio and binary
resources become a short placeholder, never base64).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any

import mcp_types as mt

__all__ = ["block_text", "exposed_name", "result_text"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64


def exposed_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, with characters a provider rejects in tool names (``.``,
    ``/``, spaces...) replaced by ``_`` and cut to 64 characters."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:_MAX_NAME]


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data)
    return f"{n} bytes"


def block_text(block: Any) -> str:
    """One content block as text: text as is, anything binary as ``[image: image/png, 812
    bytes]``-style placeholders."""
    if isinstance(block, mt.TextContent):
        return block.text
    if isinstance(block, mt.ImageContent):
        return f"[image: {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, mt.AudioContent):
        return f"[audio: {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, mt.EmbeddedResource):
        res = block.resource
        if isinstance(res, mt.TextResourceContents):
            return res.text
        mime = res.mime_type or "application/octet-stream"
        return f"[resource {res.uri}: {mime}, {_size(res.blob)}]"
    if isinstance(block, mt.ResourceLink):
        return f"[resource link: {block.uri}" + (f" ({block.name})" if block.name else "") + "]"
    kind = getattr(block, "type", type(block).__name__)
    return f"[{kind} content]"


def result_text(content: Iterable[Any], structured: Any = None) -> str:
    """The text of a tool result: its blocks joined by newlines; when there are none, the
    structured content as JSON (or an empty string)."""
    parts = [block_text(b) for b in content]
    if parts:
        return "\n".join(parts)
    if structured is not None:
        return json.dumps(structured, ensure_ascii=False, default=str)
    return ""
