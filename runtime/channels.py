"""Sending on trio memory channels without a scheduling round trip.

``await channel.send(x)`` is a scheduling point even when the channel has room: the sender
yields to the scheduler once per message. ``send_soon`` sends with ``send_nowait`` while
there is room and awaits ``send`` only when the channel is full, so a full channel still
holds the sender back (backpressure). The receiver is woken either way. Not a cancellation
point when there is room: a caller that needs one has it elsewhere (every actor loop does).
"""

from __future__ import annotations

from typing import TypeVar

import trio

__all__ = ["send_soon"]

T = TypeVar("T")


async def send_soon(channel: trio.MemorySendChannel[T], msg: T) -> None:
    """Send ``msg``: at once while the channel has room, else wait for room."""
    try:
        channel.send_nowait(msg)
    except trio.WouldBlock:
        await channel.send(msg)
