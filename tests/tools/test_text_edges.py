"""Bytes that are not UTF-8 at the tools' edge: names, contents, written text, skipped files.

The rule (``runtime/tools/_text.py``): an undecodable byte is shown as ``\\xNN``; any other
lone surrogate becomes U+FFFD; tool output is always valid for a JSON encoder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.model import ToolCallPart
from runtime.tools import Tool, ToolRegistry, builtin_tools, run_tool_calls
from runtime.tools._text import cap_outputs, clean_text


def tools(ws: Path, **kw: Any) -> dict[str, Tool]:
    return {t.name: t for t in builtin_tools(ws, **kw)}


async def test_list_dir_shows_an_undecodable_name(tmp_path: Path) -> None:
    """A file whose name has a \\xff byte is listed (as \\xff), and the output encodes."""
    (Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))).write_bytes(b"x")
    (tmp_path / "plain.txt").write_text("y")
    out = await tools(tmp_path)["list_dir"].call({})
    assert out.splitlines() == ["caf\\xe9.txt (1 bytes)", "plain.txt (1 bytes)"]
    msgspec.json.encode(out)


async def test_search_finds_matches_in_an_undecodable_name_and_content(tmp_path: Path) -> None:
    """Matches in a Latin-1 file whose name is not UTF-8 are shown with \\xNN escapes, and
    the file is reported as not valid UTF-8."""
    Path(os.fsdecode(bytes(tmp_path) + b"/\xff.txt")).write_bytes(b"needle caf\xe9\n")
    out = await tools(tmp_path)["search_files"].call({"pattern": "needle"})
    lines = out.splitlines()
    assert lines[0] == "\\xff.txt:1: needle caf\\xe9"
    assert "1 file is not valid UTF-8" in out and "\\xff.txt" in lines[-1]
    msgspec.json.encode(out)


async def test_read_file_of_invalid_utf8_says_so(tmp_path: Path) -> None:
    """Invalid UTF-8 content is shown with \\xNN escapes and a note saying how many."""
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 cr\xe8me\n")
    out = await tools(tmp_path)["read_file"].call({"path": "latin.txt"})
    assert out.splitlines() == [
        "[latin.txt is not valid UTF-8: 2 undecodable bytes are shown as \\xNN]",
        "caf\\xe9 cr\\xe8me"]


async def test_write_file_of_lone_surrogates_writes_replacement_characters(
        tmp_path: Path) -> None:
    """Text with lone surrogates is written as valid UTF-8 (U+FFFD) and the result says so."""
    out = await tools(tmp_path)["write_file"].call({"path": "s.txt", "content": "a\ud800b\udcffc"})
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == "a\ufffdb\ufffdc"
    assert "2 lone surrogates were written as U+FFFD" in out


async def test_a_path_with_an_unencodable_surrogate_is_refused(tmp_path: Path) -> None:
    """A path with a surrogate that is not an escaped byte is a clear refusal."""
    with pytest.raises(Exception, match=r"refused: .*not valid text"):
        await tools(tmp_path)["read_file"].call({"path": "a\ud800.txt"})


async def test_search_reports_what_it_skipped(tmp_path: Path) -> None:
    """Too large, binary and non-regular files are counted and named instead of a bare
    'no matches'."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "big.log").write_text("needle\n" * 100)
    (ws / "image.png").write_bytes(b"\x89PNG\x00\x00needle")
    os.mkfifo(ws / "pipe")
    (ws / "other.txt").write_text("nothing here\n")
    t = tools(ws)["search_files"]
    ws_tool = builtin_tools(ws, ["search_files"], max_file_bytes=300)[0]
    out = await ws_tool.call({"pattern": "needle"})
    assert out.startswith("no matches for 'needle' under .")
    assert "skipped 3 files: 1 too large (over 300 bytes): big.log; 1 binary: image.png; " \
           "1 not a regular file: pipe" in out
    assert (await t.call({"pattern": "nothing"})).startswith("other.txt:1: nothing here")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_search_reports_unreadable_files_and_folders(tmp_path: Path) -> None:
    """Files and folders it cannot read are reported too."""
    (tmp_path / "secret.txt").write_text("needle")
    (tmp_path / "secret.txt").chmod(0)
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed").chmod(0)
    try:
        out = await tools(tmp_path)["search_files"].call({"pattern": "needle"})
    finally:
        (tmp_path / "closed").chmod(0o755)
    assert "1 unreadable: secret.txt" in out and "closed" in out


def test_clean_text_and_cap_outputs() -> None:
    """Escaped bytes become \\xNN, other surrogates U+FFFD; capped shell outputs stay within
    the limit in total."""
    assert clean_text("a\udcffb\ud800") == "a\\xffb\ufffd"
    outs = [{"stdout": "o" * 500, "stderr": "e" * 10, "exit_code": 0},
            {"stdout": "p" * 300, "stderr": "", "exit_code": 1}]
    capped = cap_outputs(outs, 200)
    total = sum(len(o["stdout"]) + len(o["stderr"]) for o in capped)
    assert total < 200 + 2 * 60  # each cut adds a short note
    assert capped[0]["stderr"] == "e" * 10 and capped[1]["exit_code"] == 1
    assert "characters cut" in capped[0]["stdout"] and "characters cut" in capped[1]["stdout"]


names = st.binary(min_size=1, max_size=12).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=4),
       st.text(st.characters(blacklist_categories=()), max_size=20))
def test_file_tool_output_always_encodes(files: dict[bytes, bytes], content: str) -> None:
    """Whatever bytes names and contents hold, and whatever text (lone surrogates included)
    is written, every outcome of the file tools encodes as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data in files.items():
            Path(os.fsdecode(bytes(root) + b"/" + name)).write_bytes(data)
        registry = ToolRegistry(builtin_tools(root, ["read_file", "write_file", "list_dir",
                                                     "search_files"]))
        calls = [ToolCallPart("l", "list_dir", "{}"),
                 ToolCallPart("s", "search_files", '{"pattern": "."}'),
                 ToolCallPart("w", "write_file", json.dumps({"path": "w.txt",
                                                             "content": content}))]
        calls += [ToolCallPart(f"r{i}", "read_file", json.dumps({"path": os.fsdecode(n)}))
                  for i, n in enumerate(files)]
        outcomes = trio.run(run_tool_calls, calls, registry)
        assert [o.rejected for o in outcomes] == [False] * len(calls)
        for o in outcomes:
            msgspec.json.encode(o)
            msgspec.json.encode(o.to_part())


@given(st.text(max_size=80), st.integers(0, 100), st.integers(0, 100))
def test_capping_twice_is_capping_once_at_the_smaller_limit(text: str, a: int, b: int) -> None:
    """A tool that capped its output and the supervisor capping it again leave one note that
    counts every character cut."""
    from runtime.tools._text import cap_text

    assert cap_text(cap_text(text, max(a, b)), min(a, b)) == cap_text(text, min(a, b))


async def test_read_and_write_never_block_on_a_fifo(tmp_path: Path) -> None:
    """A FIFO in the workspace is refused by read_file and write_file instead of blocking
    their worker thread forever."""
    os.mkfifo(tmp_path / "pipe")
    t = tools(tmp_path)
    with trio.fail_after(5):
        with pytest.raises(Exception, match="not a regular file"):
            await t["read_file"].call({"path": "pipe"})
        with pytest.raises(Exception, match="not a regular file"):
            await t["write_file"].call({"path": "pipe", "content": "x"})


async def test_a_big_file_is_read_by_its_two_ends(tmp_path: Path) -> None:
    """A file far larger than the output limit is never read whole: its head and tail are
    shown around a note giving its size."""
    big = tmp_path / "big.log"
    with open(big, "wb") as fh:
        fh.write(b"HEAD\n" + b"x" * 5_000_000 + b"\nTAIL\n")
    out = await tools(tmp_path, max_output_chars=100)["read_file"].call({"path": "big.log"})
    assert out.startswith("HEAD\n") and out.endswith("\nTAIL\n")
    assert "[... the middle of this 5000011-byte file is not shown ...]" in out
    assert len(out) < 200
