"""The response cache's pure half: the canonical key, prompt hashing and request diffs.

A turn is cached whole: the key is the sha256 of a canonical document (``key_material``) that
holds every request part deciding the answer — provider kind, model, system, messages, tools,
and the sampling / reasoning ``Params`` — and none of the volatile ones (``stream``,
``metadata``, ``store``, ``cache_system``, prompt-cache breakpoints, and the ``Params.extra``
keys in ``VOLATILE_EXTRA``). The document is encoded as canonical JSON (sorted keys, no
spaces), so dict key order never matters; a streamed and a non-streamed turn share a key.

The stored value is the canonical ``Response`` (msgspec JSON); a hit replays as
``runtime.events.events_of(resp)``: the same normalized events as a live turn.

With ``hash_prompts`` the stored document goes through ``redact_material`` first: every prompt
string becomes ``sha256:<hex>``, so no prompt text is written, while ``diff`` still compares
paths (a hashed leaf equals the plain string it hashes). In ``replay`` mode a miss raises
``CacheMissError`` naming the key and the paths where the nearest stored request differs.

Pure: no trio, no I/O (the SQLite store is ``runtime.cache_store``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from runtime.errors import ErrorKind, ProviderError
from runtime.events import Event, events_of
from runtime.model import Message, Params, Part, Request, Response, TextPart, ToolSpec

__all__ = [
    "HASH_PREFIX",
    "KEY_VERSION",
    "MODES",
    "VOLATILE_EXTRA",
    "CacheMissError",
    "CacheMode",
    "cache_key",
    "canonical_json",
    "decode_response",
    "diff",
    "encode_response",
    "hash_text",
    "key_material",
    "key_of_material",
    "nearest",
    "redact_material",
    "replay_events",
]

CacheMode = Literal["read-through", "record-only", "bypass", "replay"]
MODES: tuple[CacheMode, ...] = ("read-through", "record-only", "bypass", "replay")

# Bump when the material's shape changes: old entries then simply stop matching.
KEY_VERSION = 1
HASH_PREFIX = "sha256:"

# ``Params.extra`` keys that never change the answer: bookkeeping, routing and storage flags.
VOLATILE_EXTRA = frozenset({
    "user", "metadata", "store", "stream", "stream_options", "request_id", "idempotency_key",
    "prompt_cache_key", "safety_identifier", "service_tier",
})
_FLOAT_PARAMS = ("temperature", "top_p")

# Keys whose string values are structure (ids, names, tags), not prompt text.
_STRUCTURAL = frozenset({
    "type", "role", "id", "name", "call_id", "item_id", "is_error", "kind", "protocol",
    "source", "media_type", "item_type", "cache", "status",
})


# --------------------------------------------------------------------------- key material


def _part(part: Part) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(part)
    doc.pop("cache", None)  # a prompt-cache breakpoint is not part of the question
    content = doc.get("content")
    if isinstance(content, list):
        for item in content:
            if isinstance(item, dict):
                item.pop("cache", None)
    return doc


def _message(msg: Message) -> dict[str, Any]:
    parts = msg.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        content: str | list[dict[str, Any]] = parts[0].text
    else:
        content = [_part(p) for p in parts]
    return {"role": msg.role, "content": content}


def _tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def _params(params: Params) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(params)
    for name in _FLOAT_PARAMS:  # 1 and 1.0 are the same temperature
        if isinstance(doc.get(name), int):
            doc[name] = float(doc[name])
    extra = {k: v for k, v in params.extra.items() if k not in VOLATILE_EXTRA}
    if extra:
        doc["extra"] = extra
    else:
        doc.pop("extra", None)
    return doc


def key_material(provider_kind: str, req: Request) -> dict[str, Any]:
    """The canonical document that ``cache_key`` hashes: what decides the answer, no more."""
    return {
        "v": KEY_VERSION,
        "provider": provider_kind,
        "model": req.model,
        "system": req.system,
        "tools": [_tool(t) for t in req.tools],
        "params": _params(req.params),
        "previous_response_id": req.previous_response_id,
        "messages": [_message(m) for m in req.messages],
    }


def canonical_json(doc: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal documents give equal bytes."""
    return msgspec.json.encode(doc, order="sorted")


def key_of_material(material: Mapping[str, Any]) -> str:
    """The hex sha256 of a (non-redacted) material document."""
    return hashlib.sha256(canonical_json(material)).hexdigest()


def cache_key(provider_kind: str, req: Request) -> str:
    """The cache key (hex sha256) of ``req`` sent to a provider of ``provider_kind``."""
    return key_of_material(key_material(provider_kind, req))


# --------------------------------------------------------------------------- prompt hashing


def hash_text(text: str) -> str:
    """``sha256:<hex>`` of a prompt string."""
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hash_leaves(value: Any, key: str | None = None) -> Any:
    """Every string leaf hashed, except values of structural keys (ids, names, tags)."""
    if isinstance(value, dict):
        return {k: _hash_leaves(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_hash_leaves(v, key) for v in value]
    if isinstance(value, str) and key not in _STRUCTURAL:
        return hash_text(value)
    return value


def _hash_descriptions(value: Any) -> Any:
    """Every ``description`` string in a tool (its own and those in its schema) hashed."""
    if isinstance(value, dict):
        return {
            k: hash_text(v) if k == "description" and isinstance(v, str)
            else _hash_descriptions(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hash_descriptions(v) for v in value]
    return value


def redact_material(material: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``material`` holding no prompt text: system, message contents (texts, tool
    results, arguments, reasoning) and tool descriptions become ``sha256:<hex>``."""
    out = dict(material)
    if isinstance(out.get("system"), str):
        out["system"] = hash_text(out["system"])
    out["tools"] = [_hash_descriptions(t) for t in out.get("tools", [])]
    out["messages"] = [
        {**m, "content": _hash_leaves(m.get("content"))} for m in out.get("messages", [])
    ]
    return out


# --------------------------------------------------------------------------- diff


def _same(a: Any, b: Any) -> bool:
    if type(a) is type(b) and a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        if a.startswith(HASH_PREFIX) and not b.startswith(HASH_PREFIX):
            return hash_text(b) == a
        if b.startswith(HASH_PREFIX) and not a.startswith(HASH_PREFIX):
            return hash_text(a) == b
    return False


def _child(path: str, key: str) -> str:
    name = key if key.isidentifier() else msgspec.json.encode(key).decode()
    if not path:
        return name
    return f"{path}.{name}" if key.isidentifier() else f"{path}[{name}]"


def _walk(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys(), key=_position):
            sub = _child(path, str(key))
            if key not in a or key not in b:
                out.append(sub)
            else:
                _walk(a[key], b[key], sub, out)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            sub = f"{path}[{i}]"
            if i >= len(a) or i >= len(b):
                out.append(sub)
            else:
                _walk(a[i], b[i], sub, out)
    elif not _same(a, b):
        out.append(path or "$")


_ORDER = {k: i for i, k in enumerate(
    ("v", "provider", "model", "system", "tools", "params", "previous_response_id",
     "messages", "role", "content")
)}


def _position(key: str) -> tuple[int, str]:
    """Top-level and message fields in document order; everything else alphabetically."""
    return (_ORDER.get(key, len(_ORDER)), key)


def diff(a: Mapping[str, Any], b: Mapping[str, Any], limit: int | None = None) -> list[str]:
    """The JSON paths where two material documents differ (``messages[3].content``,
    ``params.temperature``), in document order; at most ``limit`` of them. A hashed leaf
    (``sha256:...``) equals the plain string it is the hash of."""
    out: list[str] = []
    _walk(dict(a), dict(b), "", out)
    return out if limit is None else out[:limit]


def nearest(
    material: Mapping[str, Any], candidates: Iterable[tuple[str, Mapping[str, Any]]]
) -> tuple[str, list[str]] | None:
    """``(key, differing paths)`` of the candidate with the fewest differing paths (the
    first one on a tie), or None when there is no candidate."""
    best: tuple[str, list[str]] | None = None
    for key, other in candidates:
        paths = diff(material, other)
        if best is None or len(paths) < len(best[1]):
            best = (key, paths)
            if not paths:
                break
    return best


# --------------------------------------------------------------------------- values, errors


def encode_response(resp: Response) -> bytes:
    """The stored value: the canonical response as msgspec JSON."""
    return msgspec.json.encode(resp)


def decode_response(data: bytes) -> Response:
    """Inverse of ``encode_response`` (raises ``msgspec.DecodeError`` on a damaged value)."""
    return msgspec.json.decode(data, type=Response)


def replay_events(resp: Response) -> list[Event]:
    """The normalized events a cache hit replays: exactly those of a live turn."""
    return events_of(resp)


class CacheMissError(ProviderError):
    """A ``replay``-mode miss: fails the turn like a rejected request, and says why."""

    SHOWN = 3

    def __init__(self, key: str, near: tuple[str, list[str]] | None, *,
                 provider: str | None = None) -> None:
        self.key = key
        self.nearest_key = near[0] if near else None
        self.paths = list(near[1]) if near else []
        if near is None:
            why = "the cache holds no recorded request"
        elif not self.paths:
            why = f"nearest stored request {near[0][:8]} is identical but its response is unreadable"
        else:
            shown = ", ".join(self.paths[: self.SHOWN])
            more = len(self.paths) - self.SHOWN
            why = "nearest stored request differs at " + shown + (
                f" (+{more} more)" if more > 0 else "")
        super().__init__(
            ErrorKind.BAD_REQUEST,
            f"replay cache miss for key {key[:8]}: {why}",
            provider=provider,
            hint="re-record with --cache record-only",
            details="differing paths: " + ", ".join(self.paths) if self.paths else None,
            code="cache_miss",
        )
