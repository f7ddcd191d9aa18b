"""The file tools, confined to a workspace folder.

Every path the model gives is checked by :meth:`Workspace.resolve` before anything is read
or written: it must be relative, free of NUL bytes, may not climb out with ``..`` and may not
leave the workspace through a symlink (the path is resolved, symlinks followed, and the
result must lie inside the resolved workspace). The operations then use the resolved path.
A refusal is a :class:`ToolError` naming the rule that was broken.

Text (see ``_text.py``): names and contents that are not UTF-8 are shown with ``\\xNN``
escapes, and written text with lone surrogates is written with U+FFFD instead; every result
is valid UTF-8.

The workspace folder itself: :func:`check_workspace` (no side effect, for the config loader)
and :func:`prepare_workspace` (creates it) raise :class:`WorkspaceError`, a configuration
error naming ``tools.workspace``, when it names a file or when it is missing and so is its
parent (a typo must not create a tree).

Limits: a symlink swapped in between the check and the use (by another process) is not
defended against; regular expressions run in a worker thread that a timeout abandons.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from ._text import cap_text, clean_text, replace_surrogates, to_text
from .registry import ToolError
from .search import Searcher

__all__ = ["Workspace", "WorkspaceError", "check_workspace", "is_binary", "prepare_workspace"]

_BINARY_SNIFF = 8192


class WorkspaceError(ConfigError):
    """``tools.workspace`` cannot be used (a file, or a folder whose parent is missing)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message, path="tools.workspace", fix=fix)


def check_workspace(path: Path) -> Path:
    """``path`` made absolute if it can be the workspace (an existing folder, or a missing
    one whose parent folder exists); else :class:`WorkspaceError`. Creates nothing."""
    path = Path(os.path.abspath(path))
    if path.is_dir():
        return path
    if path.exists():
        raise WorkspaceError(f"{path} is a file, not a folder",
                             fix="name a folder (it is created if its parent exists)")
    if not path.parent.is_dir():
        raise WorkspaceError(f"neither {path} nor its parent folder {path.parent} exists",
                             fix="create the parent folder, or correct the path")
    return path


def prepare_workspace(path: Path) -> Path:
    """:func:`check_workspace`, then create the folder if it is missing."""
    path = check_workspace(path)
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def is_binary(data: bytes) -> bool:
    """Whether ``data`` looks binary (a NUL byte near the start)."""
    return b"\x00" in data[:_BINARY_SNIFF]


class Workspace:
    """File operations on paths relative to ``root``; results are capped at
    ``max_output_chars``."""

    def __init__(self, root: Path, *, max_output_chars: int = 20000, max_matches: int = 200,
                 max_file_bytes: int = 2_000_000) -> None:
        self.root = root.resolve(strict=False)
        self.max_output_chars = max_output_chars
        self.searcher = Searcher(self.root, max_output_chars=max_output_chars,
                                 max_matches=max_matches, max_file_bytes=max_file_bytes)

    def resolve(self, path: str) -> Path:
        """The real location of ``path`` inside the workspace, or a ToolError naming the
        rule it breaks."""
        if "\x00" in path:
            raise ToolError(f"refused: the path {clean_text(path)!r} contains a NUL byte")
        try:
            os.fsencode(path)
        except UnicodeEncodeError:
            raise ToolError(f"refused: the path {clean_text(path)!r} is not valid text "
                            "(a lone surrogate)") from None
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
        """``path`` relative to the root, as the model reads it."""
        r = path.relative_to(self.root).as_posix()
        return clean_text(r) if r else "."

    def read_file(self, path: str) -> str:
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path!r} is a directory; use list_dir")
        window = max(4096, self.max_output_chars * 4)  # bytes kept of each end of a big file
        try:
            info = target.stat()
            if not stat.S_ISREG(info.st_mode):  # reading a FIFO or a device could block
                raise ToolError(f"{path!r} is not a regular file (a FIFO, socket or device); "
                                "not read")
            with open(target, "rb") as fh:
                data = fh.read(2 * window)
                tail = b""
                if info.st_size > 2 * window:  # a big file: its two ends, never all of it
                    data = data[:window]
                    fh.seek(-window, os.SEEK_END)
                    tail = fh.read()
        except FileNotFoundError:
            raise ToolError(f"no such file: {path!r}") from None
        except OSError as exc:
            raise ToolError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        if is_binary(data):
            return f"{path!r} is a binary file ({info.st_size} bytes); not shown"
        bad = sum(1 for c in (data + tail).decode("utf-8", "surrogateescape")
                  if "\udc80" <= c <= "\udcff")
        note = (f"[{self.rel(target)} is not valid UTF-8: {bad} undecodable "
                f"byte{'s' if bad != 1 else ''} {'are' if bad != 1 else 'is'} shown as \\xNN]\n"
                if bad else "")
        if not tail:
            return note + cap_text(to_text(data), self.max_output_chars)
        half = self.max_output_chars // 2
        return (note + to_text(data)[:half]
                + f"\n[... the middle of this {info.st_size}-byte file is not shown ...]\n"
                + to_text(tail)[-(self.max_output_chars - half):])

    def write_file(self, path: str, content: str) -> str:
        target = self.resolve(path)
        if target == self.root or target.is_dir():
            raise ToolError(f"{path!r} is a directory; give a file path")
        if target.exists() and not target.is_file():
            raise ToolError(f"{path!r} is not a regular file (a FIFO, socket or device); "
                            "not written")
        text = replace_surrogates(content)
        replaced = sum(1 for a, b in zip(content, text, strict=True) if a != b)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            data = text.encode("utf-8")
            target.write_bytes(data)
        except OSError as exc:
            raise ToolError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        note = (f"; {replaced} lone surrogate{'s were' if replaced != 1 else ' was'} written "
                "as U+FFFD" if replaced else "")
        return f"wrote {len(data)} bytes to {self.rel(target)}{note}"

    def list_dir(self, path: str = ".") -> str:
        target = self.resolve(path)
        if not target.exists():
            raise ToolError(f"no such directory: {path!r}")
        if not target.is_dir():
            raise ToolError(f"{path!r} is a file; use read_file")
        lines: list[str] = []
        try:
            entries = sorted(os.scandir(target), key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            raise ToolError(f"cannot list {path!r}: {exc.strerror or exc}") from None
        for entry in entries:
            name = clean_text(entry.name)
            if entry.is_symlink():
                lines.append(f"{name}@")
            elif entry.is_dir():
                lines.append(f"{name}/")
            else:
                try:
                    size = entry.stat().st_size
                except OSError:
                    size = -1
                lines.append(f"{name} ({size} bytes)" if size >= 0 else name)
        if not lines:
            return f"{self.rel(target)} is empty"
        return cap_text("\n".join(lines), self.max_output_chars)

    def search_files(self, pattern: str, path: str = ".") -> str:
        target = self.resolve(path)
        if not target.exists():
            raise ToolError(f"no such path: {path!r}")
        return self.searcher.search(pattern, target)
