"""The HTTP API over real loopback HTTP against ``serve`` as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from .client import Api, records
from .conftest import Fake, server_config


async def test_three_watchers_and_an_approval(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """Three watchers (one reconnecting with Last-Event-ID mid-way) see every record once and
    in order, with live text deltas; another caller's sessions:read key cannot see it nor
    approve (403), a second key with approvals:write approves, and the session finishes with
    the tool's output."""
    served = serve(server_config(tmp_path, fake))
    api = Api(served.url)
    try:
        created = await api.create("please run it [tool]", metadata={"ticket": "T-1"})
        sid = created["id"]
        assert created["events_url"] == f"/v1/sessions/{sid}/events"
        seen: dict[str, list[Any]] = {}
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                async def watch(name: str, key: str) -> None:
                    seen[name] = await api.events(sid, key)

                nursery.start_soon(watch, "a", "ops")
                nursery.start_soon(watch, "b", "admin")
                first = await api.events(sid, "ops", until="approval_request")
                request = records(first)[-1]
                hidden = await api.call("GET", "/v1/sessions/{id}", "viewer", id=sid)
                assert hidden.status_code == 404
                view = await api.get(sid, "ops")
                assert view["status"] == "waiting_approval"
                assert view["pending_approvals"] == [{
                    "call_id": "call_1", "name": "run_shell",
                    "arguments": {"command": "echo approved-run"}}]
                denied = await api.call("POST", "/v1/sessions/{id}/approvals/{call_id}",
                                        "viewer", id=sid, call_id="call_1",
                                        json={"allow": True})
                assert denied.status_code == 403
                assert denied.json()["error"]["kind"] == "forbidden"
                ok = await api.call("POST", "/v1/sessions/{id}/approvals/{call_id}", "approver",
                                    id=sid, call_id="call_1", json={"allow": True})
                assert ok.status_code == 200 and ok.json()["allow"] is True
                rest = await api.events(sid, "ops", last_event_id=request["seq"])
        transcript = [json.loads(line) for line in
                      (tmp_path / "logging" / sid / "transcript.jsonl").read_text().splitlines()]
        expected = [r["seq"] for r in transcript]
        assert expected == list(range(1, len(transcript) + 1))
        for name in ("a", "b"):
            assert [r["seq"] for r in records(seen[name])] == expected
            assert any(ev.event == "text_delta" for ev in seen[name])
        resumed = [r["seq"] for r in records(first)] + [r["seq"] for r in records(rest)]
        assert resumed == expected
        assert records(seen["a"]) == transcript
        assert transcript[-1]["type"] == "session_end"
        approval = next(r for r in transcript if r["type"] == "approval")
        assert approval["by"] == "key:approver" and approval["allow"] is True
        result = next(r for r in transcript if r["type"] == "tool_result")
        assert "approved-run" in json.dumps(result["content"])
        final = await api.get(sid)
        assert final["status"] == "finished"
        assert final["answer"].startswith("done after the tool")
        assert final["metadata"] == {"ticket": "T-1"}
        assert final["totals"]["input_tokens"] == 200
    finally:
        await api.aclose()
