"""``python -m runtime.wire decode PROTOCOL FILE [--stream]``: decode a captured response.

Reads a raw response body (an SSE event stream or a JSON body, the format is detected
unless ``--stream`` / ``--json`` says it) and prints one JSON object: ``text``,
``tool_calls`` (``id``, ``name``, ``arguments`` parsed, ``kind``: ``function`` or a client-run
Responses kind whose ``arguments`` for ``custom`` is the freeform text), ``finish_reason``,
``usage`` (canonical), ``reasoning``, ``error``.
A missing file or an unknown protocol is a one-line error on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..events import Assembler, ErrorEvent
from ..model import Response
from . import PROTOCOLS, decode_all

__all__ = ["decode_capture", "main"]


def _looks_like_sse(body: bytes) -> bool:
    head = body.lstrip(b"\xef\xbb\xbf").lstrip()[:16]
    return head.startswith((b"data:", b"event:", b":", b"id:", b"retry:"))


def decode_capture(protocol: str, body: bytes, *, stream: bool | None = None) -> dict[str, Any]:
    """The documented JSON view of a captured body (pure)."""
    if stream is None:
        stream = _looks_like_sse(body)
    events, _, failure = decode_all(protocol, body, stream=stream)
    asm = Assembler(protocol)
    for ev in events:
        asm.add(ev)
    error: dict[str, Any] | None = None
    if failure is not None:
        error = {"kind": failure.kind.value, "status": failure.status,
                 "message": failure.message}
    elif asm.error is not None:
        failed: ErrorEvent = asm.error
        error = {"kind": failed.kind, "status": failed.status, "message": failed.message}
    return view(asm.response(), error)


def view(resp: Response, error: dict[str, Any] | None) -> dict[str, Any]:
    calls = []
    for c in resp.tool_calls:
        try:
            args: Any = json.loads(c.arguments)
        except ValueError:
            args = c.arguments
        calls.append({"id": c.id, "name": c.name, "arguments": args, "kind": c.kind})
    usage = None
    if resp.usage is not None:
        u = resp.usage
        usage = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                 "cache_read_tokens": u.cache_read_tokens,
                 "cache_write_tokens": u.cache_write_tokens,
                 "reasoning_tokens": u.reasoning_tokens, "total_tokens": u.total_tokens}
    return {
        "id": resp.id,
        "model": resp.model,
        "text": resp.text,
        "tool_calls": calls,
        "finish_reason": resp.finish_reason,
        "usage": usage,
        "reasoning": [
            {"id": r.id, "kind": r.kind, "text": r.text, "signature": r.signature is not None,
             "encrypted": r.encrypted is not None}
            for r in resp.reasoning
        ],
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.wire",
                                     description="Decode a captured provider response.")
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="decode a raw response body (SSE or JSON)")
    dec.add_argument("protocol", help=f"one of: {', '.join(PROTOCOLS)}")
    dec.add_argument("file", help="the raw response body; - for stdin")
    fmt = dec.add_mutually_exclusive_group()
    fmt.add_argument("--stream", action="store_true", default=None,
                     help="the body is an event stream (detected when omitted)")
    fmt.add_argument("--json", dest="stream", action="store_false",
                     help="the body is a JSON document")
    args = parser.parse_args(argv)
    if args.protocol not in PROTOCOLS:
        print(f"error: unknown protocol {args.protocol!r}; use one of: {', '.join(PROTOCOLS)}",
              file=sys.stderr)
        return 2
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps(decode_capture(args.protocol, body, stream=args.stream), indent=2,
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
