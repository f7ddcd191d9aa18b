"""The V4A patch format, pure: parsing the envelope and applying hunks to text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.tools.apply_patch import (
    AddFile,
    DeleteFile,
    PatchError,
    UpdateFile,
    apply_hunks,
    parse_added,
    parse_hunks,
    parse_patch,
)


def patch(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"]) + "\n"


def update(original: str, *body: str, path: str = "f.txt") -> str:
    (op,) = parse_patch(patch(f"*** Update File: {path}", *body))
    assert isinstance(op, UpdateFile)
    return apply_hunks(original, op.hunks, path)


def test_parses_add_delete_update_and_move() -> None:
    """Every operation of the envelope is parsed with its paths and contents."""
    ops = parse_patch(patch(
        "*** Add File: docs/hello.txt", "+Hello", "+world",
        "*** Delete File: old.txt",
        "*** Update File: src/app.py", "*** Move to: src/main.py", "@@ def greet():",
        '-    print("Hi")', '+    print("Hello")',
    ))
    assert ops[0] == AddFile("docs/hello.txt", "Hello\nworld\n")
    assert ops[1] == DeleteFile("old.txt")
    upd = ops[2]
    assert isinstance(upd, UpdateFile)
    assert (upd.path, upd.move_to) == ("src/app.py", "src/main.py")
    (hunk,) = upd.hunks
    assert hunk.anchors == ("def greet():",)
    assert hunk.old == ('    print("Hi")',) and hunk.new == ('    print("Hello")',)


def test_update_with_context_replaces_only_the_hunk() -> None:
    """Context lines locate the change; lines outside the hunk stay as they were."""
    original = "a\nb\nc\nd\ne\n"
    assert update(original, "@@", " b", "-c", "+C", " d") == "a\nb\nC\nd\ne\n"


def test_several_hunks_apply_in_order() -> None:
    """Two hunks in one file both apply, each searched after the previous one."""
    original = "x = 1\nfoo\nx = 1\nbar\n"
    out = update(original, "@@", " foo", "-x = 1", "+x = 2", "@@", " bar", "+baz")
    assert out == "x = 1\nfoo\nx = 2\nbar\nbaz\n"


def test_anchor_narrows_the_search_and_stacked_anchors_nest() -> None:
    """`@@ class B` then `@@ def run` find the method of the second class, not the first."""
    original = ("class A:\n    def run(self):\n        return 1\n"
                "class B:\n    def run(self):\n        return 1\n")
    out = update(original, "@@ class B:", "@@     def run(self):", "-        return 1",
                 "+        return 2")
    assert out.endswith("class B:\n    def run(self):\n        return 2\n")
    assert out.startswith("class A:\n    def run(self):\n        return 1\n")


def test_pure_addition_goes_after_its_anchor_or_at_the_end() -> None:
    """An added block with only an anchor lands right after the anchor; without one, at
    the end of the file."""
    original = "def f():\n    pass\n"
    assert update(original, "@@ def f():", "+    '''doc'''") == \
        "def f():\n    '''doc'''\n    pass\n"
    assert update(original, "@@", "+# end") == "def f():\n    pass\n# end\n"


def test_context_not_found_names_the_hunk_line_and_closest_text() -> None:
    """A hunk whose lines are not in the file is a typed error naming path, hunk and line."""
    with pytest.raises(PatchError) as info:
        update("a\nb\nc\n", "@@", " a", "-b", "+B", "@@", " a", "-x", "+y")
    err = info.value
    assert (err.path, err.hunk, err.line) == ("f.txt", 2, 7)
    text = str(err)
    assert text.startswith("f.txt: hunk 2 (patch line 7): ")
    assert "'x'" in text


def test_missing_anchor_is_a_typed_error() -> None:
    """An @@ line that matches nothing names the anchor text."""
    with pytest.raises(PatchError, match=r"hunk 1 .*'def nowhere\(\):' .*not found"):
        update("a\n", "@@ def nowhere():", "-a", "+b")


def test_whitespace_tolerant_matching() -> None:
    """Trailing, then leading whitespace and typographic punctuation are tolerated when an
    exact match fails; the replacement is written as the patch says."""
    assert update("value = 1   \nnext\n", "@@", "-value = 1", "+value = 2") == \
        "value = 2\nnext\n"
    assert update("\t\tindented\n", "@@", "-  indented", "+  fixed") == "  fixed\n"
    assert update("say \u201chi\u201d \u2013 now\n", "@@", '-say "hi" - now', "+said") == \
        "said\n"


def test_exact_match_wins_over_a_fuzzy_earlier_one() -> None:
    """A line that matches exactly is preferred to an earlier line that matches only when
    whitespace is ignored."""
    assert update("  x\nx\n", "@@", "-x", "+y") == "  x\ny\n"


def test_end_of_file_anchors_the_hunk_at_the_end() -> None:
    """With `*** End of File` the hunk matches the last lines even if the same lines occur
    earlier."""
    original = "end\nmiddle\nend\n"
    assert update(original, "@@", "-end", "+END", "*** End of File") == "end\nmiddle\nEND\n"
    assert update(original, "@@", "-end", "+END") == "END\nmiddle\nend\n"


def test_crlf_files_keep_their_line_endings() -> None:
    """A CRLF file stays CRLF, a BOM stays, and a file without a final newline keeps
    having none."""
    assert update("a\r\nb\r\nc\r\n", "@@", " a", "-b", "+B") == "a\r\nB\r\nc\r\n"
    assert update("\ufeffa\nb", "@@", "-b", "+c") == "\ufeffa\nc"


def test_crlf_patch_text_is_accepted() -> None:
    """A patch sent with CRLF line ends parses like the LF one."""
    ops = parse_patch(patch("*** Add File: a.txt", "+x").replace("\n", "\r\n"))
    assert ops == [AddFile("a.txt", "x\n")]


def test_lenient_envelope() -> None:
    """Padding around markers, a heredoc wrapper and blank lines between operations parse;
    an update may be a pure rename."""
    text = "<<'EOF'\n  *** Begin Patch \n\n*** Add File: a\n+1\n\n*** Update File: b\n" \
           "*** Move to: c\n *** End Patch\nEOF\n"
    ops = parse_patch(text)
    assert ops == [AddFile("a", "1\n"), UpdateFile("b", (), "c")]


def test_add_file_tolerates_a_bare_empty_line_between_added_lines() -> None:
    """An empty line inside an Add File block (a '+' forgotten) stays an empty line."""
    assert parse_patch(patch("*** Add File: a", "+x", "", "+y")) == [AddFile("a", "x\n\ny\n")]


@pytest.mark.parametrize(("text", "message", "line"), [
    ("*** Add File: a\n+x\n*** End Patch", "first line", 1),
    ("*** Begin Patch\n*** Add File: a\n+x\n", "last line", 3),
    (patch("*** Frobnicate File: a"), "not a valid operation", 2),
    (patch("*** Update File: a"), "has no hunks", 2),
    (patch("*** Update File: a", "@@", "-x", "oops"), "unexpected line 'oops'", 5),
    (patch("*** Update File: a", "@@"), "has no lines", 3),
    (patch("*** Add File: a", "x"), "not a valid operation", 3),
    (patch("*** Update File: a", "@@", "-x", "*** End of File", "-y"), r"after '\*\*\* End of", 6),
    (patch("*** Update File: a", "@@ ctx", "*** End of File"), "has no lines", 3),
    ("*** Begin Patch\n*** End Patch\ntrailing", r"after '\*\*\* End Patch'", 3),
])
def test_malformed_patches_are_typed_errors_with_a_line(text: str, message: str,
                                                        line: int) -> None:
    """Each malformed patch is a PatchError naming the patch line."""
    with pytest.raises(PatchError, match=message) as info:
        parse_patch(text)
    assert info.value.line == line


def test_unified_diff_hunk_headers_are_ignored() -> None:
    """`@@ -1,2 +1,2 @@` (line numbers a model copied from unified diffs) is a bare @@."""
    assert update("a\nb\n", "@@ -1,2 +1,2 @@", " a", "-b", "+c") == "a\nc\n"


def test_native_create_and_update_diffs() -> None:
    """The diff of a native create_file is '+' lines; an update_file diff is hunks alone."""
    assert parse_added("+one\n+two\n", "n.txt") == "one\ntwo\n"
    assert parse_added("", "empty.txt") == ""
    with pytest.raises(PatchError, match=r"n\.txt: .*line 2.*'two'"):
        parse_added("+one\ntwo\n", "n.txt")
    hunks = parse_hunks("@@ def f():\n-    pass\n+    return 1\n", "m.py")
    assert apply_hunks("def f():\n    pass\n", hunks, "m.py") == "def f():\n    return 1\n"
    with pytest.raises(PatchError, match="has no hunks"):
        parse_hunks("", "m.py")


def test_empty_original_gets_a_final_newline() -> None:
    """Adding lines to an empty file writes them with a final newline."""
    assert update("", "@@", "+first") == "first\n"


def test_trailing_empty_context_line_tolerated_at_eof() -> None:
    """A hunk ending in an empty context line (the file's final newline) still matches the
    end of the file."""
    assert update("a\nb\n", "@@", " a", "-b", "+c", "") == "a\nc\n"


lines = st.lists(st.text(alphabet="abc \t", max_size=6), min_size=1, max_size=12)


@given(lines, st.data())
def test_replacing_any_slice_round_trips(original: list[str], data: st.DataObject) -> None:
    """Replacing any slice of a file, given the slice itself as context, gives the file with
    that slice replaced (the first match at or after the slice's own position wins)."""
    start = data.draw(st.integers(0, len(original) - 1))
    end = data.draw(st.integers(start + 1, len(original)))
    new = data.draw(st.lists(st.text(alphabet="xyz", min_size=1, max_size=4), max_size=4))
    old = original[start:end]
    # the search starts at the top: make the slice's first occurrence the one we target
    first = next(i for i in range(len(original)) if original[i:i + len(old)] == old)
    text = "\n".join(original) + "\n"
    body = ["@@", *("-" + line for line in old), *("+" + line for line in new)]
    expected = original[:first] + new + original[first + len(old):]
    assert update(text, *body) == ("\n".join(expected) + "\n" if expected else "")


@given(st.lists(st.sampled_from(["*** Begin Patch\n", "*** End Patch\n", "\n", "@@",
                                  "*** Add File: a\n", "*** Update File: a\n", "+x\n", "-x\n",
                                  " x\n", "*** End of File\n", "*** Move to: b\n",
                                  "*** Delete File: a\n", "x", " ", "\r\n", "<<'EOF'\n",
                                  "EOF\n"]), max_size=40).map("".join)
       .flatmap(lambda body: st.sampled_from([body, f"*** Begin Patch\n{body}*** End Patch\n"])),
       st.text(alphabet="x \n\r", max_size=30))
def test_any_text_parses_or_fails_with_a_patch_error(text: str, original: str) -> None:
    """Whatever text arrives, parsing and applying end in operations, new text or a
    PatchError (naming a line or hunk): never another exception."""
    try:
        ops = parse_patch(text)
    except PatchError as exc:
        assert exc.line is not None and exc.line >= 1
        return
    for op in ops:
        if isinstance(op, UpdateFile):
            try:
                assert isinstance(apply_hunks(original, op.hunks, op.path), str)
            except PatchError as exc:
                assert exc.hunk is not None or exc.path == op.path


def test_pure_modules_import_without_trio() -> None:
    """The patch format, the call kinds, the text edge and the env rules do no I/O: they
    load without trio."""
    import subprocess
    import sys

    modules = ["runtime.tools.apply_patch", "runtime.tools._patch_match", "runtime.tools.kinds",
               "runtime.tools._text", "runtime.tools.shell_env", "runtime.tools.validate"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'httpx', 'anyio'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
