"""run_shell: the workspace as cwd, capped output, and the whole process group killed."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# -- the environment -------------------------------------------------------------------


async def test_environment_is_scrubbed_to_an_allowlist(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Only allowlisted variables reach the command: never a provider key, never a
    key-looking name unless named, never a value that is a configured secret or matches a
    redaction pattern, even if allowlisted."""
    from runtime.redact import Redactor

    for name, value in {"MY_SERVICE_API_KEY": "abc123", "OPENAI_API_KEY": "plain-provider-key",
                        "SOME_SETTING": "sk-test-1234567890",
                        "PLAIN_SETTING": "not-allowlisted", "CONFIGURED": "config-secret-42",
                        "DB_URL": "postgres://u:password=hunter2@h", "EXTRA_OK": "visible",
                        "MYAPP_MODE": "fast", "LC_ALL": "C.UTF-8", "GITHUB_TOKEN": "ghp_x"}.items():
        monkeypatch.setenv(name, value)
    redactor = Redactor(["config-secret-42"], [r"(?i)password=\S+"])
    (t,) = builtin_tools(tmp_path, ["run_shell"], redactor=redactor,
                         shell_env=["EXTRA_OK", "MYAPP_*", "CONFIGURED", "DB_URL",
                                    "OPENAI_API_KEY", "GITHUB_TOKEN", "SOME_SETTING"])
    out = await t.call({"command": "env"})
    env = dict(line.split("=", 1) for line in out.splitlines()[1:] if "=" in line)
    assert env["EXTRA_OK"] == "visible" and env["MYAPP_MODE"] == "fast"
    assert env["LC_ALL"] == "C.UTF-8" and env["PATH"] == os.environ["PATH"]
    assert env["PWD"] == str(tmp_path.resolve())
    assert env["GITHUB_TOKEN"] == "ghp_x"  # named explicitly: the user's choice
    for gone in ("MY_SERVICE_API_KEY", "OPENAI_API_KEY", "PLAIN_SETTING", "CONFIGURED",
                 "DB_URL", "SOME_SETTING"):
        assert gone not in env
    for secret in ("abc123", "plain-provider-key", "sk-test", "config-secret-42", "hunter2"):
        assert secret not in out


def test_scrub_env_rules() -> None:
    """The pure rule: allowlist (names and globs), key-looking names unless named exactly,
    and the secret test on name, value and NAME=value."""
    from runtime.tools.shell_env import scrub_env

    env = {"PATH": "/bin", "HOME": "/h", "LC_CTYPE": "C", "X_TOKEN": "t", "OTHER": "o",
           "APP_PASSWORD": "pw", "APP_NAME": "n", "NOTE": "leak=SECRET"}
    out = scrub_env(env, allow=["APP_*", "X_TOKEN", "NOTE"],
                    is_secret=lambda s: "SECRET" in s)
    assert out == {"PATH": "/bin", "HOME": "/h", "LC_CTYPE": "C", "X_TOKEN": "t",
                   "APP_NAME": "n"}


# -- process trees never outlive the call -----------------------------------------------

TREE = (
    "trap '' TERM; "                                            # the shell ignores SIGTERM
    "sleep {m}1 & echo $! >> pids; "                           # background, TERM ignored
    "(trap '' TERM; sleep {m}2) & echo $! >> pids; "           # a subshell ignoring TERM
    "setsid sh -c 'echo $$ >> pids; exec sleep {m}3' & "       # its own session and group
    "( setsid sh -c 'echo $$ >> pids; exec sleep {m}4' & ); "  # orphaned (double fork)
    "while [ $(wc -l < pids) -lt 4 ]; do :; done; "
    "echo ready > ready.fifo; "
)


def alive(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and stat[stat.rfind(b")") + 2:][:1] != b"Z":
            found.append(int(entry))
    return found


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, str, str]:
    """A workspace with a FIFO the tree reports on, and a unique marker for its sleeps."""
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mkfifo(ws / "ready.fifo")
    marker = str(int.from_bytes(os.urandom(3), "big") + 10_000_000)
    return ws, marker, TREE.format(m=marker)


async def ready(ws: Path) -> None:
    """Wait (without sleeping) until the command has built its whole tree."""
    await trio.to_thread.run_sync((ws / "ready.fifo").read_text)


def assert_tree_gone(ws: Path, marker: str) -> None:
    pids = [int(p) for p in (ws / "pids").read_text().split()]
    assert len(pids) == 4
    assert alive(marker) == []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        assert state[state.rfind(b")") + 2:][:1] == b"Z"


async def test_tree_is_ended_after_a_normal_exit(tree: tuple[Path, str, str]) -> None:
    """The command exits at once; its whole tree (TERM ignored, setsid, orphaned) is ended."""
    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=30, kill_grace=0.3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready, ws)
        out = await t.call({"command": cmd + "exit 0"})
    assert out.startswith("exit code: 0")
    assert_tree_gone(ws, marker)


async def test_tree_is_ended_on_timeout(tree: tuple[Path, str, str]) -> None:
    """On timeout the whole tree is ended, the setsid and orphaned ones included."""
    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=1, kill_grace=0.3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready, ws)
        with pytest.raises(ToolError, match="timed out"):
            await t.call({"command": cmd + f"sleep {marker}5"})
    assert_tree_gone(ws, marker)


async def test_tree_is_ended_on_keyboard_interrupt(tree: tuple[Path, str, str]) -> None:
    """Ctrl-C (KeyboardInterrupt in the session) cancels the call and ends its tree."""
    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=60, kill_grace=0.3)

    async def interrupt() -> None:
        await ready(ws)
        raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupt)
            await t.call({"command": cmd + f"sleep {marker}5"})
    assert_tree_gone(ws, marker)


async def test_tree_is_ended_when_sigterm_cancels_the_session(
        tree: tuple[Path, str, str]) -> None:
    """SIGTERM to this process, handled by cancelling the session, ends the tree."""
    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=60, kill_grace=0.3)
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def on_sigterm() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            async def send_sigterm() -> None:
                await ready(ws)
                os.kill(os.getpid(), signal.SIGTERM)

            nursery.start_soon(on_sigterm)
            nursery.start_soon(send_sigterm)
            await t.call({"command": cmd + f"sleep {marker}5"})
    assert_tree_gone(ws, marker)


async def test_tree_is_ended_when_the_pump_fails(tree: tuple[Path, str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception while reading the output ends the tree and reaches the caller."""
    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=60, kill_grace=0.3)

    def broken_feed(self: OutputCapture, data: bytes, final: bool = False) -> None:
        if data:
            raise RuntimeError("the pump broke")

    monkeypatch.setattr(OutputCapture, "feed", broken_feed)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready, ws)
        with pytest.raises(RuntimeError, match="the pump broke"):
            await t.call({"command": cmd + f"echo output; sleep {marker}5"})
    assert_tree_gone(ws, marker)


async def test_tree_is_ended_when_cancelled_while_starting(
        tree: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancellation that arrives while the shell is being started (trio finishes the
    spawn, then delivers it) still ends the shell and everything it started meanwhile."""
    import runtime.tools.shell as shell_module

    ws, marker, cmd = tree
    t = shell(ws, shell_timeout=60, kill_grace=0.3)
    real_open = trio.lowlevel.open_process
    started: list[int] = []
    with trio.CancelScope() as scope:

        async def open_then_cancel(*args: Any, **kw: Any) -> trio.Process:
            proc = await real_open(*args, **kw)
            started.append(proc.pid)
            with trio.CancelScope(shield=True):
                await ready(ws)  # the tree exists before the cancellation lands
            scope.cancel()
            return proc

        monkeypatch.setattr(shell_module, "open_process", open_then_cancel)
        await t.call({"command": cmd + f"sleep {marker}5"})
    assert scope.cancelled_caught and started
    assert not Path(f"/proc/{started[0]}").exists()  # the shell itself was reaped
    assert_tree_gone(ws, marker)
