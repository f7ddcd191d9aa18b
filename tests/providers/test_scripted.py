"""The scripted provider's delivery: batches go out without a round trip, with backpressure."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from runtime.events import Event, TextDelta, assemble
from runtime.model import Message, Request, Response, TextPart, Usage
from runtime.providers.scripted import ScriptedProvider

ANSWER = Response("r1", "scripted", [TextPart("abcdefgh" * 5)], "stop", "stop", Usage(3, 5))
REQUEST = Request("scripted", [Message.user("hi")])


async def test_batches_are_queued_without_waiting_while_the_channel_has_room() -> None:
    """With room for every batch, the attempt returns with all of them queued, in order."""
    provider = ScriptedProvider("main", [ANSWER])
    send, recv = trio.open_memory_channel[Any](64)
    resp = await provider.attempt(REQUEST, send)
    send.close()
    batches = [b async for b in recv]
    events: list[Event] = [ev for b in batches for ev in b]
    assert len(batches) == len(events) > 5  # one batch per event, as a stream
    assert "".join(ev.text for ev in events if isinstance(ev, TextDelta)) == ANSWER.text
    assert assemble(events).text == resp.text == ANSWER.text


async def test_a_full_channel_holds_the_attempt_back() -> None:
    """A consumer that does not read holds the stream back (backpressure), then gets it all."""
    provider = ScriptedProvider("main", [ANSWER])
    send, recv = trio.open_memory_channel[Any](2)
    done: list[Response] = []

    async def attempt() -> None:
        done.append(await provider.attempt(REQUEST, send))
        await send.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(attempt)
        await trio.testing.wait_all_tasks_blocked()
        assert not done and recv.statistics().current_buffer_used == 2
        events = [ev async for batch in recv for ev in batch]
    assert done[0].text == ANSWER.text
    assert "".join(ev.text for ev in events if isinstance(ev, TextDelta)) == ANSWER.text


async def test_a_streamed_answer_costs_no_scheduling_point_per_batch() -> None:
    """Like the HTTP provider, batches go out with ``send_nowait`` while there is room: a
    task ticking at every scheduling point ticks a few times during the attempt, not once
    per batch."""
    provider = ScriptedProvider("main", [ANSWER])
    send, recv = trio.open_memory_channel[Any](64)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        await provider.attempt(REQUEST, send)
        during = ticks - before
        nursery.cancel_scope.cancel()
    assert recv.statistics().current_buffer_used > 5
    assert during <= 3  # one per batch before
