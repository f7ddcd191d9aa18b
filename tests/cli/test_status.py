"""The status line: what it says for a session's events, and that it never garbles the
answer on a real terminal (a pseudo-terminal read back through a small screen model)."""

from __future__ import annotations

import io
import os
import re

from runtime.cli.status import Screen, ScreenStream, StatusModel
from runtime.session.records import (
    ApprovalDecision,
    ApprovalRequest,
    AssistantRecord,
    ProviderErrorRecord,
    RequestRecord,
    TextDelta,
    ToolResultRecord,
    ToolStart,
    TurnEnd,
    UsageRecord,
    WarningRecord,
)


def test_status_follows_a_turn() -> None:
    """Waiting for the first token, streaming, tools, approval, retry countdown, circuit
    wait, turn done; tokens and cost come from the usage records."""
    m = StatusModel(started=100.0)
    m.apply(RequestRecord(turn=1, provider="main", attempt=1), 100.0)
    assert m.doing(100.5) == "waiting for the first token from main"
    assert m.doing(103.2) == "waiting for the first token from main (3 s)"
    m.apply(TextDelta(turn=1, text="hi"), 104.0)
    assert m.doing(109.0) == "streaming"
    m.apply(AssistantRecord(turn=1, provider="main"), 105.0)
    m.apply(UsageRecord(turn=1, provider="main", input_tokens=1200, output_tokens=34,
                        cost_usd=0.0123), 105.0)
    m.apply(ToolStart(turn=1, call_id="a", name="run_shell"), 105.0)
    m.apply(ToolStart(turn=1, call_id="b", name="read_file"), 105.0)
    assert m.doing(105.0) == "running tools run_shell, read_file"
    m.apply(ToolResultRecord(turn=1, call_id="b", name="read_file"), 106.0)
    assert m.doing(106.0) == "running tool run_shell"
    m.apply(ApprovalRequest(turn=1, call_id="c", name="write_file"), 106.0)
    assert m.doing(106.0) == "waiting for approval of write_file"
    m.apply(ApprovalDecision(turn=1, call_id="c", allow=True), 107.0)
    assert m.doing(107.0) == "running tool run_shell"
    m.apply(ToolResultRecord(turn=1, call_id="a", name="run_shell"), 108.0)
    m.apply(TurnEnd(turn=1), 108.0)
    assert m.doing(108.0) == "turn 1 done" and not m.busy
    m.apply(RequestRecord(turn=2, provider="main"), 109.0)
    m.apply(ProviderErrorRecord(turn=2, provider="main", kind="rate_limit", will_retry=True,
                                delay=12.0), 110.0)
    assert m.doing(110.0) == "retrying in 12 s after rate_limit"
    assert m.doing(117.4) == "retrying in 5 s after rate_limit"
    m.apply(WarningRecord(turn=2, code="circuit_wait", provider="main", delay=30.0), 120.0)
    assert m.doing(125.0) == "waiting in 25 s for the circuit of main"
    assert m.line(161.0) == ("turn 2 · 1,234 tokens · $0.0123 · 01:01 · "
                             "waiting in 0 s for the circuit of main")


def test_silent_when_stderr_is_not_a_terminal() -> None:
    """No status output at all without a terminal: lines and the answer pass through."""
    out, err = io.StringIO(), io.StringIO()
    screen = Screen(out, err)
    assert not screen.enabled
    screen.start()
    screen.event(RequestRecord(turn=1, provider="main"))
    stream = ScreenStream(screen, answer=False)
    stream.write("a line\nand half")
    stream.write(" of one\n")
    screen.answer("the answer")
    screen.stop()
    assert err.getvalue() == "a line\nand half of one\n"
    assert out.getvalue() == "the answer"


_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen_of(data: str, width: int = 80) -> list[str]:
    """What a terminal shows after ``data``: printable text, CR, LF and the cursor and
    erase sequences rich uses (others, such as colours, change nothing visible here)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(data):
        m = _CSI.match(data, i)
        if m:
            arg, cmd = m.group(1), m.group(2)
            n = int(arg) if arg.isdigit() else 1
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
            elif cmd == "K":
                rows[row] = [] if arg == "2" else rows[row][:col]
            elif cmd == "J":
                rows[row] = rows[row][:col]
                del rows[row + 1:]
            elif cmd == "G":
                col = n - 1
            i = m.end()
            continue
        ch = data[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            col = 0
        elif ch == "\x1b":
            continue
        else:
            while len(rows[row]) < col:
                rows[row].append(" ")
            if col < len(rows[row]):
                rows[row][col] = ch
            else:
                rows[row].append(ch)
            col += 1
            if col >= width:
                row, col = row + 1, 0
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]


def test_answer_and_lines_stay_whole_under_the_status_line() -> None:
    """On one terminal for stdout and stderr, a streamed answer cut anywhere, lines for
    stderr and status redraws in between leave exactly the answer and the lines on screen
    (the status line itself is gone when it stops)."""
    master, slave = os.openpty()
    term = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    clock = [0.0]
    screen = Screen(term, term, clock=lambda: clock[0])
    screen.console.width = 80   # the pty has no size set
    assert screen.enabled and screen.same
    screen.start()
    screen.event(RequestRecord(turn=1, provider="main"))
    for piece in ["Hel", "lo wor", "ld\nsecond ", "li"]:
        screen.event(TextDelta(turn=1, text=piece))
        clock[0] += 0.3
        screen.refresh()
        screen.answer(piece)
    screen.note("-> list_dir {}")
    screen.answer("ne\nthird")
    screen.event(ToolStart(turn=1, call_id="a", name="list_dir"))
    screen.refresh()
    screen.stop()
    screen.answer(" line\n")
    term.flush()
    data = b""
    os.set_blocking(master, False)
    try:
        while chunk := os.read(master, 65536):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        term.close()
        os.close(master)
    shown = [row for row in screen_of(data.decode()) if row]
    assert shown == ["Hello world", "-> list_dir {}", "second line", "third line"]
    assert "turn 1" in data.decode()   # the status line was drawn meanwhile
