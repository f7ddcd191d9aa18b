"""The session-state actor: provider metadata and reasoning traces, kept and persisted.

It owns, per provider: response ids, model fingerprints (the model names providers
answered with), cache usage, whether streaming was disabled for the session and why. It
keeps every reasoning trace (Responses reasoning items with ``encrypted_content``,
Anthropic thinking blocks with signatures) and appends each to ``reasoning.enc``,
encrypted with AES-GCM; ``state.json`` holds what resuming needs (the conversation with
opaque payloads stripped, the metadata), never a secret. Both files are written through
the logger actor, the run folder's only writer.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import msgspec
import trio

from . import crypto
from .logger import LogMsg, WriteFile
from .model import Message, ReasoningPart, Response, Usage

__all__ = [
    "ProviderMeta",
    "RecordResponse",
    "SaveConversation",
    "SessionMsg",
    "SetStreamingDisabled",
    "key_for_run",
    "read_traces",
    "restore_conversation",
    "session_actor",
    "strip_opaque",
]

TRACE_FILE = "reasoning.enc"


class ProviderMeta(msgspec.Struct):
    response_ids: list[str] = msgspec.field(default_factory=list)
    models: list[str] = msgspec.field(default_factory=list)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    streaming_disabled: str | None = None


@attrs.frozen
class RecordResponse:
    provider: str
    response: Response
    turn: int
    message_index: int


@attrs.frozen
class SetStreamingDisabled:
    provider: str
    reason: str


@attrs.frozen
class SaveConversation:
    messages: list[Message]
    turn: int
    status: str
    extra: dict[str, Any] = attrs.field(factory=dict)


SessionMsg = RecordResponse | SetStreamingDisabled | SaveConversation


def key_for_run(logging_dir: Path, key_env: str, environ: dict[str, str] | None = None
                ) -> tuple[bytes, str | None]:
    """The trace key: from ``$key_env`` when set, else a random key kept in a 0600 file
    beside the logging folder (created once). Returns (key, warning or None)."""
    env = os.environ if environ is None else environ
    if env.get(key_env):
        return crypto.key_from_text(env[key_env]), None
    key_file = logging_dir.resolve().parent / ".conductor-reasoning.key"
    if key_file.exists():
        return crypto.key_from_text(key_file.read_text()), None
    key = crypto.new_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key, (f"{key_env} is not set: reasoning traces are encrypted with a random key "
                 f"kept in {key_file} (mode 0600); set {key_env} to use your own key")


def strip_opaque(messages: list[Message]) -> list[Message]:
    """The conversation without opaque reasoning payloads (signatures, encrypted content,
    raw items): what state.json may hold in the clear."""
    out = []
    for m in messages:
        parts = [
            msgspec.structs.replace(p, signature=None, encrypted=None, raw=None)
            if isinstance(p, ReasoningPart) else p
            for p in m.parts
        ]
        out.append(Message(m.role, parts))
    return out


def frame(key: bytes, run_id: str, record: dict[str, Any]) -> bytes:
    blob = crypto.encrypt(key, msgspec.json.encode(record), context=run_id)
    return struct.pack(">I", len(blob)) + blob


def read_traces(path: Path, key: bytes, run_id: str) -> Iterator[dict[str, Any]]:
    """Decrypt every record of a ``reasoning.enc``; any change raises TraceDecryptError."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise crypto.TraceDecryptError(f"{path}: truncated frame header at byte {pos}")
        (size,) = struct.unpack_from(">I", data, pos)
        blob = data[pos + 4: pos + 4 + size]
        if len(blob) != size:
            raise crypto.TraceDecryptError(f"{path}: truncated frame at byte {pos}")
        yield msgspec.json.decode(crypto.decrypt(key, blob, context=run_id))
        pos += 4 + size


def restore_conversation(state: dict[str, Any], traces: list[dict[str, Any]]) -> list[Message]:
    """Rebuild the conversation of a run from state.json and its decrypted traces."""
    messages = msgspec.convert(state["messages"], list[Message])
    for t in traces:
        m, p = t["message"], t["part"]
        if m < len(messages) and p < len(messages[m].parts):
            messages[m].parts[p] = msgspec.convert(t["reasoning"], ReasoningPart)
    return messages


async def session_actor(
    run_id: str,
    log: trio.MemorySendChannel[LogMsg],
    *,
    key: bytes | None,
    meta: dict[str, ProviderMeta] | None = None,
    bound: int = 16,
    task_status: trio.TaskStatus[trio.MemorySendChannel[SessionMsg]] = trio.TASK_STATUS_IGNORED,
) -> dict[str, ProviderMeta]:
    """Run until every clone of the mailbox is closed; return the provider metadata."""
    state: dict[str, ProviderMeta] = dict(meta or {})
    send, recv = trio.open_memory_channel[SessionMsg](bound)
    async with log, recv:
        task_status.started(send)
        async for msg in recv:
            if isinstance(msg, RecordResponse):
                pm = state.setdefault(msg.provider, ProviderMeta())
                r = msg.response
                if r.id:
                    pm.response_ids.append(r.id)
                if r.model and r.model not in pm.models:
                    pm.models.append(r.model)
                u = r.usage or Usage()
                pm.cache_read_tokens += u.cache_read_tokens
                pm.cache_write_tokens += u.cache_write_tokens
                for i, part in enumerate(r.parts):
                    if isinstance(part, ReasoningPart) and key is not None:
                        rec = {"turn": msg.turn, "message": msg.message_index, "part": i,
                               "provider": msg.provider, "reasoning": msgspec.to_builtins(part)}
                        await log.send(WriteFile(TRACE_FILE, frame(key, run_id, rec), append=True))
            elif isinstance(msg, SetStreamingDisabled):
                state.setdefault(msg.provider, ProviderMeta()).streaming_disabled = msg.reason
            elif isinstance(msg, SaveConversation):
                await log.send(WriteFile("state.json", {
                    "run_id": run_id, "turn": msg.turn, "status": msg.status,
                    "messages": msgspec.to_builtins(strip_opaque(msg.messages)),
                    "providers": msgspec.to_builtins(state), **msg.extra,
                }))
    return state
