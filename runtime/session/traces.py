"""Reasoning traces at rest: the frames of ``reasoning.enc`` and the run's key (pure but for
reading a key file).

Each reasoning part of a response (Responses reasoning items with ``encrypted_content``,
Anthropic thinking blocks with signatures) is one frame: a 4-byte length and an AES-GCM blob
(``runtime.crypto``, the run id as associated data) of ``{"turn", "request_id", "part",
"provider", "reasoning"}``. A vendor's compaction item with an encrypted payload (``strategy:
provider``) is a frame too, with ``"builtin"`` in place of ``"reasoning"``. Older runs keyed
frames by ``message`` index instead of ``request_id``; both are read.

What is written in the clear (transcript, ``state.json``) never holds an opaque payload:
:func:`strip_opaque` replaces a signature or encrypted content by ``""`` (so a reader knows
one existed) and drops a reasoning part's ``raw``; a compaction item keeps its readable
``raw`` with ``encrypted_content`` emptied.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from .. import crypto
from ..model import BuiltinToolPart, Message, Part, ReasoningPart

__all__ = ["TRACE_FILE", "frame", "is_opaque_builtin", "key_for_run", "read_traces",
           "strip_opaque", "strip_parts"]

TRACE_FILE = "reasoning.enc"
KEY_FILE = ".conductor-reasoning.key"


def is_opaque_builtin(p: Part) -> bool:
    """A provider item whose payload is opaque (a vendor's compaction item)."""
    return (isinstance(p, BuiltinToolPart) and p.raw is not None
            and bool(p.raw.get("encrypted_content")))


def strip_parts(parts: list[Part]) -> list[Part]:
    """``parts`` without opaque payloads (see the module docstring)."""
    out: list[Part] = []
    for p in parts:
        if isinstance(p, ReasoningPart) and (p.opaque or p.raw is not None):
            out.append(msgspec.structs.replace(
                p, signature=None if p.signature is None else "",
                encrypted=None if p.encrypted is None else "", raw=None))
        elif is_opaque_builtin(p):
            assert isinstance(p, BuiltinToolPart) and p.raw is not None
            out.append(msgspec.structs.replace(p, raw={**p.raw, "encrypted_content": ""}))
        else:
            out.append(p)
    return out


def strip_opaque(messages: list[Message]) -> list[Message]:
    return [Message(m.role, strip_parts(m.parts)) if m.role == "assistant" else m
            for m in messages]


def frame(key: bytes, run_id: str, record: Mapping[str, Any]) -> bytes:
    """One encrypted frame (text that is not valid UTF-8 is made valid first)."""
    try:
        plain = msgspec.json.encode(record)
    except UnicodeEncodeError:
        from .records import sanitize

        plain = msgspec.json.encode(sanitize(record))
    blob = crypto.encrypt(key, plain, context=run_id)
    return struct.pack(">I", len(blob)) + blob


def read_traces(path: Path, key: bytes, run_id: str) -> Iterator[dict[str, Any]]:
    """Decrypt every frame of a ``reasoning.enc``; any change raises TraceDecryptError. A
    frame cut short at the very end (a crash mid-write) ends the file."""
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


def key_file_for(logging_dir: Path) -> Path:
    """Where the generated key of a logging folder is kept (beside the folder)."""
    return logging_dir.resolve().parent / KEY_FILE


def key_for_run(logging_dir: Path, key_env: str, environ: Mapping[str, str] | None = None
                ) -> tuple[bytes, str | None]:
    """The trace key: from ``$key_env`` when set, else a random key kept in a 0600 file
    beside the logging folder (created once). Returns (key, warning or None)."""
    env = os.environ if environ is None else environ
    if env.get(key_env):
        return crypto.key_from_text(env[key_env]), None
    key_file = key_file_for(logging_dir)
    if key_file.exists():
        return crypto.key_from_text(key_file.read_text()), None
    key = crypto.new_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return crypto.key_from_text(key_file.read_text()), None
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key, (f"{key_env} is not set: reasoning traces are encrypted with a random key "
                 f"kept in {key_file} (mode 0600); set {key_env} to use your own key")
