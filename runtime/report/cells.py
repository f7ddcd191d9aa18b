"""How every rendering of a run writes a time, a cost and a duration (the run list, the
Markdown and the HTML report agree to the character)."""

from __future__ import annotations

import datetime

__all__ = ["cost", "seconds", "when"]


def when(ts: float | None) -> str:
    """An epoch timestamp as local ``YYYY-MM-DD HH:MM:SS``; ``-`` when there is none."""
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cost(x: float | None) -> str:
    """Dollars to four places; ``unpriced`` when the model has no price."""
    return "unpriced" if x is None else f"${x:.4f}"


def seconds(x: float | None) -> str:
    """Seconds to two places; ``-`` when not measured."""
    return "-" if x is None else f"{x:.2f}"
