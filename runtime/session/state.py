"""The session-state actor: provider metadata and reasoning traces, kept and persisted.

It owns, per provider: response ids, the model names providers answered with, prompt-cache
usage. It encrypts every reasoning trace of a response (Responses reasoning items with
``encrypted_content``, Anthropic thinking blocks with signatures) and every opaque
compaction item of a vendor into ``reasoning.enc``
(AES-GCM, one frame per trace, keyed by request id and part index), and writes the
``state.json`` checkpoint when asked: the conversation without opaque payloads, the
metadata, the turn and the journal position it covers. It never writes a file itself: the
journal does.

Mailbox messages are msgspec tagged structs (``StateMsg``).
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from ..model import Message, ReasoningPart, Response, Usage
from .recorder import Recorder
from .traces import TRACE_FILE, frame, is_opaque_builtin, strip_opaque

__all__ = ["Checkpoint", "ProviderMeta", "RecordResponse", "StateMsg", "state_actor"]

STATE_FORMAT = 2


class ProviderMeta(msgspec.Struct):
    response_ids: list[str] = msgspec.field(default_factory=list)
    models: list[str] = msgspec.field(default_factory=list)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class RecordResponse(msgspec.Struct, tag=True):
    """A response joined the conversation: keep its ids and traces."""

    provider: str
    response: Response
    turn: int
    request_id: str


class Checkpoint(msgspec.Struct, tag=True):
    """Write ``state.json`` for the conversation as it is now; ``queued`` (when given) is
    set once the file is handed to the journal, so a flush after it covers the file."""

    messages: list[Message]
    turn: int
    seq: int
    status: str
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    queued: trio.Event | None = None


StateMsg = RecordResponse | Checkpoint


async def state_actor(
    run_id: str,
    recorder: Recorder,
    *,
    key: bytes | None,
    bound: int = 16,
    task_status: trio.TaskStatus[trio.MemorySendChannel[StateMsg]] = trio.TASK_STATUS_IGNORED,
) -> dict[str, ProviderMeta]:
    """Run until every clone of the mailbox is closed; return the provider metadata."""
    meta: dict[str, ProviderMeta] = {}
    send, recv = trio.open_memory_channel[StateMsg](bound)
    async with recv:
        task_status.started(send)
        try:
            async for msg in recv:
                if isinstance(msg, RecordResponse):
                    pm = meta.setdefault(msg.provider, ProviderMeta())
                    r = msg.response
                    if r.id:
                        pm.response_ids.append(r.id)
                    if r.model and r.model not in pm.models:
                        pm.models.append(r.model)
                    u = r.usage or Usage()
                    pm.cache_read_tokens += u.cache_read_tokens
                    pm.cache_write_tokens += u.cache_write_tokens
                    if key is None:
                        continue
                    for i, part in enumerate(r.parts):
                        what = ("reasoning" if isinstance(part, ReasoningPart) else
                                "builtin" if is_opaque_builtin(part) else None)
                        if what is not None:
                            rec = {"turn": msg.turn, "request_id": msg.request_id, "part": i,
                                   "provider": msg.provider, what: msgspec.to_builtins(part)}
                            await recorder.append_bytes(TRACE_FILE, frame(key, run_id, rec))
                else:
                    try:
                        await recorder.write_json("state.json", {
                            "format": STATE_FORMAT, "run_id": run_id, "turn": msg.turn,
                            "seq": msg.seq, "status": msg.status,
                            "messages": strip_opaque(msg.messages), "providers": meta,
                            **msg.extra,
                        })
                    finally:
                        if msg.queued is not None:
                            msg.queued.set()
        finally:  # whoever waits for a checkpoint never waits for a dead actor
            while True:
                try:
                    left = recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if isinstance(left, Checkpoint) and left.queued is not None:
                    left.queued.set()
    return meta
