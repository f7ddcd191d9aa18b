"""A tool that is not idempotent: each call appends its label to ``$COUNT_FILE`` (loaded
by workers through ``tools.python: [tests.fleet.count_tool:count]``). While the file
``$COUNT_GATE`` exists, calls wait before counting (a test holds them there to kill a
worker in the middle of them)."""

from __future__ import annotations

import os
import time


def count(label: str) -> str:
    """Count one call.

    Args:
        label: what to write.
    """
    gate = os.environ.get("COUNT_GATE")
    while gate and os.path.exists(gate):
        time.sleep(0.01)
    fd = os.open(os.environ["COUNT_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, label.encode() + b"\n")
    finally:
        os.close(fd)
    return f"counted {label}"
