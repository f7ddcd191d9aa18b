"""The ``apply_patch`` built-in: V4A operations applied to the workspace, all or nothing.

Every path goes through :meth:`Workspace.resolve` (no ``..``, no absolute path, no symlink
out); a delete or a move never acts on a symlink (it would act on the link's target). The
whole patch is first computed in memory (each file's new text, operations on one file
applied in order); nothing is written if any operation fails. Then every new content is
staged in a temporary file beside its target, and the temporaries are swapped in with
``os.replace`` (atomic per file), the previous files kept as hard links until the end. If
a step fails, what was swapped in is undone: the patch leaves either every change or none.

Text: a file's bytes that are not UTF-8 are kept as they are (decoded with surrogate
escapes and written back the same way), and a hunk may quote them as the ``\\xNN`` the
model was shown; lone surrogates in the patch text become U+FFFD. Permissions of updated
files are kept; new files get ``0666`` minus the umask.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from ._text import replace_surrogates
from .apply_patch import (
    AddFile,
    DeleteFile,
    Op,
    PatchError,
    UpdateFile,
    apply_hunks,
    parse_added,
    parse_hunks,
)
from .apply_patch import parse_patch as _parse_patch
from .kinds import PatchOperation
from .registry import ToolError
from .workspace import Workspace, is_binary

__all__ = ["PatchApplier", "operation_ops"]

_UNCHANGED = "the patch was not applied: nothing was changed"


def operation_ops(op: PatchOperation) -> list[Op]:
    """The operation of a native ``apply_patch_call`` (its ``diff`` is one file's part of a
    V4A patch: '+' lines to create, hunks to update)."""
    diff = replace_surrogates(op.diff or "")
    try:
        if op.type == "create_file":
            return [AddFile(op.path, parse_added(diff, op.path))]
        if op.type == "update_file":
            return [UpdateFile(op.path, parse_hunks(diff, op.path))]
    except PatchError as exc:
        raise ToolError(f"{exc}; {_UNCHANGED}") from None
    return [DeleteFile(op.path)]


class PatchApplier:
    """Applies parsed operations to ``workspace`` (sync: the tool runs in a worker thread)."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def apply_text(self, patch: str) -> str:
        """Parse and apply a whole ``*** Begin Patch`` envelope; the summary for the model."""
        try:
            ops = _parse_patch(replace_surrogates(patch))
        except PatchError as exc:
            raise ToolError(f"{exc}; {_UNCHANGED}") from None
        if not ops:
            raise ToolError("the patch has no operations; nothing was changed")
        return self.apply(ops)

    def apply(self, ops: Sequence[Op]) -> str:
        """Apply ``ops`` all or nothing; a ToolError says why nothing was changed."""
        try:
            plan, summary = self._plan(ops)
        except PatchError as exc:
            raise ToolError(f"{exc}; {_UNCHANGED}") from None
        except ToolError as exc:
            raise ToolError(f"{exc}; {_UNCHANGED}") from None
        _commit(plan)
        return "\n".join(["Applied the patch:", *summary])

    # -- planning (reads only) ------------------------------------------------------------

    def _plan(self, ops: Sequence[Op]) -> tuple[dict[Path, bytes | None], list[str]]:
        plan: dict[Path, bytes | None] = {}
        summary: list[str] = []
        for op in ops:
            if isinstance(op, AddFile):
                target = self._writable(op.path)
                replaced = self._exists(target, plan)
                plan[target] = op.content.encode("utf-8")
                summary.append(f"A {self.ws.rel(target)}" + (" (replaced)" if replaced else ""))
            elif isinstance(op, DeleteFile):
                target = self._existing(op.path, plan, unlink=True)
                plan[target] = None
                summary.append(f"D {self.ws.rel(target)}")
            else:
                summary.append(self._update(op, plan))
        return plan, summary

    def _update(self, op: UpdateFile, plan: dict[Path, bytes | None]) -> str:
        source = self._existing(op.path, plan, unlink=op.move_to is not None)
        try:
            data = plan.get(source) if source in plan else source.read_bytes()
        except OSError as exc:
            raise ToolError(f"cannot read {op.path!r}: {exc.strerror or exc}") from None
        assert data is not None
        if is_binary(data):
            raise ToolError(f"{op.path!r} is a binary file; apply_patch edits text files")
        text = data.decode("utf-8", "surrogateescape")
        new = apply_hunks(text, op.hunks, op.path).encode("utf-8", "surrogateescape")
        line = f"M {self.ws.rel(source)}"
        if op.move_to is None:
            plan[source] = new
            return line
        dest = self._writable(op.move_to)
        replaced = dest != source and self._exists(dest, plan)
        if dest != source:
            plan[source] = None
        plan[dest] = new
        line += f" -> {self.ws.rel(dest)}"
        return line + (f" (replaced {self.ws.rel(dest)})" if replaced else "")

    def _writable(self, path: str) -> Path:
        target = self.ws.resolve(path)
        if target == self.ws.root or target.is_dir():
            raise ToolError(f"{path!r} is a directory; give a file path")
        return target

    def _existing(self, path: str, plan: dict[Path, bytes | None], *, unlink: bool) -> Path:
        target = self.ws.resolve(path)
        if unlink and (self.ws.root / path).is_symlink():
            raise ToolError(f"{path!r} is a symlink; apply_patch does not delete or move links")
        if target in plan:
            if plan[target] is None:
                raise ToolError(f"no such file: {path!r} (deleted earlier in this patch)")
            return target
        if target.is_dir():
            raise ToolError(f"{path!r} is a directory; give a file path")
        if not target.is_file():
            raise ToolError(f"no such file: {path!r}")
        return target

    @staticmethod
    def _exists(target: Path, plan: dict[Path, bytes | None]) -> bool:
        return plan[target] is not None if target in plan else target.exists()


# -- committing (writes) ------------------------------------------------------------------


def _temp_name(target: Path, what: str) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.patch-{what}")


def _stage(target: Path, data: bytes, created: list[Path]) -> Path:
    """Write ``data`` to a temporary file beside ``target`` (making its folders)."""
    missing = []
    parent = target.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir()
        created.append(folder)
    temp = _temp_name(target, "new")
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(temp, mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _swap(target: Path, temp: Path | None) -> Path | None:
    """Put ``temp`` in place of ``target`` (``None``: remove target); the backup of what
    was there, if anything, for :func:`_undo`. On failure nothing is left changed."""
    if not os.path.lexists(target):
        if temp is not None:
            os.replace(temp, target)
        return None
    backup = _temp_name(target, "old")
    if temp is None:
        os.replace(target, backup)
        return backup
    try:
        os.link(target, backup, follow_symlinks=False)
        linked = True
    except OSError:  # no hard links here: move it aside (briefly absent)
        os.replace(target, backup)
        linked = False
    try:
        os.replace(temp, target)
    except OSError:
        if linked:
            backup.unlink(missing_ok=True)
        else:
            os.replace(backup, target)
        raise
    return backup


def _undo(target: Path, backup: Path | None) -> None:
    if backup is not None:
        os.replace(backup, target)
    else:
        target.unlink(missing_ok=True)


def _commit(plan: dict[Path, bytes | None]) -> None:
    """Swap every planned change in, or none (see the module docstring)."""
    created: list[Path] = []
    staged: dict[Path, Path] = {}
    done: list[tuple[Path, Path | None]] = []
    try:
        for target, data in plan.items():
            if data is not None:
                staged[target] = _stage(target, data, created)
        for target in plan:  # writes first, deletions last
            if target in staged:
                done.append((target, _swap(target, staged[target])))
                del staged[target]
        for target, data in plan.items():
            if data is None:
                done.append((target, _swap(target, None)))
    except OSError as exc:
        for target, backup in reversed(done):
            try:
                _undo(target, backup)
            except OSError:
                pass
        for temp in staged.values():
            temp.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise ToolError(f"could not write the patch: {exc.strerror or exc}; "
                        "nothing was changed") from None
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)
