"""What the fake provider answers: script entries, recorded requests and reply plans.

Pure: no trio, no sockets. A script is an ordered queue of entries, one consumed per
provider request:

* a canonical ``Response``: encoded for the protocol of the request, streamed when the
  request body says ``"stream": true``;
* a callable ``(RecordedRequest) -> entry`` for dynamic answers;
* a ``Fault`` (see ``faults``), possibly wrapping a response it breaks part-way;
* a ``Raw`` reply: status, headers and body bytes exactly as given.

Whatever the entry, the server turns it into a *plan*: a list of ``Head`` / ``Send`` /
``Sleep`` / ``Cut`` steps that the HTTP layer carries out, so faults are transformations of
plain lists and can be tested without a socket.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import json
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from ..model import Request, Response

if TYPE_CHECKING:
    from .faults import Fault

__all__ = [
    "Cut",
    "Entry",
    "Head",
    "Raw",
    "RecordedRequest",
    "Script",
    "Send",
    "Sleep",
    "Step",
    "encoder_for",
    "plan_of",
    "protocol_of_path",
    "split_bytes",
]

# the module of runtime.testing.wire that encodes each protocol
ENCODERS = {
    "openai-chat": "openai_chat",
    "openai-responses": "openai_responses",
    "anthropic": "anthropic",
}

_ROUTES = (
    ("/chat/completions", "openai-chat"),
    ("/responses", "openai-responses"),
    ("/messages", "anthropic"),
)


def protocol_of_path(path: str) -> str | None:
    """The protocol served at a request target (query ignored), or None."""
    bare = path.split("?", 1)[0].rstrip("/")
    for suffix, protocol in _ROUTES:
        if bare.endswith(suffix):
            return protocol
    return None


def encoder_for(protocol: str) -> Any:
    """The ``runtime.testing.wire`` encoder module of a protocol (imported lazily)."""
    try:
        name = ENCODERS[protocol]
    except KeyError:
        raise KeyError(f"unknown protocol {protocol!r}; known: {', '.join(ENCODERS)}") from None
    return importlib.import_module(f"runtime.testing.wire.{name}")


@attrs.frozen
class RecordedRequest:
    """One provider request as the server received it."""

    method: str
    path: str
    query: str
    protocol: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    connection: int = 0

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed answer (``"stream": true``)."""
        return self.body.get("stream") is True

    @property
    def canonical(self) -> Request:
        """The request decoded into the canonical model by its protocol's ``decode_request``."""
        decoded: Request = encoder_for(self.protocol).decode_request(self.body)
        return decoded


@attrs.frozen
class Raw:
    """A reply sent as given. A list body is sent chunked, one element per chunk (an SSE
    event, say); a bytes or str body is sent with a content-length."""

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes | str | list[bytes] = b""

    @property
    def chunks(self) -> list[bytes]:
        if isinstance(self.body, list):
            return list(self.body)
        return [self.body.encode() if isinstance(self.body, str) else self.body]

    @property
    def chunked(self) -> bool:
        return isinstance(self.body, list)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Raw:
        hdrs = {"content-type": "application/json", **(headers or {})}
        return cls(status, hdrs, json.dumps(payload).encode())


Entry: TypeAlias = "Response | Raw | Fault | Callable[[RecordedRequest], Any]"


# --- reply plans -------------------------------------------------------------------------

@attrs.frozen
class Head:
    """Send the status line and headers; ``length`` None means chunked transfer encoding."""

    status: int
    headers: tuple[tuple[str, str], ...]
    length: int | None


@attrs.frozen
class Send:
    data: bytes


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Cut:
    """Close the connection at once: no terminating chunk, no remaining bytes."""


Step: TypeAlias = Head | Send | Sleep | Cut

_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


def plan_of(raw: Raw) -> list[Step]:
    """The plan that sends ``raw`` completely."""
    chunks = raw.chunks
    headers = tuple((k.lower(), v) for k, v in raw.headers.items() if k.lower() not in _FRAMING)
    length = None if raw.chunked else sum(len(c) for c in chunks)
    return [Head(raw.status, headers, length), *(Send(c) for c in chunks)]


def split_bytes(data: bytes, pieces: int, seed: str | int = 0) -> list[bytes]:
    """``data`` cut into ``pieces`` non-empty parts at arbitrary (reproducible) offsets."""
    if pieces <= 1 or len(data) <= 1:
        return [data]
    rng = random.Random(seed)
    n = min(pieces, len(data))
    cuts = sorted(rng.sample(range(1, len(data)), n - 1))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


_KEPT_HEADERS = ("content-type", "retry-after")


class Script:
    """An ordered queue of entries; each provider request consumes one."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: collections.deque[Entry] = collections.deque(entries)

    def add(self, *entries: Entry) -> Script:
        """Append entries; returns the script for chaining."""
        self._entries.extend(entries)
        return self

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def remaining(self) -> list[Entry]:
        return list(self._entries)

    def take(self, req: RecordedRequest) -> Entry | None:
        """The entry that answers ``req``, or None when the script ran out. A fault that does
        not apply to the request (streaming refused, asked without streaming) is dropped and
        the next entry answers."""
        from .faults import Fault

        while self._entries:
            entry = self._entries.popleft()
            if isinstance(entry, Fault) and not entry.applies_to(req):
                continue
            return entry
        return None

    @classmethod
    def from_recording(cls, path: str | Path, *, pieces: int = 4) -> Script:
        """Replay a recording file's responses verbatim and in order: status, content-type
        and retry-after headers, body bytes. Event streams are sent chunked in ``pieces``
        parts cut at arbitrary byte offsets (reproducible per file), JSON with a length."""
        p = Path(path)
        rec = json.loads(p.read_text())
        entries: list[Entry] = []
        for i, inter in enumerate(rec["interactions"]):
            resp = inter["response"]
            headers = {k.lower(): v for k, v in resp.get("headers", {}).items()
                       if k.lower() in _KEPT_HEADERS}
            body = resp["body"].encode()
            if "text/event-stream" in headers.get("content-type", ""):
                entries.append(Raw(resp["status"], headers,
                                   split_bytes(body, pieces, seed=f"{p.name}#{i}")))
            else:
                entries.append(Raw(resp["status"], headers, body))
        return cls(entries)
