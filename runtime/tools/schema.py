"""Derive a tool's JSON Schema and description from a Python function (pure, no I/O).

The parameters become a msgspec Struct built on the fly (``msgspec.defstruct``), so that
every type msgspec understands is supported: ``str``, ``int``, ``float``, ``bool``,
``list[X]``, ``tuple[...]``, ``dict[str, X]``, ``Literal[...]``, ``enum.Enum``,
``X | None``, ``msgspec.Struct``, ``TypedDict``, dataclasses and
``Annotated[X, msgspec.Meta(...)]``. The same Struct later converts the model's validated
JSON arguments into those types (an ``Enum`` member, a ``Struct`` instance...).

A parameter with a default is not required; a parameter the model leaves out is not passed,
so the function's own default applies. The description is the docstring's first paragraph;
per-argument descriptions come from a Google-style ``Args:`` section.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["ArgsSpec", "derive", "parse_docstring"]

_SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]*):\s*$")
_ARGS_SECTIONS = {"Args", "Arguments", "Parameters", "Params", "Keyword Args",
                  "Keyword Arguments"}
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ArgsSpec(msgspec.Struct, frozen=True):
    """What :func:`derive` found: the description, the JSON Schema of the parameters and the
    Struct type that converts validated arguments into the declared Python types."""

    description: str
    parameters: dict[str, Any]
    args_type: type[msgspec.Struct]
    var_keyword: bool = False


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The first paragraph of ``doc`` (lines joined) and the ``Args:`` descriptions."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    in_args = False
    current: str | None = None
    base_indent = 0
    for line in lines:
        section = _SECTION.match(line)
        if section and len(line) - len(line.lstrip()) == 0:
            in_args = section.group(1).strip() in _ARGS_SECTIONS
            current = None
            base_indent = -1
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent < 0:
            base_indent = indent
        match = _ARG_LINE.match(line.strip())
        if indent == base_indent and match:
            current = match.group(1).lstrip("*")
            args[current] = match.group(2).strip()
        elif current is not None and indent > base_indent:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return " ".join(summary), args


def _json_default(value: Any) -> tuple[bool, Any]:
    try:
        return True, msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, ValueError, msgspec.EncodeError):
        return False, None


def derive(fn: Callable[..., Any], *, name: str | None = None) -> ArgsSpec:
    """Build the :class:`ArgsSpec` of ``fn`` from its signature, type hints and docstring.

    Raises ``TypeError`` naming the parameter when a hint has no JSON Schema, and for
    positional-only or ``*args`` parameters (the model passes arguments by name).
    """
    label: str = name or str(getattr(fn, "__name__", type(fn).__name__))
    target = fn if inspect.isroutine(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # unresolvable forward references and the like
        raise TypeError(f"tool {label}: cannot resolve type hints: {exc}") from exc
    description, arg_docs = parse_docstring(inspect.getdoc(target))
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    defaults: dict[str, Any] = {}
    var_keyword = False
    for pname, param in sig.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            raise TypeError(f"tool {label}: parameter {pname!r} cannot be passed by name; "
                            "tool functions take keyword arguments")
        hint = hints.get(pname, Any)
        if param.default is param.empty:
            fields.append((pname, hint))
        else:
            fields.append((pname, hint | UnsetType, UNSET))  # type: ignore[operator]
            defaults[pname] = param.default
    struct_name = "_" + re.sub(r"\W", "_", label) + "_arguments"
    try:
        args_type = msgspec.defstruct(struct_name, fields, kw_only=True,
                                      forbid_unknown_fields=not var_keyword)
        _, components = msgspec.json.schema_components(
            [args_type], ref_template="#/$defs/{name}")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {label}: cannot derive a JSON Schema from its type hints: "
                        f"{exc}; annotate the parameters with JSON types or pass "
                        "parameters= explicitly") from exc
    schema = dict(components.pop(struct_name))
    schema.pop("title", None)
    schema.setdefault("properties", {})
    if var_keyword:
        schema.pop("additionalProperties", None)
    props: dict[str, Any] = schema["properties"]
    for pname, prop in props.items():
        if pname in arg_docs and "description" not in prop:
            prop["description"] = arg_docs[pname]
        if pname in defaults:
            ok, value = _json_default(defaults[pname])
            if ok:
                prop["default"] = value
    if components:
        schema["$defs"] = components
    return ArgsSpec(description, schema, args_type, var_keyword)
