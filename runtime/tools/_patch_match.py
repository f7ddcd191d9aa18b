"""Applying V4A hunks to one file's text (pure: no I/O, no trio).

A hunk is found by its old lines (context and removed lines, in order), searched from the
end of the previous hunk (or of its ``@@`` anchors) with decreasing strictness: exact, then
ignoring trailing whitespace, then ignoring surrounding whitespace, then also treating
typographic dashes, quotes and spaces as their ASCII forms. The first position that matches
at the strictest level wins. A hunk marked ``*** End of File`` is tried at the end of the
file first. A hunk with nothing to match (only added lines) goes right after its anchor, or
at the end of the file when it has none.

File lines are compared as the model was shown them: bytes that are not UTF-8 (kept in the
text as surrogate escapes) read as ``\\xNN``. Context lines keep the file's own text (its whitespace, its bytes), whatever level matched.
The text keeps what it was: a UTF-8 BOM, each untouched line's CRLF or LF end (new lines take
the file's dominant one), and the presence or absence of a final newline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._text import clean_text

__all__ = ["Hunk", "PatchError", "apply_hunks", "seek"]

_BOM = "\ufeff"
_PUNCT = str.maketrans({
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
    **dict.fromkeys("\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
                    "\u205f\u3000", " "),
})
_LEVELS: tuple[Callable[[str], str], ...] = (
    lambda s: s, str.rstrip, str.strip, lambda s: s.strip().translate(_PUNCT))


class PatchError(ValueError):
    """A patch that cannot be parsed or applied: ``path``, ``hunk`` (1-based within the
    file) and ``line`` (of the patch text, 1-based) say where, when known."""

    def __init__(self, message: str, *, path: str | None = None, hunk: int | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.hunk = hunk
        self.line = line
        where = f"patch line {line}" if line is not None else ""
        if hunk is not None:
            where = f"hunk {hunk}" + (f" ({where})" if where else "")
        super().__init__(": ".join(x for x in (path, where, message) if x))


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk: ``anchors`` (the ``@@ text`` lines, in order), ``body`` (its lines
    as ``(op, text)``, op ``' '`` context, ``'-'`` removed, ``'+'`` added), whether it must
    match at the end of the file, the patch line where it starts and its number in the file."""

    anchors: tuple[str, ...]
    body: tuple[tuple[str, str], ...]
    eof: bool = False
    line: int = 0
    number: int = 1

    @property
    def old(self) -> tuple[str, ...]:
        """Context and removed lines: what must be found in the file."""
        return tuple(text for op, text in self.body if op != "+")

    @property
    def new(self) -> tuple[str, ...]:
        """Context and added lines: what the file has there afterwards."""
        return tuple(text for op, text in self.body if op != "-")


def _without_final_empty(body: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``body`` without its last old line, an empty one standing for the final newline."""
    for i in range(len(body) - 1, -1, -1):
        if body[i][0] != "+":
            return body[:i] + body[i + 1:]
    return body


def seek(lines: Sequence[str], pattern: Sequence[str], start: int, eof: bool = False) -> int | None:
    """The index where ``pattern`` occurs in ``lines`` at or after ``start`` (see the module
    docstring for the levels), or ``None``."""
    n = len(pattern)
    if n == 0:
        return start
    last = len(lines) - n
    if last < 0:
        return None
    if eof:
        tail = [clean_text(line) for line in lines[last:]]
        for key in _LEVELS:
            if [key(line) for line in tail] == [key(p) for p in pattern]:
                return last
    shown = [clean_text(line) for line in lines]  # undecodable bytes as the model saw them
    for key in _LEVELS:
        text = [key(line) for line in shown]
        pat = [key(p) for p in pattern]
        for i in range(start, last + 1):
            if text[i] == pat[0] and text[i:i + n] == pat:
                return i
    return None


def _closest(lines: Sequence[str], old: Sequence[str], start: int) -> str:
    """A hint naming where the hunk almost matched, if it did anywhere."""
    key = _LEVELS[-1]
    text = [key(line) for line in lines]
    pat = [key(p) for p in old]
    best = (0, -1)
    for i in range(len(text)):
        k = 0
        while k < len(pat) and i + k < len(text) and text[i + k] == pat[k]:
            k += 1
        if k > best[0] and k < len(pat):
            best = (k, i)
    k, i = best
    if k == 0:
        where = f" after file line {start}" if start else ""
        return f"its first line {old[0]!r} is not in the file{where}"
    if i + k >= len(lines):
        return (f"closest: file line {i + 1} matches its first {k} line(s), then the file "
                f"ends where the hunk expects {old[k]!r}")
    return (f"closest: file line {i + 1} matches its first {k} line(s), but file line "
            f"{i + k + 1} is {lines[i + k]!r}, not {old[k]!r}")


def apply_hunks(original: str, hunks: Sequence[Hunk], path: str) -> str:
    """``original`` with ``hunks`` applied, or :class:`PatchError` naming the first hunk
    that does not match."""
    bom = _BOM if original.startswith(_BOM) else ""
    raw = original[len(bom):].split("\n")
    final_newline = raw[-1] == ""
    if final_newline:
        raw.pop()
    crs = [line.endswith("\r") for line in raw]
    lines = [line.removesuffix("\r") for line in raw]
    new_cr = sum(crs) * 2 > len(crs)
    edits: list[tuple[int, tuple[tuple[str, str], ...]]] = []
    cursor = 0
    for h in hunks:
        for anchor in h.anchors:
            found = seek(lines, [anchor], cursor)
            if found is None:
                after = f" after file line {cursor}" if cursor else ""
                raise PatchError(f"context line {anchor!r} (after @@) not found{after}",
                                 path=path, hunk=h.number, line=h.line)
            cursor = found + 1
        body = h.body
        if not h.old:
            edits.append((cursor if h.anchors and not h.eof else len(lines), body))
            continue
        found = seek(lines, h.old, cursor, h.eof)
        if found is None and h.old[-1] == "":  # an empty last line for the final newline
            body = _without_final_empty(body)
            old = tuple(text for op, text in body if op != "+")
            found = seek(lines, old, cursor, h.eof) if old else len(lines)
        if found is None:
            raise PatchError("could not find the lines this hunk changes: "
                             + _closest(lines, h.old, cursor), path=path, hunk=h.number,
                             line=h.line)
        edits.append((found, body))
        cursor = found + sum(op != "+" for op, _ in body)
    out: list[str] = []
    pos = 0
    for at, body in sorted(edits, key=lambda e: e[0]):
        if at < pos:
            raise PatchError("two hunks change the same lines", path=path)
        out.extend(line + "\r" if cr else line for line, cr in zip(lines[pos:at], crs[pos:at],
                                                                    strict=True))
        pos = at
        for op, text in body:
            if op == " ":  # the file's own line: its bytes, whitespace and line end
                out.append(lines[pos] + "\r" if crs[pos] else lines[pos])
            elif op == "+":
                out.append(text + "\r" if new_cr else text)
            pos += op != "+"
    out.extend(line + "\r" if cr else line for line, cr in zip(lines[pos:], crs[pos:],
                                                                strict=True))
    return bom + "\n".join(out) + ("\n" if final_newline and out else "")
