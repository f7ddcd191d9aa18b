"""``python -m runtime.traces RUN_DIR``: a shareable plain summary of a run's reasoning.

Decrypts ``reasoning.enc`` with the run's key (``$CONDUCTOR_TRACE_KEY`` or the
``.conductor-reasoning.key`` file beside the logging folder) and prints, as JSON, one entry
per trace: turn, provider, kind and readable text. Signatures, encrypted content and raw
provider items are never printed. A changed byte, a wrong key or a file from another run
fails with a one-line error and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import crypto
from .session.traces import TRACE_FILE, read_traces

__all__ = ["export_summary", "main"]


def export_summary(run_dir: Path, key: bytes) -> list[dict[str, Any]]:
    """The readable part of every trace of a run (pure but for reading the file)."""
    out = []
    for rec in read_traces(run_dir / TRACE_FILE, key, run_dir.name):
        if "reasoning" not in rec:  # a vendor's compaction item: its readable summary
            item = rec.get("builtin") or {}
            raw = item.get("raw") or {}
            out.append({"turn": rec["turn"], "provider": rec["provider"],
                        "kind": item.get("item_type"), "id": item.get("id"),
                        "text": raw.get("content") or "", "summary": [], "opaque": True})
            continue
        r = rec["reasoning"]
        out.append({"turn": rec["turn"], "provider": rec["provider"], "kind": r.get("kind"),
                    "id": r.get("id"), "text": r.get("text", ""),
                    "summary": r.get("summary", []),
                    "opaque": bool(r.get("signature") or r.get("encrypted"))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.traces", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="logging/<run_id>")
    ap.add_argument("--key-env", default="CONDUCTOR_TRACE_KEY")
    args = ap.parse_args(argv)
    run_dir: Path = args.run_dir
    if not (run_dir / TRACE_FILE).is_file():
        print(f"error: {run_dir / TRACE_FILE} does not exist", file=sys.stderr)
        return 2
    if os.environ.get(args.key_env):
        key = crypto.key_from_text(os.environ[args.key_env])
    else:
        key_file = run_dir.resolve().parent.parent / ".conductor-reasoning.key"
        if not key_file.is_file():
            print(f"error: set {args.key_env} (no {key_file})", file=sys.stderr)
            return 2
        key = crypto.key_from_text(key_file.read_text())
    try:
        summary = export_summary(run_dir, key)
    except crypto.TraceDecryptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
