"""/metrics moves by exactly what a session did, and the audit log records who did what,
verifies, and names an edited, a removed and a reordered line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from .client import Api
from .conftest import ROOT, Fake, server_config


async def _scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await api.call("GET", "/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str
           ) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_what_sessions_did(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """One session with a tool call moves: sessions created +1, finished +1, two provider
    responses, their tokens and cost, one list_dir call, and latency/TTFT observations."""
    api = Api(serve(server_config(tmp_path, fake)).url)
    try:
        before = await _scrape(api)
        sid = (await api.create("look around [list]"))["id"]
        with trio.fail_after(30):
            await api.events(sid)
        after = await _scrape(api)
        assert (await api.get(sid))["status"] == "finished"
        d = lambda name, **labels: _delta(before, after, name, **labels)  # noqa: E731
        assert d("conductor_sessions_created_total") == 1
        assert d("conductor_sessions", status="finished") == 1
        assert d("conductor_provider_requests_total", provider="main", outcome="ok") == 2
        assert d("conductor_tokens_total", provider="main", type="input") == 200
        assert d("conductor_tokens_total", provider="main", type="output") == 40
        assert abs(d("conductor_cost_usd_total", provider="main") - 0.00028) < 1e-12
        assert d("conductor_tool_calls_total", tool="list_dir", outcome="ok") == 1
        assert d("conductor_provider_latency_seconds_count", provider="main") == 2
        assert d("conductor_provider_ttft_seconds_count", provider="main") == 2
        assert d("conductor_http_requests_total", route="create_session", method="POST",
                 status="201") == 1
    finally:
        await api.aclose()


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", "audit", "verify", "--dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


async def test_audit_log_chain(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """Auth failures, creations, a denial, a cancellation and an admin's access are audited
    with who and never a secret; the log verifies, and `audit verify` names an edited, a
    removed and a reordered line (exit 1)."""
    served = serve(server_config(tmp_path, fake))
    api = Api(served.url)
    try:
        await api.call("GET", "/v1/sessions", None, headers={"authorization": "Bearer wrong"})
        await api.call("POST", "/v1/sessions", "viewer", json={"task": "x"})
        tool = (await api.create("[tool] risky"))["id"]
        with trio.fail_after(30):
            await api.events(tool, until="approval_request")
        await api.call("POST", "/v1/sessions/{id}/approvals/{call_id}", "approver", id=tool,
                       call_id="call_1", json={"allow": False, "reason": "no"})
        keep = (await api.create("stay", keep_open=True))["id"]
        await api.call("POST", "/v1/sessions/{id}/cancel", id=keep)
        await api.call("GET", "/v1/sessions/{id}", "admin", id=keep)
    finally:
        await api.aclose()
    served.terminate()
    log = tmp_path / "logging" / "audit.jsonl"
    lines = log.read_bytes().splitlines()
    recs = [json.loads(x) for x in lines]
    actions = [(r["action"], r["who"]) for r in recs]
    assert actions[:3] == [("auth_failure", "anonymous"), ("forbidden", "key:viewer"),
                           ("session_create", "key:ops")]
    assert ("denial", "key:approver") in actions and ("cancel", "key:ops") in actions
    assert ("admin_access", "key:admin") in actions
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    text = log.read_text()
    for key in ("ops-key", "viewer-key", "approver-key", "admin-key", "wrong"):
        assert key not in text
    ok = _verify(tmp_path / "logging")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"intact, {len(recs)} records" in ok.stdout

    def tampered(name: str, new_lines: list[bytes]) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "audit.jsonl").write_bytes(b"\n".join(new_lines) + b"\n")
        return _verify(folder)

    edited = list(lines)
    edited[2] = edited[2].replace(b'"key:ops"', b'"key:someone"')
    out = tampered("edited", edited)
    assert out.returncode == 1 and "line 3: edited" in out.stdout
    removed = lines[:3] + lines[4:]
    out = tampered("removed", removed)
    assert out.returncode == 1 and "line 4: record 4 missing before it (removed)" in out.stdout
    swapped = list(lines)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    out = tampered("reordered", swapped)
    assert out.returncode == 1
    assert "line 2: out of order" in out.stdout and "line 3: out of order" in out.stdout
    head = ok.stdout.split("head ")[1].strip()
    cut = tampered("cut", lines[:-1])
    assert cut.returncode == 0
    out = subprocess.run([sys.executable, "main.py", "audit", "verify", "--dir",
                          str(tmp_path / "cut"), "--expect-head", head], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "cut off the end" in out.stdout
