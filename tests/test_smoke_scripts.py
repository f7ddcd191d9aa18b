"""The smoke scripts, run as subprocesses: they skip without a key, run through against the
fake provider server with a fake key, fail on a failed check, and record usable captures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.errors import ProviderError
from runtime.events import Event, ToolCallDelta, assemble
from runtime.model import ReasoningPart, Request, Response, TextPart, ToolCallPart, Usage
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.kinds import KINDS as TABLE
from runtime.testing import FakeProviderServer, Raw, Script
from runtime.testing.faults import error_body
from runtime.testing.server import open_fake_server
from tests.recordings import assert_matches, load

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-smoke-fake-key-9f8e7d6c5b4a3210"
KEY_ENVS = {k.key_env for k in TABLE.values() if k.key_env}
# each smoke script's checks, in order (the script of kind K is smoke_K.py, - as _)
CHECKS = {"smoke_openai_chat.py": ["stream", "tool"],
          "smoke_openai_responses.py": ["stream", "tool", "reasoning"],
          "smoke_anthropic.py": ["stream", "tool", "thinking"],
          "smoke_openrouter.py": ["stream", "tool"], "smoke_local.py": ["stream", "tool"]}


def _kind(script: str) -> str:
    return script.removeprefix("smoke_").removesuffix(".py").replace("_", "-")


def _entry(script: str) -> tuple[str, str | None, str, list[str]]:
    kind = TABLE[_kind(script)]
    assert kind.protocol is not None
    return script, kind.key_env if kind.key_required else None, kind.protocol, CHECKS[script]


# kind -> (script, key variable, wire protocol, checks in order), from the kinds table
KINDS = {_kind(script): _entry(script) for script in CHECKS}
FINISH = {"openai-chat": ("stop", "tool_calls"), "openai-responses": ("completed", "completed"),
          "anthropic": ("end_turn", "tool_use")}


# --- scripted provider answers -----------------------------------------------------------

def text_answer(protocol: str, n: int, text: str) -> Response:
    return Response(f"resp_{n}", "smoke-model", [TextPart(text)], FINISH[protocol][0], "stop",
                    Usage(30 + n, 5 + n))


def call_answer(protocol: str, n: int, reasoning: ReasoningPart | None = None) -> Response:
    call = ToolCallPart(f"call_{n}", "get_time", '{"timezone": "Asia/Tokyo"}',
                        item_id=f"fc_{n}" if protocol == "openai-responses" else None)
    parts: list[Any] = [reasoning, call] if reasoning is not None else [call]
    return Response(f"resp_{n}", "smoke-model", parts, FINISH[protocol][1], "tool_calls",
                    Usage(40 + n, 9 + n))


def opaque_reasoning(protocol: str, *, opaque: bool = True) -> ReasoningPart:
    if protocol == "anthropic":
        return ReasoningPart("The user wants the time in Tokyo.", kind="thinking",
                             signature="EqQBCkgIBRABGAIiQ-smoke-signature==" if opaque else None,
                             protocol="anthropic")
    return ReasoningPart(id="rs_smoke_1", protocol="openai-responses",
                         encrypted="gAAAAABsmoke-encrypted-payload-0123456789" if opaque else None)


def happy_script(kind: str) -> list[Any]:
    """One answer per request the script sends, in order."""
    protocol = KINDS[kind][2]
    entries: list[Any] = [text_answer(protocol, 1, "1 2 3 4 5"), call_answer(protocol, 2),
                          text_answer(protocol, 3, "It is 12:00 in Tokyo.")]
    if protocol != "openai-chat":
        entries += [call_answer(protocol, 4, opaque_reasoning(protocol)),
                    text_answer(protocol, 5, "It is noon in Tokyo.")]
    return entries


# --- running the scripts -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script_call(kind: str, *args: str, key: str | None = KEY) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run a smoke script (no real key leaks in)."""
    script, key_env, _, _ = KINDS[kind]
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENVS}
    if key_env is not None and key is not None:
        env[key_env] = key
    return [sys.executable, str(ROOT / "scripts" / script), *args], env


def run_script(kind: str, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    argv, env = script_call(kind, *args, key=key)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def rows(out: str) -> dict[str, list[str]]:
    """The table rows of a script's output by check name (header line excluded)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["check", "ok"])
    table: dict[str, list[str]] = {}
    for line in lines[head + 1:]:
        cells = line.split()
        if len(cells) < 6 or cells[1] not in ("ok", "FAIL"):
            break
        table[cells[0]] = cells
    return table


@pytest.fixture
def served() -> Iterator[FakeProviderServer]:
    with FakeProviderServer.in_thread(Script()) as server:
        yield server


def base_url(server: FakeProviderServer, kind: str) -> str:
    return server.base_url(kind)


def test_every_http_kind_has_a_smoke_script() -> None:
    """scripts/ holds one smoke script per kind that speaks HTTP, and no other."""
    scripts = {p.name for p in (ROOT / "scripts").glob("smoke_*.py")}
    assert scripts == set(CHECKS)
    assert set(KINDS) == {name for name, kind in TABLE.items() if not kind.in_process}


def test_skips_without_key() -> None:
    """Without its key (local: without a server) each script prints one SKIP line and exits
    0 (the five run at once, to keep the test short)."""
    procs = {}
    for kind in KINDS:
        args = ["--base-url", f"http://127.0.0.1:{free_port()}/v1"] if kind == "local" else []
        argv, env = script_call(kind, *args, key=None)
        procs[kind] = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    for kind, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        lines = out.splitlines()
        assert len(lines) == 1 and lines[0].startswith("SKIP "), out
        assert (KINDS[kind][1] or "no server answers") in lines[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_runs_through_against_the_fake_server(kind: str, served: FakeProviderServer) -> None:
    """With a fake key every check passes; the server answered every request it was sent,
    each carrying the key, and the table has a row per check with tokens and a first-token
    time."""
    served.add(*happy_script(kind))
    proc = run_script(kind, "--base-url", base_url(served, kind), "--model", "gpt-5-mini")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert list(table) == KINDS[kind][3]
    for cells in table.values():
        assert cells[1] == "ok", cells
        assert cells[2].endswith("s") and "/" in cells[3], cells
    assert len(served.script) == 0 and served.exhausted == 0
    assert served.request_count == len(happy_script(kind))
    if KINDS[kind][1] is not None:
        for req in served.requests:
            assert KEY in req.headers.get("authorization", req.headers.get("x-api-key", ""))
    assert all(req.stream for req in served.requests)


REQUEST_ID = "req_smoke_401_abc"


def _unauthorized(protocol: str) -> Raw:
    return Raw.json(401, error_body(protocol, 401, "Incorrect API key provided",
                                    type="authentication_error"),
                    headers={"x-request-id": REQUEST_ID})


def broken_script(kind: str) -> tuple[list[Any], str]:
    """A script in which exactly one check must fail, and that check's name."""
    protocol = KINDS[kind][2]
    entries = happy_script(kind)
    if kind == "openai-responses":
        entries[3] = call_answer(protocol, 4, opaque_reasoning(protocol, opaque=False))
        return entries, "reasoning"
    if kind == "anthropic":
        entries[3] = call_answer(protocol, 4, opaque_reasoning(protocol, opaque=False))
        return entries, "thinking"
    if kind == "local":  # the model answers with text instead of calling the tool
        return [entries[0], text_answer(protocol, 2, "I cannot tell.")], "tool"
    return [_unauthorized(protocol), *entries[1:]], "stream"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "openrouter"])  # as openai-chat
def test_failed_check_exits_nonzero(kind: str, served: FakeProviderServer,
                                    tmp_path: Path) -> None:
    """A failed check (a 401, a reasoning item without its opaque payload, no tool call) is
    marked FAIL in its row, the other checks still pass, and the exit status is 1; a failed
    exchange is recorded too, as an error interaction."""
    entries, failing = broken_script(kind)
    served.add(*entries)
    proc = run_script(kind, "--base-url", base_url(served, kind), "--record", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    assert {name for name, cells in table.items() if cells[1] == "FAIL"} == {failing}
    assert list(table) == KINDS[kind][3]
    if failing == "stream":  # the provider's request id is shown with the error
        assert "auth" in " ".join(table["stream"]) and table["stream"][5] == REQUEST_ID
        (path,) = tmp_path.glob("*/*__stream.json")
        rec = load(path)
        assert rec["expect"][0]["error"]["status"] == 401 and "error" in rec["categories"]
        assert rec["interactions"][0]["response"]["headers"]["x-request-id"] == REQUEST_ID


# --- recordings --------------------------------------------------------------------------

async def consume(recv: trio.MemoryReceiveChannel[list[Event]], into: list[Event]) -> None:
    async with recv:
        async for batch in recv:
            into.extend(batch)


async def replay(path: Path, kind: str) -> list[tuple[Response | None, ProviderError | None,
                                                      dict[int, int]]]:
    """Serve a recording file's responses and send its requests through the runtime."""
    rec = load(path)
    out = []
    with trio.fail_after(20):
        async with open_fake_server(Script.from_recording(path)) as server, \
                httpx.AsyncClient() as client:
            spec = ProviderSpec("p", kind, base_url(server, kind), "m", api_key="k",
                                timeouts=Timeouts(5, 10, 20))
            p = HTTPProvider(spec, client)
            for inter in rec["interactions"]:
                body = inter["request"]["body"]
                send, recv = trio.open_memory_channel[list[Event]](4)
                events: list[Event] = []
                resp: Response | None = None
                err: ProviderError | None = None

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(consume, recv, events)
                    async with send:
                        try:
                            resp = await p.attempt(Request("m"), send,
                                                   stream=bool(body.get("stream")))
                        except ProviderError as exc:
                            err = exc
                if err is not None and resp is None:
                    resp = assemble(events, KINDS[kind][2])
                deltas = Counter(e.index for e in events if isinstance(e, ToolCallDelta))
                out.append((resp, err, dict(deltas)))
    return out


@pytest.mark.parametrize("kind", [k for k in KINDS if TABLE[k].key_required])
async def test_record_writes_corpus_files(kind: str, tmp_path: Path) -> None:
    """``--record DIR`` writes one file per check in the recordings format: kept headers
    only, no key anywhere, ``expect`` records that agree with what the server was scripted
    to send and with what the runtime decodes when the file is replayed."""
    protocol = KINDS[kind][2]
    folder = "openrouter" if kind == "openrouter" else protocol
    with trio.fail_after(60):
        async with open_fake_server(happy_script(kind)) as server:
            argv, env = script_call(kind, "--base-url", base_url(server, kind), "--record",
                                    str(tmp_path))
            proc = await trio.run_process(argv, env=env, capture_stdout=True,
                                          capture_stderr=True, check=False)
            sent = [r.body for r in server.requests]
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    files = sorted((tmp_path / folder).glob("*.json"))
    stem = KINDS[kind][0].removesuffix(".py")
    assert [f.name for f in files] == sorted(f"{stem}__{c}.json" for c in KINDS[kind][3])
    scripted = happy_script(kind)
    seen = 0
    for f in sorted(files, key=lambda f: KINDS[kind][3].index(f.stem.split("__")[1])):
        text = f.read_text()
        assert KEY not in text and KEY[:12] not in text
        rec = load(f)
        assert rec["protocol"] == folder and rec["source"]
        assert len(rec["interactions"]) == len(rec["expect"]) >= 1
        replayed = await replay(f, kind)
        for inter, exp, (resp, err, deltas) in zip(rec["interactions"], rec["expect"], replayed,
                                                   strict=True):
            req = inter["request"]
            assert set(req["headers"]) <= {"content-type", "accept", "anthropic-version",
                                           "anthropic-beta", "openai-beta"}
            assert set(inter["response"]["headers"]) <= {"content-type", "retry-after",
                                                         "request-id", "x-request-id"}
            assert req["body"] == sent[seen]
            truth: Response = scripted[seen]
            assert exp["text"] == truth.text
            assert [c["id"] for c in exp["tool_calls"]] == [c.id for c in truth.tool_calls]
            assert len(exp["reasoning"]) == len(truth.reasoning)
            assert exp["stream"] is True and exp["error"] is None
            assert_matches(folder, resp, err, exp, argument_deltas=deltas or None)
            seen += 1
        cats = set(rec["categories"])
        assert ("tool_loop" in cats) == (f.stem.endswith(("tool", "reasoning", "thinking")))
        if f.stem.endswith(("reasoning", "thinking")):
            assert "reasoning_opaque" in cats
    assert seen == len(scripted)
