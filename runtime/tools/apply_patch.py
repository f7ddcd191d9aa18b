"""The V4A patch format of OpenAI's ``apply_patch`` tool (and Codex), parsed (pure).

No I/O and no trio: text in, typed operations out; :func:`apply_hunks` (in
``_patch_match``) turns a file's text and its hunks into the new text. Errors are
:class:`PatchError` naming the file, the hunk and the patch line.

Grammar (lenient where models are known to slip)::

    *** Begin Patch
    *** Add File: <path>            then '+' lines: the whole content
    *** Delete File: <path>
    *** Update File: <path>
    *** Move to: <new path>         optional: a rename (an update may be only a rename)
    @@ [anchor]                     a hunk; stacked '@@ anchor' lines narrow the search
     context / -removed / +added    an empty line is an empty context line
    *** End of File                 optional: the hunk matches at the end of the file
    *** End Patch

Leniency: whitespace around the envelope and operation markers, a ``<<'EOF'`` heredoc
wrapper, CRLF line ends, blank lines between operations, an empty line inside an Add File
block, unified-diff ``@@ -1,2 +1,3 @@`` headers (treated as a bare ``@@``), and a first hunk
without ``@@``. The native Responses ``apply_patch_call`` carries one operation at a time:
:func:`parse_added` reads a ``create_file`` diff and :func:`parse_hunks` an ``update_file``
diff (the hunks of one file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._patch_match import Hunk, PatchError, apply_hunks

__all__ = ["AddFile", "DeleteFile", "Hunk", "Op", "PatchError", "UpdateFile", "apply_hunks",
           "parse_added", "parse_hunks", "parse_patch"]

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File:"
DELETE = "*** Delete File:"
UPDATE = "*** Update File:"
MOVE = "*** Move to:"
EOF_MARK = "*** End of File"
_HEREDOC = ("<<EOF", "<<'EOF'", '<<"EOF"')
_UNIFIED = re.compile(r"^-\d+(,\d+)? \+\d+(,\d+)? @@")


@dataclass(frozen=True)
class AddFile:
    """Create ``path`` (or replace it) with ``content``."""

    path: str
    content: str


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class UpdateFile:
    """Apply ``hunks`` to ``path``; with ``move_to`` the result is written there and
    ``path`` removed."""

    path: str
    hunks: tuple[Hunk, ...]
    move_to: str | None = None


Op = AddFile | DeleteFile | UpdateFile


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")]


def parse_patch(text: str) -> list[Op]:
    """The operations of a whole ``*** Begin Patch`` ... ``*** End Patch`` envelope."""
    lines = _lines(text)
    first, last = _bounds(lines)
    if first <= last and lines[first].strip() in _HEREDOC and lines[last].strip().endswith("EOF"):
        first, last = _bounds(lines, first + 1, last - 1)
    if first > last or lines[first].strip() != BEGIN:
        raise PatchError(f"the first line of the patch must be {BEGIN!r}",
                         line=min(first, len(lines) - 1) + 1)
    end = next((i for i in range(first + 1, last + 1) if lines[i].strip() == END), None)
    if end is None:
        raise PatchError(f"the last line of the patch must be {END!r}", line=last + 1)
    if end != last:
        raise PatchError(f"unexpected text after {END!r}", line=end + 2)
    ops: list[Op] = []
    i = first + 1
    while i < end:
        line = lines[i].strip()
        if not line:
            i += 1
        elif line.startswith(ADD):
            i = _add(lines, i, end, _path(line, ADD, i), ops)
        elif line.startswith(DELETE):
            ops.append(DeleteFile(_path(line, DELETE, i)))
            i += 1
        elif line.startswith(UPDATE):
            i = _update(lines, i, end, _path(line, UPDATE, i), ops)
        else:
            raise PatchError(f"{line!r} is not a valid operation (use '{ADD} <path>', "
                             f"'{DELETE} <path>' or '{UPDATE} <path>')", line=i + 1)
    return ops


def _bounds(lines: list[str], lo: int = 0, hi: int | None = None) -> tuple[int, int]:
    """The first and last non-blank line indexes within ``lines[lo:hi + 1]``."""
    hi = len(lines) - 1 if hi is None else hi
    while lo <= hi and not lines[lo].strip():
        lo += 1
    while hi >= lo and not lines[hi].strip():
        hi -= 1
    return lo, hi


def _path(line: str, marker: str, index: int) -> str:
    path = line[len(marker):].strip()
    if not path:
        raise PatchError(f"{marker!r} needs a path", line=index + 1)
    return path


def _add(lines: list[str], i: int, end: int, path: str, ops: list[Op]) -> int:
    body: list[str] = []
    i += 1
    while i < end:
        line = lines[i]
        if line.startswith("+"):
            body.append(line[1:])
        elif line == "" and _next_added(lines, i, end):
            body.append("")  # a '+' the model forgot on an empty line
        else:
            break
        i += 1
    ops.append(AddFile(path, "".join(b + "\n" for b in body)))
    return i


def _next_added(lines: list[str], i: int, end: int) -> bool:
    while i < end and lines[i] == "":
        i += 1
    return i < end and lines[i].startswith("+")


def _update(lines: list[str], i: int, end: int, path: str, ops: list[Op]) -> int:
    start = i
    i += 1
    move_to = None
    if i < end and lines[i].strip().startswith(MOVE):
        move_to = _path(lines[i].strip(), MOVE, i)
        i += 1
    stop = i
    while stop < end and not (lines[stop].startswith("***")
                               and lines[stop].rstrip() != EOF_MARK):
        stop += 1
    last = stop
    while last > i and not lines[last - 1].strip():  # blank lines before the next operation
        last -= 1
    hunks = _hunks(lines[i:last], path, i + 1)
    if not hunks and move_to is None:
        raise PatchError(f"'{UPDATE} {path}' has no hunks", path=path, line=start + 1)
    ops.append(UpdateFile(path, tuple(hunks), move_to))
    return stop


def parse_hunks(diff: str, path: str) -> tuple[Hunk, ...]:
    """The hunks of one file (the ``diff`` of a native ``update_file`` operation)."""
    lines = _lines(diff)
    while lines and not lines[-1].strip():
        lines.pop()
    hunks = _hunks(lines, path, 1)
    if not hunks:
        raise PatchError("the update has no hunks", path=path, line=1)
    return tuple(hunks)


def parse_added(diff: str, path: str) -> str:
    """The content of a native ``create_file`` operation: its '+' lines."""
    lines = _lines(diff)
    while lines and not lines[-1]:
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not line.startswith("+"):
            raise PatchError(f"every line of a created file starts with '+', not {line!r}",
                             path=path, line=n)
    return "".join(line[1:] + "\n" for line in lines)


def _anchor(line: str) -> str:
    text = line[2:]
    text = text[1:] if text.startswith(" ") else text
    if _UNIFIED.match(text.strip()):
        return ""
    stripped = text.rstrip()
    if stripped.endswith(" @@"):  # '@@ def f(): @@'
        text = stripped[:-3]
    return text if text.strip() else ""


def _hunks(lines: list[str], path: str, first_line: int) -> list[Hunk]:
    """Parse hunk lines (``first_line`` is the patch line number of ``lines[0]``)."""
    hunks: list[Hunk] = []
    anchors: list[str] = []
    body: list[tuple[str, str]] = []
    start: int | None = None
    closed = False  # the last hunk ended with *** End of File

    def finish(eof: bool, at: int) -> None:
        nonlocal anchors, body, start
        if not body:
            raise PatchError("the hunk has no lines", path=path, hunk=len(hunks) + 1,
                             line=start if start is not None else at)
        hunks.append(Hunk(tuple(anchors), tuple(body), eof,
                          start if start is not None else at, len(hunks) + 1))
        anchors, body, start = [], [], None

    for n, line in enumerate(lines, first_line):
        if line.startswith("@@"):
            if body:
                finish(False, n)
            closed = False
            start = n if start is None else start
            if anchor := _anchor(line):
                anchors.append(anchor)
            continue
        if line.rstrip() == EOF_MARK:
            finish(True, n)
            closed = True
            continue
        if closed and line.strip():
            raise PatchError(f"a new hunk must start with '@@' after {EOF_MARK!r}",
                             path=path, line=n)
        if closed:
            continue
        if line == "" or line[0] in " -+":
            start = n if start is None else start
            body.append((line[:1] or " ", line[1:]))
            continue
        raise PatchError(f"unexpected line {line!r}: every line of a hunk starts with ' ' "
                         "(context), '-' (removed) or '+' (added)", path=path,
                         hunk=len(hunks) + 1, line=n)
    if start is not None:
        finish(False, start)
    return hunks
