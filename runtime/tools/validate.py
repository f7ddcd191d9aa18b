"""Check a tool call before it runs (pure: no I/O, no trio).

:func:`validate_call` parses the model's argument text and validates it against the tool's
JSON Schema (Draft 2020-12), collecting every error as ``"<json path>: <message>"`` so that
the model can fix all of them in one go. Validators are compiled once per schema.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import msgspec
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

__all__ = [
    "ArgumentsError",
    "Validation",
    "check_schema",
    "format_path",
    "parse_arguments",
    "schema_errors",
    "validate_call",
    "validator_for",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean",
               int: "number", float: "number", type(None): "null"}


class ArgumentsError(ValueError):
    """The argument text is not a JSON object; the message says what and where."""


class Validation(msgspec.Struct, frozen=True):
    """The verdict on one call. ``arguments`` is the parsed object, also when it breaks
    the schema; it is ``None`` for an unknown tool or text that is not a JSON object."""

    name: str
    arguments: dict[str, Any] | None
    errors: list[str]
    unknown_tool: bool = False
    malformed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def message(self) -> str:
        """What to tell the model about a rejected call."""
        if self.unknown_tool or not self.errors:
            return "; ".join(self.errors)
        return f"Invalid arguments for {self.name}: " + "; ".join(self.errors)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_arguments(text: str | bytes | None) -> dict[str, Any]:
    """The argument object of a tool call. Empty text means no arguments (``{}``).

    Raises :class:`ArgumentsError` for malformed JSON (naming the problem, the line and
    column, and the text near it) and for JSON that is not an object.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", "replace")
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        near = text[max(0, exc.pos - 20): exc.pos + 20]
        raise ArgumentsError(
            f"arguments are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            f" (character {exc.pos}), near {near!r}") from None
    except ValueError as exc:
        raise ArgumentsError(f"arguments are not valid JSON: {exc}") from None
    except RecursionError:
        raise ArgumentsError("arguments are not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), type(value).__name__)
        raise ArgumentsError(f"arguments must be a JSON object, got {kind}")
    return value


def format_path(path: Iterable[str | int]) -> str:
    """A JSON path such as ``$.files[0].name`` (``$['odd key']`` for other keys)."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when ``schema`` is not a valid Draft 2020-12 object schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema at {format_path(exc.absolute_path)}: "
                         f"{exc.message}") from None
    if schema.get("type", "object") != "object":
        raise ValueError('a tool\'s parameters schema must have "type": "object"')


@functools.lru_cache(maxsize=512)
def _compiled(key: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(key))


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    """The (cached) validator of ``schema``; the schema itself is assumed valid."""
    return _compiled(json.dumps(schema, sort_keys=True, default=str))


def _extra_properties(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [k for k in instance
            if k not in props and not any(re.search(p, k) for p in patterns)]


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Every error of ``instance`` as ``"<json path>: <message>"``, sorted by path."""
    found: list[tuple[str, str]] = []
    for err in validator.iter_errors(instance):
        path = list(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = [p for p in err.validator_value
                       if p not in err.instance and err.message == f"{p!r} is a required property"]
            if missing:
                found.append((format_path([*path, missing[0]]), err.message))
                continue
        if err.validator == "additionalProperties" and err.validator_value is False \
                and isinstance(err.instance, dict):
            extras = _extra_properties(err.schema, err.instance)
            if extras:
                allowed = ", ".join(err.schema.get("properties", {})) or "none"
                for extra in extras:
                    found.append((format_path([*path, extra]),
                                  f"unexpected property {extra!r} (allowed: {allowed})"))
                continue
        found.append((format_path(path), err.message))
    found.sort()
    return [f"{p}: {m}" for p, m in found]


def validate_call(name: str, arguments: str | None,
                  schemas: Mapping[str, Mapping[str, Any]]) -> Validation:
    """Check one call against the offered tools (``schemas``: tool name -> parameters)."""
    if name not in schemas:
        available = ", ".join(sorted(schemas)) or "none"
        return Validation(name, None, [f"Unknown tool {name!r}. Available tools: {available}"],
                          unknown_tool=True)
    try:
        args = parse_arguments(arguments)
    except ArgumentsError as exc:
        return Validation(name, None, [f"$: {exc}"], malformed=True)
    errors = schema_errors(validator_for(schemas[name]), args)
    return Validation(name, args, errors)
