"""Loading ``../shared/recordings`` and comparing a decoded response with its ``expect``.

The folder is found from ``CONDUCTOR_RECORDINGS`` or beside the repository; new files dropped
into it are picked up without code changes (tests parametrize over whatever is there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from runtime.errors import ProviderError, error_from_event, error_from_response
from runtime.events import ErrorEvent, Event, ToolCallDelta, ToolCallStart, assemble
from runtime.model import BuiltinToolPart, Response, ToolCallPart, Usage
from runtime.providers.kinds import KINDS
from runtime.testing.expect import builtin_view, reasoning_view
from runtime.wire import decode_all

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = Path(os.environ.get("CONDUCTOR_RECORDINGS", ROOT.parent / "shared" / "recordings"))

# the codec that decodes each folder's files: folders are named after provider kinds
CODEC_OF = {name: kind.protocol for name, kind in KINDS.items() if kind.protocol}


def recording_files(protocol: str | None = None) -> list[Path]:
    if not RECORDINGS.is_dir():
        return []
    files = sorted(RECORDINGS.glob("*/*.json"))
    if protocol is not None:
        files = [f for f in files if f.parent.name == protocol]
    return files


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def interactions(protocol: str | None = None) -> list[tuple[str, dict[str, Any], dict[str, Any],
                                                            dict[str, Any]]]:
    """(test id, recording, interaction, expect) for every interaction of every file."""
    out = []
    for f in recording_files(protocol):
        rec = load(f)
        for i, (inter, exp) in enumerate(zip(rec["interactions"], rec["expect"], strict=True)):
            out.append((f"{f.parent.name}/{f.stem}#{i}", rec, inter, exp))
    return out


@attrs.frozen
class Decoded:
    """A recorded response as a client sees it."""

    response: Response | None
    error: ProviderError | None
    events: list[Event]
    argument_deltas: dict[int, int] | None  # ToolCallDelta count per call index (streams)
    sse_events: int | None  # SSE events dispatched (streams)


def is_stream(inter: dict[str, Any]) -> bool:
    return "event-stream" in inter["response"]["headers"].get("content-type", "")


def decode_recorded(folder: str, inter: dict[str, Any]) -> Decoded:
    """Decode one recorded response with the codec of ``folder``: an HTTP error through
    ``error_from_response``, a body or a stream through the codec; an error reported inside
    a 200 response (or one that stopped decoding) becomes the ``error``."""
    r = inter["response"]
    body = r["body"].encode()
    if r["status"] >= 400:
        return Decoded(None, error_from_response(r["status"], r["headers"], body), [], None,
                       None)
    protocol = CODEC_OF[folder]
    stream = is_stream(inter)
    events, count, error = decode_all(protocol, body, stream=stream)
    for ev in events:
        if isinstance(ev, ErrorEvent):
            error = error_from_event(ev.kind, ev.message, status=ev.status, type=ev.type,
                                     code=ev.code)
    deltas: dict[int, int] | None = None
    if stream:
        deltas = function_argument_deltas(events)
    return Decoded(assemble(events, protocol=protocol), error, events, deltas,
                   count if stream else None)


def function_argument_deltas(events: list[Event]) -> dict[int, int]:
    """ToolCallDelta count per function call index (``expect.argument_delta_count`` counts
    function calls only)."""
    functions = {ev.index for ev in events
                 if isinstance(ev, ToolCallStart) and ev.kind == "function"}
    deltas: dict[int, int] = {}
    for ev in events:
        if isinstance(ev, ToolCallDelta) and ev.index in functions:
            deltas[ev.index] = deltas.get(ev.index, 0) + 1
    return deltas


def canonical_usage(protocol: str, u: dict[str, Any] | None) -> Usage | None:
    """The canonical usage implied by an ``expect.usage`` record."""
    if u is None:
        return None
    cached = u.get("cached_tokens") or 0
    written = u.get("cache_write_tokens") or 0
    inp = u.get("input_tokens") or 0
    if protocol == "anthropic":  # Anthropic's input_tokens is the uncached part only
        inp += cached + written
    else:  # the cached parts are within prompt_tokens; a gateway counting a cache write
        cached = min(cached, inp - written)  # as cached too gets what is left
    return Usage(
        input_tokens=inp,
        output_tokens=u.get("output_tokens") or 0,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=u.get("reasoning_tokens") or 0,
    )


def assert_matches(protocol: str, resp: Response | None, error: ProviderError | None,
                   exp: dict[str, Any], *, argument_deltas: dict[int, int] | None = None) -> None:
    """Assert that a decoded response (or error) is what ``expect`` records."""
    codec = CODEC_OF[protocol]
    if exp["error"] is not None:
        e = exp["error"]
        assert error is not None, f"expected error {e}, got a response"
        assert error.type == e["type"], (error.type, e["type"])
        assert error.code == e["code"], (error.code, e["code"])
        assert e["message"] in error.message, (error.message, e["message"])
        if not e.get("in_stream"):
            assert error.status == e["status"]
            return
    else:
        assert error is None, f"unexpected error {error}"
    assert resp is not None
    assert resp.text == exp["text"]
    assert resp.text_parts == exp["text_parts"]
    calls = [
        {"id": c.id, "name": c.name, "arguments": json.loads(c.arguments)}
        | ({"item_id": c.item_id} if codec == "openai-responses" else {})
        for c in resp.tool_calls if c.kind == "function"
    ]
    want = [{k: v for k, v in c.items() if k != "argument_delta_count"} for c in exp["tool_calls"]]
    assert calls == want
    if argument_deltas is not None:
        counts = [c.get("argument_delta_count") for c in exp["tool_calls"]]
        assert list(argument_deltas.values()) == counts
    # the format lists every non-function output item with the provider's items, the
    # client-run Responses kinds (custom_tool_call, shell_call, ...) included
    builtins = [builtin_view(p, codec) if isinstance(p, BuiltinToolPart) else
                {"type": (p.raw or {}).get("type"), "id": p.item_id} for p in resp.parts
                if isinstance(p, BuiltinToolPart)
                or (isinstance(p, ToolCallPart) and p.kind != "function")]
    assert builtins == exp["builtin_tool_calls"]
    assert resp.finish_reason == exp["finish_reason"]
    assert resp.usage == canonical_usage(codec, exp["usage"])
    got = [reasoning_view(p) for p in resp.reasoning]
    assert len(got) == len(exp["reasoning"]), (got, exp["reasoning"])
    for g, want in zip(got, exp["reasoning"], strict=True):
        # records list only the keys the provider sent; an empty text is no text
        norm = {k: (None if v == "" else v) for k, v in want.items()}
        assert {k: (None if g.get(k) == "" else g.get(k)) for k in norm} == norm
    assert resp.refusal == exp["refusal"]
    if exp["response_id"] is not None:
        assert resp.id == exp["response_id"]
    if exp["model"] is not None:
        assert resp.model == exp["model"]
