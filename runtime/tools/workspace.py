"""The file tools, confined to a workspace folder.

Every path the model gives is checked by :meth:`Workspace.resolve` before anything is read
or written: it must be relative, free of NUL bytes, may not climb out with ``..`` and may not
leave the workspace through a symlink (the path is resolved, symlinks followed, and the
result must lie inside the resolved workspace). The operations then use the resolved path.
A refusal is a :class:`ToolError` naming the rule that was broken.

Limits: a symlink swapped in between the check and the use (by another process) is not
defended against; regular expressions run in a worker thread that a timeout abandons.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from ._text import cap_text
from .registry import ToolError

__all__ = ["Workspace"]

_SKIP_DIRS = frozenset({".git", "__pycache__", ".hg", ".svn"})
_BINARY_SNIFF = 8192


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:_BINARY_SNIFF]


class Workspace:
    """File operations on paths relative to ``root``; results are capped at
    ``max_output_chars``."""

    def __init__(self, root: Path, *, max_output_chars: int = 20000, max_matches: int = 200,
                 max_file_bytes: int = 2_000_000) -> None:
        self.root = root.resolve(strict=False)
        self.max_output_chars = max_output_chars
        self.max_matches = max_matches
        self.max_file_bytes = max_file_bytes

    def resolve(self, path: str) -> Path:
        """The real location of ``path`` inside the workspace, or a ToolError naming the
        rule it breaks."""
        if "\x00" in path:
            raise ToolError(f"refused: the path {path!r} contains a NUL byte")
        if os.path.isabs(path) or path.startswith("~"):
            raise ToolError(f"refused: {path!r} is an absolute path; paths are relative to "
                            "the workspace")
        depth = 0
        for part in PurePosixPath(path.replace("\\", "/")).parts:
            depth = depth - 1 if part == ".." else depth + (part != ".")
            if depth < 0:
                raise ToolError(f"refused: {path!r} uses '..' to leave the workspace")
        resolved = (self.root / path).resolve(strict=False)
        if not resolved.is_relative_to(self.root):
            raise ToolError(f"refused: {path!r} leads outside the workspace through a "
                            "symlink")
        return resolved

    def rel(self, path: Path) -> str:
        r = path.relative_to(self.root).as_posix()
        return r if r else "."

    def read_file(self, path: str) -> str:
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path!r} is a directory; use list_dir")
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise ToolError(f"no such file: {path!r}") from None
        except OSError as exc:
            raise ToolError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        if _is_binary(data):
            return f"{path!r} is a binary file ({len(data)} bytes); not shown"
        return cap_text(data.decode("utf-8", "replace"), self.max_output_chars)

    def write_file(self, path: str, content: str) -> str:
        target = self.resolve(path)
        if target == self.root or target.is_dir():
            raise ToolError(f"{path!r} is a directory; give a file path")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode("utf-8")
            target.write_bytes(data)
        except OSError as exc:
            raise ToolError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        return f"wrote {len(data)} bytes to {self.rel(target)}"

    def list_dir(self, path: str = ".") -> str:
        target = self.resolve(path)
        if not target.exists():
            raise ToolError(f"no such directory: {path!r}")
        if not target.is_dir():
            raise ToolError(f"{path!r} is a file; use read_file")
        lines: list[str] = []
        try:
            entries = sorted(os.scandir(target), key=lambda e: e.name)
        except OSError as exc:
            raise ToolError(f"cannot list {path!r}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.is_symlink():
                lines.append(f"{entry.name}@")
            elif entry.is_dir():
                lines.append(f"{entry.name}/")
            else:
                try:
                    size = entry.stat().st_size
                except OSError:
                    size = -1
                lines.append(f"{entry.name} ({size} bytes)" if size >= 0 else entry.name)
        if not lines:
            return f"{self.rel(target)} is empty"
        return cap_text("\n".join(lines), self.max_output_chars)

    def search_files(self, pattern: str, path: str = ".") -> str:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
        target = self.resolve(path)
        if not target.exists():
            raise ToolError(f"no such path: {path!r}")
        files = [target] if target.is_file() else self._walk(target)
        out: list[str] = []
        size = 0
        more = False
        for file in files:
            for hit in self._grep(regex, file):
                if len(out) >= self.max_matches or size + len(hit) > self.max_output_chars:
                    more = True
                    break
                out.append(hit)
                size += len(hit) + 1
            if more:
                break
        if not out:
            return f"no matches for {pattern!r} under {self.rel(target)}"
        if more:
            out.append(f"[... more matches not shown (limit {self.max_matches} lines or "
                       f"{self.max_output_chars} characters); narrow the pattern or path]")
        return "\n".join(out)

    def _walk(self, top: Path) -> list[Path]:
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                p = Path(dirpath, name)
                if not p.is_symlink():  # a symlink may point anywhere: never followed
                    found.append(p)
        return found

    def _grep(self, regex: re.Pattern[str], file: Path) -> list[str]:
        try:
            if file.stat().st_size > self.max_file_bytes:
                return []
            data = file.read_bytes()
        except OSError:
            return []
        if _is_binary(data):
            return []
        rel = self.rel(file)
        hits: list[str] = []
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if regex.search(line):
                text = line if len(line) <= 300 else line[:300] + "..."
                hits.append(f"{rel}:{n}: {text}")
                if len(hits) > self.max_matches:
                    break
        return hits
