"""The apply_patch built-in: V4A patches applied to the workspace, all or nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.tools import Tool, ToolError, builtin_tools


def patch(*body: str) -> dict[str, str]:
    return {"patch": "\n".join(["*** Begin Patch", *body, "*** End Patch"]) + "\n"}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text('def greet():\n    print("Hi")\n')
    (root / "old.txt").write_text("obsolete\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    return root


@pytest.fixture
def tool(ws: Path) -> Tool:
    (t,) = builtin_tools(ws, ["apply_patch"])
    return t


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (and beside it) with its bytes."""
    return {str(p.relative_to(root.parent)): p.read_bytes()
            for p in sorted(root.parent.rglob("*")) if p.is_file()}


async def test_add_update_move_and_delete(ws: Path, tool: Tool) -> None:
    """One patch creates, edits and renames, and deletes files; the result lists them."""
    out = await tool.call(patch(
        "*** Add File: docs/hello.txt", "+Hello", "+world",
        "*** Update File: src/app.py", "*** Move to: src/main.py", "@@ def greet():",
        '-    print("Hi")', '+    print("Hello")',
        "*** Delete File: old.txt",
    ))
    assert (ws / "docs" / "hello.txt").read_text() == "Hello\nworld\n"
    assert (ws / "src" / "main.py").read_text() == 'def greet():\n    print("Hello")\n'
    assert not (ws / "src" / "app.py").exists() and not (ws / "old.txt").exists()
    assert out.splitlines() == ["Applied the patch:", "A docs/hello.txt",
                                "M src/app.py -> src/main.py", "D old.txt"]
    assert not [p for p in ws.rglob("*") if ".patch-" in p.name]  # no temporary left


async def test_operations_on_one_file_apply_in_order(ws: Path, tool: Tool) -> None:
    """A file added and then updated in the same patch ends up with both changes."""
    await tool.call(patch("*** Add File: n.txt", "+one", "*** Update File: n.txt", "@@",
                          " one", "+two"))
    assert (ws / "n.txt").read_text() == "one\ntwo\n"


@pytest.mark.parametrize(("body", "message"), [
    (["*** Add File: ../escape.txt", "+x"], "'..'"),
    (["*** Add File: /tmp/abs.txt", "+x"], "absolute"),
    (["*** Delete File: ../outside.txt"], "'..'"),
    (["*** Update File: src/app.py", "*** Move to: ../moved.py", "@@", "-def greet():",
      "+def hello():"], "'..'"),
    (["*** Update File: link/outside.txt", "@@", "-outside", "+pwned"], "symlink"),
])
async def test_paths_that_leave_the_workspace_are_refused(ws: Path, tool: Tool,
                                                          body: list[str],
                                                          message: str) -> None:
    """Every path is confined to the workspace; a refusal changes nothing, even the
    operations before it."""
    (ws / "link").symlink_to(ws.parent)
    before = snapshot(ws)
    with pytest.raises(ToolError, match=message) as info:
        await tool.call(patch("*** Add File: first.txt", "+made before the refusal", *body))
    assert "nothing was changed" in str(info.value)
    assert snapshot(ws) == before
    assert not (ws / "first.txt").exists() and not (ws.parent / "escape.txt").exists()


async def test_a_failing_hunk_changes_no_file(ws: Path, tool: Tool) -> None:
    """When the second file's hunk does not match, the first file is not touched either."""
    before = snapshot(ws)
    with pytest.raises(ToolError, match=r"old\.txt: hunk 1 \(patch line 7\): could not find"):
        await tool.call(patch("*** Update File: src/app.py", "@@", "-def greet():",
                              "+def hello():", "*** Update File: old.txt", "@@", "-missing",
                              "+x"))
    assert snapshot(ws) == before


@pytest.mark.parametrize(("body", "message"), [
    (["*** Update File: nope.txt", "@@", "-a", "+b"], "no such file: 'nope.txt'"),
    (["*** Delete File: nope.txt"], "no such file: 'nope.txt'"),
    (["*** Delete File: src"], "'src' is a directory"),
    (["*** Add File: src", "+x"], "'src' is a directory"),
    (["*** Update File: bin.dat", "@@", "-a", "+b"], "'bin.dat' is a binary file"),
    (["*** Delete File: inner_link"], "'inner_link' is a symlink"),
])
async def test_impossible_operations_are_explained(ws: Path, tool: Tool, body: list[str],
                                                   message: str) -> None:
    """Missing files, directories, binaries and links get a clear error, nothing changed."""
    (ws / "bin.dat").write_bytes(b"a\x00b\n")
    (ws / "inner_link").symlink_to(ws / "old.txt")
    before = snapshot(ws)
    with pytest.raises(ToolError, match=message):
        await tool.call(patch(*body))
    assert snapshot(ws) == before


async def test_a_write_failure_midway_rolls_everything_back(
        ws: Path, tool: Tool, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the disk fails while files are being swapped in, the ones already swapped are
    restored and the new ones removed."""
    before = snapshot(ws)
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ToolError, match=r"No space left on device.*nothing was changed"):
        await tool.call(patch("*** Add File: new/a.txt", "+a", "*** Update File: old.txt", "@@",
                              "-obsolete", "+renewed", "*** Add File: b.txt", "+b"))
    monkeypatch.undo()
    assert len(calls) >= 3
    assert snapshot(ws) == before
    assert not (ws / "new").exists()


async def test_file_mode_non_utf8_bytes_and_crlf_are_kept(ws: Path, tool: Tool) -> None:
    """An update keeps the file's permissions, its undecodable bytes outside the hunk and
    its CRLF line ends; the model may quote such bytes as the \\xNN it was shown."""
    script = ws / "run.sh"
    script.write_bytes(b"#!/bin/sh\r\necho caf\xe9\r\necho old\r\n")
    script.chmod(0o755)
    await tool.call(patch("*** Update File: run.sh", "@@", r" echo caf\xe9", "-echo old",
                          "+echo new"))
    assert script.read_bytes() == b"#!/bin/sh\r\necho caf\xe9\r\necho new\r\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


async def test_new_files_respect_the_umask(ws: Path, tool: Tool) -> None:
    """A created file gets the usual 0666 minus umask, not a private temporary's 0600."""
    await tool.call(patch("*** Add File: plain.txt", "+x"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((ws / "plain.txt").stat().st_mode) == 0o666 & ~umask


async def test_move_over_an_existing_file_and_add_over_one(ws: Path, tool: Tool) -> None:
    """A move onto an existing file and an Add File of an existing path replace it, and
    the summary says so."""
    (ws / "dest.txt").write_text("old dest\n")
    out = await tool.call(patch("*** Update File: old.txt", "*** Move to: dest.txt",
                                "*** Add File: src/app.py", "+print('new')"))
    assert (ws / "dest.txt").read_text() == "obsolete\n" and not (ws / "old.txt").exists()
    assert (ws / "src" / "app.py").read_text() == "print('new')\n"
    assert "M old.txt -> dest.txt (replaced dest.txt)" in out
    assert "A src/app.py (replaced)" in out


async def test_malformed_patch_is_explained(tool: Tool) -> None:
    """A patch without its envelope is refused with the grammar's first rule."""
    with pytest.raises(ToolError, match=r"first line of the patch must be '\*\*\* Begin Patch'"):
        await tool.call({"patch": "--- a/x\n+++ b/x\n"})
