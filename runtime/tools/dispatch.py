"""From a tool call to something to run, by the call's kind (no I/O here).

* ``function``: the registered tool of that name, its JSON arguments validated against its
  schema (``validate.py``);
* ``custom``: the registered tool of that name, its freeform input as the tool's single
  string parameter;
* ``shell``, ``local_shell``, ``apply_patch``: the tool that answers the kind (the built-ins
  ``run_shell`` and ``apply_patch``), with the action decoded (``kinds.py``); approval is
  that tool's.

Anything else is a :class:`Rejected` call with the reason the model reads: it never runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import msgspec

from ..model import ToolCallPart
from .kinds import HANDLED_BY, NativeReply, decode_action
from .registry import Tool, ToolRegistry
from .validate import schema_errors, validate_call, validator_for

__all__ = ["Prepared", "Rejected", "prepare"]


@attrs.frozen
class Prepared:
    """A call ready to be approved and run: ``tool`` (whose approval applies), the
    ``arguments`` shown to a person and recorded, and ``run`` to start it."""

    tool: Tool
    arguments: dict[str, Any]
    run: Callable[[], Awaitable[NativeReply]]


@attrs.frozen
class Rejected:
    message: str
    errors: list[str]
    arguments: dict[str, Any] | None = None


def _function(tool: Tool, arguments: dict[str, Any]) -> Callable[[], Awaitable[NativeReply]]:
    async def run() -> NativeReply:
        return NativeReply(await tool.call(arguments))

    return run


def _string_parameter(tool: Tool) -> str | None:
    """The name of the one string parameter a freeform input can fill, if there is one."""
    props: Mapping[str, Any] = tool.parameters.get("properties", {})
    strings = [str(k) for k, v in props.items()
               if isinstance(v, Mapping) and v.get("type") == "string"]
    required = [str(k) for k in tool.parameters.get("required", []) if k in props]
    if len(props) == 1 and strings:
        return strings[0]
    if len(required) == 1 and required[0] in strings:
        return required[0]
    return None


def _custom(call: ToolCallPart, registry: ToolRegistry) -> Prepared | Rejected:
    tool = registry.get(call.name)
    if tool is None:
        available = ", ".join(sorted(registry.names())) or "none"
        reason = f"Unknown tool {call.name!r}. Available tools: {available}"
        return Rejected(reason, [reason])
    param = _string_parameter(tool)
    if param is None:
        reason = (f"{call.name} cannot take freeform input: it needs exactly one string "
                  "parameter")
        return Rejected(reason, [reason])
    arguments = {param: call.arguments}
    errors = schema_errors(validator_for(tool.parameters), arguments)
    if errors:
        return Rejected(f"Invalid input for {call.name}: " + "; ".join(errors), errors,
                        arguments)
    return Prepared(tool, arguments, _function(tool, arguments))


def _native(call: ToolCallPart, registry: ToolRegistry) -> Prepared | Rejected:
    kind = call.kind
    tool = registry.handler(kind)
    if tool is None:
        reason = (f"{kind} calls are not available: enable the built-in {HANDLED_BY[kind]} "
                  "(tools.builtin) to let the model run them")
        return Rejected(reason, [reason])
    try:
        action = decode_action(kind, call.arguments)
    except ValueError as exc:
        return Rejected(str(exc), [str(exc)])
    handler = tool.native[kind]
    arguments: dict[str, Any] = msgspec.to_builtins(action)

    async def run() -> NativeReply:
        reply = await handler(action)
        assert isinstance(reply, NativeReply)
        return reply

    return Prepared(tool, arguments, run)


def prepare(call: ToolCallPart, registry: ToolRegistry,
            schemas: Mapping[str, Mapping[str, Any]]) -> Prepared | Rejected:
    """What to do with ``call`` (``schemas``: the registry's, computed once per turn)."""
    if call.kind == "custom":
        return _custom(call, registry)
    if call.kind in HANDLED_BY:
        return _native(call, registry)
    checked = validate_call(call.name, call.arguments, schemas)
    if not checked.ok or checked.arguments is None:
        return Rejected(checked.message(), list(checked.errors), checked.arguments)
    tool = registry[call.name]
    return Prepared(tool, checked.arguments, _function(tool, checked.arguments))
