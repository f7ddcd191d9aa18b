"""send_soon: a message goes out without a scheduling point while the channel has room."""

from __future__ import annotations

import trio
import trio.testing

from runtime.channels import send_soon


async def test_room_means_no_scheduling_point_and_a_full_channel_waits() -> None:
    """With room the sender does not yield (another ready task does not run); with the
    channel full it waits until the receiver takes a message."""
    send, recv = trio.open_memory_channel[int](1)
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await send_soon(send, 1)
        assert ran == []  # no scheduling point: the other task has not run yet
        done = trio.Event()

        async def second() -> None:
            await send_soon(send, 2)
            done.set()

        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert ran == ["other"] and not done.is_set()  # full: the sender waits
        assert await recv.receive() == 1
        await done.wait()
        assert await recv.receive() == 2
