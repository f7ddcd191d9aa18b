"""How a session ended: its status and the process exit code that goes with it (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs

__all__ = ["EXIT_CODES", "Outcome", "SessionResult", "Status", "outcome"]

Status = Literal["finished", "limit", "provider_failed", "interrupted", "terminated",
                 "cancelled", "error"]

EXIT_CODES: dict[str, int] = {
    "finished": 0,          # the model answered without tool calls
    "error": 1,             # an internal failure (a bug, a dead actor, an unwritable folder)
    "provider_failed": 3,   # provider failure after retries and fallbacks
    "limit": 4,             # a budget or turn limit was hit
    "interrupted": 130,     # SIGINT / Ctrl-C (or an interrupted turn)
    "cancelled": 130,       # Session.cancel() from an embedding program or the service
    "terminated": 143,      # SIGTERM
}


@attrs.frozen
class Outcome:
    status: Status
    exit_code: int
    answer: str = ""
    message: str = ""


def outcome(status: Status, *, answer: str = "", message: str = "") -> Outcome:
    return Outcome(status, EXIT_CODES[status], answer, message)


@attrs.frozen
class SessionResult:
    """What ``Session.result()`` returns."""

    run_id: str
    run_dir: Path
    status: Status
    exit_code: int
    answer: str = ""
    message: str = ""
    turns: int = 0
    totals: dict[str, Any] = attrs.field(factory=dict)
    summary: dict[str, Any] = attrs.field(factory=dict)
