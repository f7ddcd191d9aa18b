"""Loading ``../shared/recordings`` and comparing a decoded response with its ``expect``.

The folder is found from ``CONDUCTOR_RECORDINGS`` or beside the repository; new files dropped
into it are picked up without code changes (tests parametrize over whatever is there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runtime.errors import ProviderError
from runtime.model import BuiltinToolPart, ReasoningPart, Response, Usage

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = Path(os.environ.get("CONDUCTOR_RECORDINGS", ROOT.parent / "shared" / "recordings"))

# the codec that decodes each folder's files
CODEC_OF = {
    "openai-chat": "openai-chat",
    "openrouter": "openai-chat",
    "openai-responses": "openai-responses",
    "anthropic": "anthropic",
}


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


def canonical_usage(protocol: str, u: dict[str, Any] | None) -> Usage | None:
    """The canonical usage implied by an ``expect.usage`` record."""
    if u is None:
        return None
    cached = u.get("cached_tokens") or 0
    written = u.get("cache_write_tokens") or 0
    inp = u.get("input_tokens") or 0
    if protocol == "anthropic":
        inp += cached + written
    return Usage(
        input_tokens=inp,
        output_tokens=u.get("output_tokens") or 0,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=u.get("reasoning_tokens") or 0,
    )


def reasoning_view(p: ReasoningPart) -> dict[str, Any]:
    """A reasoning part in the shape of an ``expect.reasoning`` record (``kind`` is its type)."""
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
    d: dict[str, Any] = {"type": p.item_type, "id": p.id}
    if protocol == "anthropic":
        d["name"] = p.name
    return d


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
        for c in resp.tool_calls
    ]
    want = [{k: v for k, v in c.items() if k != "argument_delta_count"} for c in exp["tool_calls"]]
    assert calls == want
    if argument_deltas is not None:
        counts = [c.get("argument_delta_count") for c in exp["tool_calls"]]
        assert list(argument_deltas.values()) == counts
    builtins = [builtin_view(p, codec) for p in resp.parts if isinstance(p, BuiltinToolPart)]
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
