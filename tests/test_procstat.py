"""The one reader of ``/proc/<pid>/stat``: a command name with spaces and parentheses, a
line that does not parse, and this very process."""

from __future__ import annotations

import os
import sys

import pytest

from runtime.procstat import ProcStat, parse_stat, proc_stat

# fields 3.. of a real line, after a command name that tries to look like the end of it
TAIL = b"S 10 20 30 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1 2 3\n"


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() -> None:
    """The fields are read after the name's last ``)``, whatever the name holds."""
    assert parse_stat(b"4242 (a) b (c)) " + TAIL) == ProcStat(10, 20, 30, "S", 123456)


@pytest.mark.parametrize("raw", [b"", b"4242 (cut) S 10", b"4242 (x) S ten 20 30" + TAIL[14:]])
def test_a_line_that_does_not_parse_is_none(raw: bytes) -> None:
    """Too few fields or a field that is not a number: None, never an exception."""
    assert parse_stat(raw) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_this_process_and_a_pid_that_is_gone() -> None:
    """This process reads as running (or running a syscall), its parent as its parent; a pid
    that no process has reads as None."""
    me = proc_stat(os.getpid())
    assert me is not None and me.ppid == os.getppid() and me.state in "RS"
    assert me.starttime > 0 and proc_stat(str(os.getpid())) == me
    assert proc_stat(2**22 + 17) is None
