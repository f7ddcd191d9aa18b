"""Sessions over loopback HTTP: keep_open conversations, cancellation, idempotent creation,
listing with pagination and ownership, and the queue behind server.max_sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from .client import Api, records
from .conftest import Fake, server_config


async def test_keep_open_conversation_then_cancel(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """A keep_open session answers, takes the next message over HTTP (queued for it while it
    finishes its turn), answers again, and ends as cancelled; a message to
    an ended or one-shot session is a 409."""
    api = Api(serve(server_config(tmp_path, fake)).url)
    try:
        sid = (await api.create("first question", keep_open=True))["id"]
        with trio.fail_after(30):
            events = await api.events(sid, until="turn_end")
        assert next(r["type"] for r in records(events)) == "session_start"
        sent = await api.call("POST", "/v1/sessions/{id}/messages", id=sid,
                              json={"text": "second question"})
        assert sent.status_code == 202
        with trio.fail_after(30):
            seen = await api.events(sid, last_event_id=records(events)[-1]["seq"],
                                    until="turn_end")
        texts = [r["text"] for r in records(seen) if r["type"] == "assistant"]
        assert texts and texts[0].startswith("answer 2 to: second question")
        assert next(r["type"] for r in records(seen)) == "user"
        cancelled = await api.call("POST", "/v1/sessions/{id}/cancel", id=sid)
        assert cancelled.status_code == 202
        with trio.fail_after(30):
            tail = await api.events(sid, last_event_id=records(seen)[-1]["seq"])
        end = records(tail)[-1]
        assert end["type"] == "session_end" and end["status"] == "cancelled"
        assert (await api.get(sid))["status"] == "cancelled"
        late = await api.call("POST", "/v1/sessions/{id}/messages", id=sid,
                              json={"text": "too late"})
        assert late.status_code == 409
        again = await api.call("POST", "/v1/sessions/{id}/cancel", id=sid)
        assert again.status_code == 409
        not_open = (await api.create("one shot"))["id"]
        refused = await api.call("POST", "/v1/sessions/{id}/messages", id=not_open,
                                 json={"text": "more"})
        assert refused.status_code == 409
    finally:
        await api.aclose()


async def test_idempotency_key(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """The same Idempotency-Key and body give the same session (marked as replayed); the
    same key with another body is a 409; another caller's same key is its own."""
    api = Api(serve(server_config(tmp_path, fake)).url)
    try:
        headers = {"idempotency-key": "order-42"}
        one = await api.call("POST", "/v1/sessions", headers=headers, json={"task": "once"})
        two = await api.call("POST", "/v1/sessions", headers=headers, json={"task": "once"})
        assert one.status_code == two.status_code == 201
        assert one.json()["id"] == two.json()["id"]
        assert two.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in one.headers
        other_body = await api.call("POST", "/v1/sessions", headers=headers,
                                    json={"task": "twice"})
        assert other_body.status_code == 409
        assert other_body.json()["error"]["kind"] == "idempotency_mismatch"
        writer = await api.call("POST", "/v1/sessions", "writer", headers=headers,
                                json={"task": "once"})
        assert writer.status_code == 201 and writer.json()["id"] != one.json()["id"]
        listed = await api.call("GET", "/v1/sessions")
        assert [s["id"] for s in listed.json()["sessions"]] == [one.json()["id"]]
    finally:
        await api.aclose()


async def test_list_pages_and_ownership(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """A caller lists its own sessions, newest first, page by page with ``next``; admin
    lists everyone's; a status filter keeps only that status."""
    api = Api(serve(server_config(tmp_path, fake)).url)
    try:
        mine = [(await api.create(f"task {i}"))["id"] for i in range(5)]
        theirs = (await api.create("theirs", "writer"))["id"]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await api.call("GET", "/v1/sessions", params=params)).json()
            seen += [s["id"] for s in page["sessions"]]
            pages += 1
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == list(reversed(mine)) and pages == 3
        everyone = (await api.call("GET", "/v1/sessions", "admin",
                                   params={"limit": 200})).json()
        assert {s["id"] for s in everyone["sessions"]} == {*mine, theirs}
        for sid in mine:
            with trio.fail_after(30):
                await api.events(sid)
        done = (await api.call("GET", "/v1/sessions", params={"status": "finished"})).json()
        assert {s["id"] for s in done["sessions"]} == set(mine)
        running = (await api.call("GET", "/v1/sessions", params={"status": "running"})).json()
        assert running["sessions"] == []
    finally:
        await api.aclose()


async def test_queue_beyond_max_sessions(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """With max_sessions 1 and max_queue 1: the first runs, the second is queued (its
    stream waits for it), the third is refused with 429; cancelling the queued one ends it
    without running, and the queue moves on when the first ends."""
    api = Api(serve(server_config(tmp_path, fake, max_sessions=1, max_queue=1)).url)
    try:
        first = await api.create("[tool] hold the slot")
        assert first["status"] == "running"
        second = await api.create("waits its turn")
        assert second["status"] == "queued"
        third = await api.call("POST", "/v1/sessions", json={"task": "no room"})
        assert third.status_code == 429 and third.json()["error"]["kind"] == "queue_full"
        assert int(third.headers["retry-after"]) >= 1
        cancelled = await api.call("POST", "/v1/sessions/{id}/cancel", id=second["id"])
        assert cancelled.json()["status"] == "cancelled"
        ended = await api.events(second["id"])
        assert [e.event for e in ended] == ["stream_end"]
        fourth = await api.create("after the cancel")
        assert fourth["status"] == "queued"
        with trio.fail_after(30):
            await api.events(first["id"], until="approval_request")
            assert (await api.get(fourth["id"]))["status"] == "queued"
            await api.call("POST", "/v1/sessions/{id}/approvals/{call_id}", id=first["id"],
                           call_id="call_1", json={"allow": False, "reason": "not now"})
            tail = records(await api.events(fourth["id"]))
        assert tail[0]["type"] == "session_start" and tail[-1]["status"] == "finished"
        assert (await api.get(first["id"]))["status"] == "finished"
    finally:
        await api.aclose()
