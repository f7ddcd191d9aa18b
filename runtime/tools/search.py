"""``search_files``: a regular expression over the text files of a workspace folder.

Files are visited in path order, symlinks never followed, ``.git`` and the like skipped.
What cannot be searched is reported, never silently dropped: files too large, binary files
(a NUL byte near the start), files that are not regular (FIFOs, sockets, devices: reading
one could block forever) and files or folders that cannot be read, each counted with a few
names. Files that are not valid UTF-8 are searched with their undecodable bytes as
``\\xNN`` (as the model is shown them) and named in a note.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ._text import clean_text, to_text
from .registry import ToolError

__all__ = ["Searcher"]

_SKIP_DIRS = frozenset({".git", "__pycache__", ".hg", ".svn"})
_BINARY_SNIFF = 8192
_NAMES_SHOWN = 5
_LINE_CHARS = 300


class _Report:
    """What a search could not read, by reason, in visiting order."""

    def __init__(self) -> None:
        self.skipped: dict[str, list[str]] = {}
        self.not_utf8: list[str] = []

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)

    def lines(self) -> list[str]:
        out = []
        if self.skipped:
            total = sum(len(v) for v in self.skipped.values())
            parts = [f"{len(names)} {reason}: {_names(names)}"
                     for reason, names in self.skipped.items()]
            out.append(f"[skipped {total} file{'s' if total != 1 else ''}: "
                       + "; ".join(parts) + "]")
        if self.not_utf8:
            n = len(self.not_utf8)
            out.append(f"[{n} file{' is' if n == 1 else 's are'} not valid UTF-8 (undecodable "
                       f"bytes searched as \\xNN): {_names(self.not_utf8)}]")
        return out


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


class Searcher:
    """Searches under ``root``; output capped at ``max_matches`` lines and
    ``max_output_chars`` characters."""

    def __init__(self, root: Path, *, max_output_chars: int, max_matches: int,
                 max_file_bytes: int) -> None:
        self.root = root
        self.max_output_chars = max_output_chars
        self.max_matches = max_matches
        self.max_file_bytes = max_file_bytes

    def _rel(self, path: Path) -> str:
        return clean_text(path.relative_to(self.root).as_posix()) or "."

    def search(self, pattern: str, target: Path) -> str:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
        report = _Report()
        files = [target] if not target.is_dir() else self._walk(target, report)
        out: list[str] = []
        size = 0
        more = False
        for file in files:
            for hit in self._grep(regex, file, report):
                if len(out) >= self.max_matches or size + len(hit) > self.max_output_chars:
                    more = True
                    break
                out.append(hit)
                size += len(hit) + 1
            if more:
                break
        if not out:
            out.append(f"no matches for {pattern!r} under {self._rel(target)}")
        elif more:
            out.append(f"[... more matches not shown (limit {self.max_matches} lines or "
                       f"{self.max_output_chars} characters); narrow the pattern or path]")
        return "\n".join([*out, *report.lines()])

    def _walk(self, top: Path, report: _Report) -> list[Path]:
        found: list[Path] = []

        def failed(exc: OSError) -> None:
            name = self._rel(Path(exc.filename)) if exc.filename else "?"
            report.skip("unreadable", f"{name}/")

        for dirpath, dirnames, filenames in os.walk(top, onerror=failed, followlinks=False):
            dirnames[:] = sorted((d for d in dirnames if d not in _SKIP_DIRS), key=os.fsencode)
            for name in sorted(filenames, key=os.fsencode):
                p = Path(dirpath, name)
                if not p.is_symlink():  # a symlink may point anywhere: never followed
                    found.append(p)
        return found

    def _grep(self, regex: re.Pattern[str], file: Path, report: _Report) -> list[str]:
        rel = self._rel(file)
        try:
            info = file.stat()
            if not stat.S_ISREG(info.st_mode):
                report.skip("not a regular file", rel)
                return []
            if info.st_size > self.max_file_bytes:
                report.skip(f"too large (over {self.max_file_bytes} bytes)", rel)
                return []
            data = file.read_bytes()
        except OSError:
            report.skip("unreadable", rel)
            return []
        if b"\x00" in data[:_BINARY_SNIFF]:
            report.skip("binary", rel)
            return []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            report.not_utf8.append(rel)
            text = to_text(data)
        hits: list[str] = []
        for n, line in enumerate(text.splitlines(), 1):
            if regex.search(line):
                shown = line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + "..."
                hits.append(f"{rel}:{n}: {shown}")
                if len(hits) > self.max_matches:
                    break
        return hits
