"""The scripted provider (``kind: scripted``): deterministic answers in process, no HTTP.

A product feature (the README's demo runs on it), also re-exported by ``runtime.testing``
for the conductor's own tests and for users testing their agents. Each request takes the next entry of the script: a
``Response``, a callable ``(Request) -> Response`` for dynamic answers, or a
``ProviderError`` to raise. Answers are delivered as the same normalized events a real
stream produces (``events_of``), so the conductor cannot tell the difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from ..errors import ErrorKind, ProviderError
from ..events import Assembler, Event, events_of
from ..model import ReasoningPart, Request, Response, TextPart, ToolCallPart, Usage

__all__ = ["ScriptEntry", "ScriptedProvider", "response_from_turn"]

ScriptEntry = Response | Callable[[Request], Response] | ProviderError


def response_from_turn(turn: Mapping[str, Any] | Any, number: int) -> Response:
    """A ``Response`` from a config script turn: ``{text, tool_calls: [{name, arguments}],
    reasoning}`` (a mapping or any object with those attributes)."""

    def get(key: str, default: Any) -> Any:
        if isinstance(turn, Mapping):
            return turn.get(key, default)
        return getattr(turn, key, default)

    parts: list[Any] = []
    reasoning = get("reasoning", None)
    if reasoning:
        parts.append(ReasoningPart(text=reasoning, kind="reasoning", protocol="scripted"))
    text = get("text", "") or ""
    if text:
        parts.append(TextPart(text))
    for i, call in enumerate(get("tool_calls", None) or []):
        name = call["name"] if isinstance(call, Mapping) else call.name
        args = call.get("arguments", {}) if isinstance(call, Mapping) else call.arguments
        parts.append(ToolCallPart(f"call_{number}_{i}", name,
                                  args if isinstance(args, str) else json.dumps(args)))
    has_calls = any(isinstance(p, ToolCallPart) for p in parts)
    out_tokens = max(1, (len(text) + sum(len(getattr(p, "arguments", "")) for p in parts)) // 4)
    return Response(
        id=f"scripted-{number}", model="scripted", parts=parts,
        finish_reason="tool_calls" if has_calls else "stop",
        stop="tool_calls" if has_calls else "stop",
        usage=Usage(input_tokens=0, output_tokens=out_tokens),
    )


class ScriptedProvider:
    """A provider runtime that answers from a script (see the module docstring)."""

    protocol = "scripted"

    def __init__(self, name: str, script: Iterable[ScriptEntry], *, model: str = "scripted",
                 chunk_chars: int = 8) -> None:
        self.name = name
        self.model = model
        self._script = list(script)
        self._next = 0
        self.chunk_chars = chunk_chars
        self.requests: list[Request] = []

    @property
    def remaining(self) -> int:
        return len(self._script) - self._next

    async def attempt(self, req: Request, send: trio.MemorySendChannel[list[Event]] | None = None, *,
                      stream: bool = True) -> Response:
        self.requests.append(req)
        await trio.lowlevel.checkpoint()
        if self._next >= len(self._script):
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"the script of provider {self.name!r} has no answer left for request "
                f"{len(self.requests)} ({len(self._script)} scripted)",
                provider=self.name, hint="add turns to providers.<name>.script or lower max_turns",
            )
        entry = self._script[self._next]
        self._next += 1
        if isinstance(entry, ProviderError):
            entry.provider = entry.provider or self.name
            raise entry
        resp = entry(req) if callable(entry) else entry
        asm = Assembler(self.protocol, self.name)
        events = events_of(resp, chunk_chars=self.chunk_chars if stream else 0)
        for ev in events:
            asm.add(ev)
        if send is not None:
            # like a stream: one batch per event when streaming, one batch otherwise
            # like the HTTP provider: without a scheduling round trip while the channel has
            # room, an awaiting send when it is full (backpressure)
            for batch in ([ev] for ev in events) if stream else [events]:
                try:
                    send.send_nowait(batch)
                except trio.WouldBlock:
                    await send.send(batch)
        return asm.response()
