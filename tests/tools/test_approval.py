"""Approval of tool calls: auto, deny and ask (with an injected asker or no terminal)."""

from __future__ import annotations

import io

import pytest

from runtime.tools.approval import decide, terminal_asker


async def test_auto_allows_without_asking() -> None:
    """auto runs the call and never consults the asker."""

    def never(prompt: str) -> bool:
        raise AssertionError("asked")

    d = await decide("read_file", {"path": "x"}, "auto", never)
    assert d.allowed and d.reason == ""


async def test_deny_refuses_and_names_the_setting() -> None:
    """deny refuses and the reason names the config key."""
    d = await decide("run_shell", {}, "deny", lambda p: True)
    assert not d.allowed
    assert "tools.approval.run_shell: deny" in d.reason


@pytest.mark.parametrize("answer", [True, False])
async def test_ask_uses_the_injected_sync_asker(answer: bool) -> None:
    """ask shows the tool and its arguments to the asker and follows its answer."""
    prompts: list[str] = []

    def asker(prompt: str) -> bool:
        prompts.append(prompt)
        return answer

    d = await decide("run_shell", {"command": "ls -la"}, "ask", asker)
    assert d.allowed is answer
    assert "run_shell" in prompts[0] and "ls -la" in prompts[0]
    if not answer:
        assert "declined" in d.reason


async def test_ask_with_async_asker() -> None:
    """An async asker is awaited."""

    async def asker(prompt: str) -> bool:
        return "write_file" in prompt

    assert (await decide("write_file", {}, "ask", asker)).allowed


async def test_asker_failure_denies() -> None:
    """An asker that raises denies the call and the reason says so."""

    def broken(prompt: str) -> bool:
        raise OSError("terminal gone")

    d = await decide("run_shell", {}, "ask", broken)
    assert not d.allowed and "terminal gone" in d.reason


async def test_no_terminal_denies_with_the_fix() -> None:
    """With nobody to ask, ask denies and tells how to allow the tool."""
    d = await decide("run_shell", {}, "ask", None)
    assert not d.allowed
    assert d.reason == ("approval required but no terminal to ask on; "
                        "set tools.approval.run_shell: auto to allow")


async def test_unknown_mode_denies() -> None:
    """A mode other than auto/ask/deny is refused rather than treated as auto."""
    d = await decide("t", {}, "yolo", lambda p: True)
    assert not d.allowed and "yolo" in d.reason


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_asker_only_on_a_tty() -> None:
    """No asker when stdin is not a terminal; on a terminal y/yes allows, anything else not."""
    assert terminal_asker(io.StringIO("y\n"), io.StringIO()) is None
    out = io.StringIO()
    ask = terminal_asker(_FakeTTY("yes\nn\n\n"), out)
    assert ask is not None
    assert ask("Allow? ") is True
    assert ask("Allow? ") is False
    assert ask("Allow? ") is False  # empty line: the default is no
    assert out.getvalue().count("Allow? ") == 3


def test_approval_mode_exact_then_longest_glob_then_default() -> None:
    """An exact key wins, then the most specific glob (server__*), then the tool's default."""
    from runtime.tools.approval import approval_mode

    cfg = {"run_shell": "deny", "time__*": "auto", "time__set_*": "ask", "docs__search": "deny"}
    assert approval_mode("run_shell", cfg, "ask") == "deny"
    assert approval_mode("time__now", cfg, "ask") == "auto"
    assert approval_mode("time__set_zone", cfg, "auto") == "ask"
    assert approval_mode("docs__search", cfg) == "deny"
    assert approval_mode("docs__fetch", cfg, "ask") == "ask"
    assert approval_mode("timex__now", cfg, "ask") == "ask"
