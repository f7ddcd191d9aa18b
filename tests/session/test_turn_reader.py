"""TurnReader: one turn's replies from the provider actor become records and an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from runtime.accounting import Accounts
from runtime.events import events_of
from runtime.model import Response, TextPart, Usage
from runtime.providers.actor import AttemptStarted, TurnDone
from runtime.redact import Redactor
from runtime.session.handle import read_journal
from runtime.session.journal import RunFolder, journal_actor
from runtime.session.recorder import Recorder
from runtime.session.turn import Answer, TurnReader

ANSWER = Response("r1", "m", [TextPart("one two three")], "stop", "stop", Usage(3, 3))


async def test_queued_replies_are_read_in_order_without_a_round_trip_each(tmp_path: Path) -> None:
    """Replies already queued are handled in order without a scheduling round trip each: a
    task ticking at every scheduling point ticks a few times while the reader runs, not once
    per reply."""
    folder = RunFolder(tmp_path / "run")
    folder.create(exist_ok=False)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        journal = await nursery.start(journal_actor, folder)
        rec = Recorder("run", journal, Redactor(), Accounts())
        send, recv = trio.open_memory_channel[Any](64)
        send.send_nowait(AttemptStarted(1, "req_1", True))
        for ev in events_of(ANSWER, chunk_chars=4):
            send.send_nowait([ev])
        send.send_nowait(TurnDone(ANSWER, 1, "req_1"))
        send.close()
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        got = await TurnReader(rec, "main", "m").read(recv)
        during = ticks - before
        await rec.flush()
        await journal.aclose()
        nursery.cancel_scope.cancel()
    assert isinstance(got, Answer) and got.response.text == ANSWER.text
    assert during <= 3  # receive and aclose; one per reply before
    types = [rec.type for rec, _ in read_journal(folder.path)]
    assert types == ["request", "assistant"]
