"""run_shell: the workspace as cwd, capped output, and the whole process group killed."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from runtime.tools import Tool, ToolError, builtin_tools
from runtime.tools._text import OutputCapture, cap_text

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups via /proc")

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Make this process the reaper of orphaned grandchildren during the test.

    Where PID 1 does not reap orphans (as in some VMs and containers), killed processes stay
    zombies and ``killpg(pgid, 0)`` keeps succeeding; as a subreaper, the runtime reaps the
    dead members of the group itself, so that check is meaningful.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("cannot become a child subreaper")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def shell(ws: Path, **kw: float) -> Tool:
    (t,) = builtin_tools(ws, ["run_shell"], **kw)  # type: ignore[arg-type]
    return t


def assert_group_gone(pgid: int, pids: list[int]) -> None:
    assert pgid != os.getpgrp()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_runs_in_the_workspace_with_exit_code_and_stderr(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """cwd is the workspace, stderr is captured, the exit code is reported, secrets dropped."""
    monkeypatch.setenv("MY_SERVICE_API_KEY", "sk-should-not-leak")
    ws = tmp_path / "ws"
    out = await shell(ws).call({"command": "pwd; echo oops 1>&2; "
                                           "echo key=${MY_SERVICE_API_KEY:-unset}; exit 3"})
    lines = out.splitlines()
    assert lines[0] == "exit code: 3"
    assert lines[1] == str(ws.resolve())
    assert "oops" in lines and "key=unset" in lines


async def test_output_is_capped_with_a_note(tmp_path: Path) -> None:
    """Long output keeps its head and tail and says how much was cut."""
    out = await shell(tmp_path, max_output_chars=1000).call({"command": "seq 1 20000"})
    total = len("\n".join(str(i) for i in range(1, 20001))) + 1
    assert f"{total - 1000} of {total} characters cut" in out
    assert out.startswith("exit code: 0\n1\n2\n3\n")
    assert out.rstrip().endswith("19999\n20000")
    assert len(out) < 1200


async def test_timeout_kills_the_whole_process_group(tmp_path: Path, subreaper: None) -> None:
    """On timeout the shell and its background children are all killed."""
    t = shell(tmp_path, shell_timeout=0.5, kill_grace=0.5)
    cmd = ("echo pgid=$(ps -o pgid= -p $$ | tr -d ' '); sleep 60 & echo child=$!; "
           "sleep 60 & echo child=$!; sleep 60")
    start = trio.current_time()
    with pytest.raises(ToolError, match=r"timed out after 0\.5 s") as info:
        await t.call({"command": cmd})
    assert trio.current_time() - start < 5
    text = str(info.value)
    pgid = int(text.split("pgid=")[1].split()[0])
    pids = [int(x.split()[0]) for x in text.split("child=")[1:]]
    assert len(pids) == 2
    assert_group_gone(pgid, pids)


async def test_cancellation_kills_the_process_group(tmp_path: Path, subreaper: None) -> None:
    """Cancelling the call from outside (the supervisor's timeout) kills the group too."""
    t = shell(tmp_path, shell_timeout=60, kill_grace=0.5)
    cmd = "echo $(ps -o pgid= -p $$) > pgid.txt; sleep 60 & echo $! > child.txt; sleep 60"
    with trio.move_on_after(0.7) as scope:
        await t.call({"command": cmd})
    assert scope.cancelled_caught
    pgid = int((tmp_path / "pgid.txt").read_text())
    assert_group_gone(pgid, [int((tmp_path / "child.txt").read_text())])


async def test_background_leftovers_are_ended_after_a_normal_exit(tmp_path: Path,
                                                                  subreaper: None) -> None:
    """A command that leaves a background job returns at once and leaves nothing running."""
    t = shell(tmp_path, shell_timeout=30, kill_grace=0.5)
    start = trio.current_time()
    out = await t.call({"command": "echo pgid=$(ps -o pgid= -p $$ | tr -d ' '); "
                                   "sleep 60 & echo child=$!; echo done"})
    assert trio.current_time() - start < 5
    assert out.startswith("exit code: 0") and "done" in out
    assert_group_gone(int(out.split("pgid=")[1].split()[0]),
                      [int(out.split("child=")[1].split()[0])])


@given(st.text(max_size=60), st.integers(0, 30), st.lists(st.integers(0, 200), max_size=6))
def test_streamed_capture_equals_capping_the_whole_text(text: str, cap: int,
                                                        cuts: list[int]) -> None:
    """Any split of the UTF-8 bytes gives the same capped text as capping it all at once."""
    data = text.encode()
    points = sorted({min(c, len(data)) for c in cuts})
    capture = OutputCapture(cap)
    prev = 0
    for p in [*points, len(data)]:
        capture.feed(data[prev:p])
        prev = p
    assert capture.text() == cap_text(text, cap)
    assert capture.total_chars == len(text)
