"""Serve the local model (llama.cpp's llama-server + Gemma 3 270M) until Ctrl-C.

    python scripts/serve_local_model.py [--port 8080] [--host 127.0.0.1] [--ctx 4096]

Prints the ``base_url`` for each provider kind, then waits; Ctrl-C (or SIGTERM) stops the
server by its PID. Install the tier first with ``bash scripts/install_local_model.sh``.
With the default port, ``config/local.yaml`` needs no change::

    python main.py --config config/local.yaml
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.local_model import (
    MODEL_ALIAS,
    LocalModelError,
    LocalModelUnavailable,
    start_server,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    parser.add_argument("--threads", type=int, default=1,
                        help="generation threads (1 is fastest when other work shares the CPU)")
    parser.add_argument("--log", type=Path, default=None, help="server log file")
    args = parser.parse_args(argv)
    try:
        server = start_server(host=args.host, port=args.port or None, ctx=args.ctx,
                              threads=args.threads, log_path=args.log)
    except LocalModelUnavailable as exc:
        print(f"local model not installed: {exc}", file=sys.stderr)
        return 2
    except LocalModelError as exc:
        print(f"llama-server did not start: {exc}", file=sys.stderr)
        return 1

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_term)
    try:
        print(f"llama-server pid {server.pid}, model {MODEL_ALIAS}, log {server.log_path}")
        print(f"  kind: local / openai-chat  base_url: {server.base_url('local')}")
        print(f"  kind: openai-responses     base_url: {server.base_url('openai-responses')}")
        print(f"  kind: anthropic            base_url: {server.base_url('anthropic')}"
              "  (any api_key)")
        print(f"  CONDUCTOR_LOCAL_URL={server.base_url('local')} "
              "python main.py --config config/local.yaml")
        print("Ctrl-C stops it.", flush=True)
        while server.process.poll() is None:
            time.sleep(0.5)
        print(f"llama-server exited with {server.process.returncode}:\n{server.log_tail()}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        code = server.stop()
        print(f"stopped (exit {code})", file=sys.stderr)
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
