"""Graceful drain: SIGTERM during running sessions, exit 0 in time, restart, all finish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from .client import Api, records
from .conftest import Fake, server_config

GRACE = 4.0


async def test_sigterm_drains_and_restart_resumes(tmp_path: Path, fake: Fake,
                                                   serve: Any) -> None:
    """Three running sessions (two mid-answer, one waiting for an approval) and one queued:
    on SIGTERM /ready turns 503 and new sessions get 503; the session whose turn ends within
    the grace (its approval arrives during the drain) stops at the end of that turn, the two
    others are interrupted at the deadline; the process exits 0 within grace + 5 s. After a
    restart all four resume by themselves and finish."""
    config = server_config(tmp_path, fake, max_sessions=3, shutdown_grace=GRACE)
    first = serve(config)
    api = Api(first.url)
    try:
        stalled = [(await api.create(f"[stall] number {i}"))["id"] for i in (1, 2)]
        asking = (await api.create("[tool] number 3"))["id"]
        queued = await api.create("number 4, queued")
        assert queued["status"] == "queued"
        with trio.fail_after(30):
            for sid in stalled:
                await api.events(sid, until="request")
            await api.events(asking, until="approval_request")
        t0 = trio.current_time()
        import os
        import signal

        os.kill(first.pid, signal.SIGTERM)
        assert await trio.to_thread.run_sync(first.draining.wait, 30)
        assert (await api.call("GET", "/ready", None)).status_code == 503
        refused = await api.call("POST", "/v1/sessions", json={"task": "too late"})
        assert refused.status_code == 503 and refused.json()["error"]["kind"] == "unavailable"
        approved = await api.call("POST", "/v1/sessions/{id}/approvals/{call_id}", id=asking,
                                  call_id="call_1", json={"allow": True})
        assert approved.status_code == 200
    finally:
        await api.aclose()
    code = await trio.to_thread.run_sync(first.proc.wait)
    elapsed = trio.current_time() - t0
    assert code == 0
    assert elapsed < GRACE + 5
    logging = tmp_path / "logging"
    for sid in stalled:
        journal = _journal(logging, sid)
        assert journal[-1]["type"] == "session_end" and journal[-1]["status"] == "terminated"
        assert any(r["type"] == "request" for r in journal)
    at_turn_end = _journal(logging, asking)
    assert [r["type"] for r in at_turn_end[-2:]] == ["turn_end", "session_end"]
    assert at_turn_end[-1]["status"] == "terminated"
    assert not (logging / queued["id"]).exists()
    state = {}
    for line in (logging / "server_state.jsonl").read_text().splitlines():
        rec = json.loads(line)
        state[rec["id"]] = rec
    assert all(state[s]["status"] == "interrupted" and state[s]["resume"]
               for s in [*stalled, asking])
    assert state[queued["id"]]["status"] == "queued"

    fake.brain.hold = False
    second = serve(config)
    api = Api(second.url)
    try:
        with trio.fail_after(60):
            for sid in [*stalled, asking, queued["id"]]:
                await api.events(sid)
                view = await api.get(sid)
                assert view["status"] == "finished", view
                assert view["answer"]
        ended = [r for r in records(await api.events(asking)) if r["type"] == "session_end"]
        assert [r["status"] for r in ended] == ["terminated", "finished"]
    finally:
        await api.aclose()


def _journal(logging: Path, sid: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (logging / sid / "transcript.jsonl").read_text().splitlines()]
