"""Client-run call kinds other than ``function`` (pure: no I/O, no trio).

The Responses API has calls the client must run that are not JSON function calls (see
``runtime.model.ToolKind``). Here are their actions as typed structs, decoded from the
call's ``arguments`` with errors the model can act on, the reply a kind's handler gives, and
the ``meta`` of a result for a call that did not run (so the codec can still send the
matching ``*_output`` item):

* ``shell`` (``shell_call``): ``commands`` (run in order by ``/bin/sh -c``), ``timeout_ms``
  for the whole call, ``max_output_length`` per command;
* ``local_shell`` (``local_shell_call``): ``command`` (an argv), ``env``,
  ``working_directory``, ``timeout_ms``, ``user``;
* ``apply_patch`` (``apply_patch_call``): ``type`` (``create_file`` | ``update_file`` |
  ``delete_file``), ``path``, ``diff``.

Result ``meta``: ``shell``/``local_shell``: ``{"outputs": [{"stdout", "stderr", "exit_code"
| "timed_out": true}]}`` (one per command run; a call that never ran has one output whose
stderr says why, exit code 126, "could not run"); ``apply_patch``: ``{"status": "completed" |
"failed"}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec

__all__ = ["HANDLED_BY", "NATIVE_KINDS", "LocalShellAction", "NativeReply", "PatchOperation",
           "ShellAction", "decode_action", "failure_meta"]

NATIVE_KINDS = ("shell", "local_shell", "apply_patch")
HANDLED_BY = {"shell": "run_shell", "local_shell": "run_shell", "apply_patch": "apply_patch"}
NOT_RUN = 126  # the shells' "found but could not run"

_Positive = Annotated[int, msgspec.Meta(gt=0)]


class ShellAction(msgspec.Struct):
    commands: Annotated[list[str], msgspec.Meta(min_length=1)]
    timeout_ms: _Positive | None = None
    max_output_length: _Positive | None = None


class LocalShellAction(msgspec.Struct):
    command: Annotated[list[str], msgspec.Meta(min_length=1)]
    type: Literal["exec"] = "exec"
    env: dict[str, str] = msgspec.field(default_factory=dict)
    working_directory: str | None = None
    timeout_ms: _Positive | None = None
    user: str | None = None


class PatchOperation(msgspec.Struct):
    type: Literal["create_file", "update_file", "delete_file"]
    path: str
    diff: str | None = None


_TYPES: dict[str, type[msgspec.Struct]] = {
    "shell": ShellAction, "local_shell": LocalShellAction, "apply_patch": PatchOperation}


class NativeReply(msgspec.Struct):
    """What a handler of a kind returns: the text (transcript, and protocols without the
    native item), whether it succeeded, and the kind's ``meta``."""

    content: str
    ok: bool = True
    meta: dict[str, Any] | None = None


def decode_action(kind: str, arguments: str) -> msgspec.Struct:
    """The typed action of a ``kind`` call; ``ValueError`` with the model-facing reason."""
    try:
        raw = json.loads(arguments)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid {kind} call: its action is not valid JSON ({exc})") from None
    try:
        action = msgspec.convert(raw, type=_TYPES[kind])
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {kind} call: {exc}") from None
    if isinstance(action, PatchOperation) and action.type != "delete_file" \
            and action.diff is None:
        raise ValueError(f"invalid apply_patch call: {action.type} needs a diff")
    return action


def failure_meta(kind: str, message: str, *, timed_out: bool = False) -> dict[str, Any] | None:
    """The ``meta`` of a ``kind`` result whose call failed or never ran."""
    if kind in ("shell", "local_shell"):
        out: dict[str, Any] = {"stdout": "", "stderr": message}
        out.update({"timed_out": True} if timed_out else {"exit_code": NOT_RUN})
        return {"outputs": [out]}
    if kind == "apply_patch":
        return {"status": "failed"}
    return None
