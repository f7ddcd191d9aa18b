"""Locating config errors: YAML with line numbers, unknown keys, msgspec's errors as key paths.

msgspec reports a wrong type as ``... - at `$.providers[...].retry.max_attempts` ``: dict keys
are elided. ``translate`` walks the raw data and the Struct types along that path to put the
real key back (``providers.main.retry.max_attempts``) and to say what value would fit.
``check_unknown`` finds unknown keys first, so that they come with a "did you mean".
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import yaml  # type: ignore[import-untyped]

from ..errors import ConfigError
from .env import join

__all__ = ["check_unknown", "describe", "did_you_mean", "load_yaml", "translate"]


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def load_yaml(text: str, file: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML (safe loader). Returns the data and the line of every key path; a syntax
    error or a duplicate key is a ``ConfigError`` with its line and column."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            _node_lines(node, "", lines, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        raise ConfigError(f"YAML syntax error{where}: {what}", file=file,
                          fix="fix the YAML there (indentation, a missing ':' or an "
                              "unquoted special character)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", file=file,
                          fix="fix the YAML syntax") from exc
    finally:
        loader.dispose()
    return data, lines


def _node_lines(node: yaml.Node, path: str, lines: dict[str, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            sub = join(path, key.value)
            if key.value in seen:
                raise ConfigError(f"duplicate key {key.value!r} (line {key.start_mark.line + 1})",
                                  file=file, path=sub, fix="keep only one of them")
            seen.add(key.value)
            lines.setdefault(sub, key.start_mark.line + 1)
            _node_lines(value, sub, lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            lines.setdefault(sub, item.start_mark.line + 1)
            _node_lines(item, sub, lines, file)


def at_line(message: str, path: str | None, lines: dict[str, int]) -> str:
    """``message`` with the YAML line of ``path`` (or of its nearest parent) appended."""
    while path:
        if path in lines:
            return f"{message} (line {lines[path]})"
        path = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path) if re.search(r"[.\[]", path) else ""
    return message


# -- type walking ---------------------------------------------------------------------------

@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def unwrap(tp: Any, raw: Any = None) -> Any:
    """Strip ``Annotated``; of a union, the member that fits the shape of ``raw``."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif _is_union(tp):
            members = [m for m in get_args(tp) if m is not type(None)]
            tp = _pick(members, raw)
        else:
            return tp


def _pick(members: list[Any], raw: Any) -> Any:
    def shape(m: Any) -> str:
        m = get_args(m)[0] if get_origin(m) is Annotated else m
        if _is_struct(m) or get_origin(m) is dict or m is dict:
            return "map"
        if get_origin(m) is list or m is list:
            return "list"
        return "scalar"

    want = "map" if isinstance(raw, dict) else "list" if isinstance(raw, list) else "scalar"
    for m in members:
        if shape(m) == want:
            return m
    return members[0]


def check_unknown(raw: Any, tp: Any, *, file: str, lines: dict[str, int], path: str = ""
                  ) -> None:
    """Raise a ``ConfigError`` (with a "did you mean") for the first key that the Struct at
    its place does not have, or a mapping key that is not a string."""
    tp = unwrap(tp, raw)
    if isinstance(raw, dict) and (_is_struct(tp) or get_origin(tp) is dict):
        for key, value in raw.items():
            sub = join(path, key)
            if not isinstance(key, str):
                raise ConfigError(at_line(f"key {key!r} is not a string", sub, lines),
                                  file=file, path=sub, fix=f"quote it: '{key}'")
            if _is_struct(tp):
                fields = tp.__struct_fields__
                if key not in fields:
                    raise ConfigError(
                        at_line(f"unknown key {key!r}", sub, lines), file=file, path=sub,
                        fix=f"{did_you_mean(key, fields)}known keys here: {', '.join(fields)}")
                check_unknown(value, _hints(tp)[key], file=file, lines=lines, path=sub)
            elif len(get_args(tp)) == 2:
                check_unknown(value, get_args(tp)[1], file=file, lines=lines, path=sub)
    elif isinstance(raw, list) and get_origin(tp) is list and get_args(tp):
        for i, item in enumerate(raw):
            check_unknown(item, get_args(tp)[0], file=file, lines=lines, path=f"{path}[{i}]")


def describe(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for a "fix" text."""
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        text = describe(base)
        for meta in metas:
            for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                bound = getattr(meta, attr, None)
                if bound is not None:
                    text += f" {op} {bound}"
        return text
    if _is_union(tp):
        return " or ".join(describe(m) for m in get_args(tp))
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(str(v) for v in get_args(tp))
    if get_origin(tp) is list:
        return f"a list of ({describe(get_args(tp)[0])})" if get_args(tp) else "a list"
    if get_origin(tp) is dict or tp is dict:
        return "a mapping"
    if _is_struct(tp):
        return "a mapping with keys " + ", ".join(tp.__struct_fields__)
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


_SEG = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\.\.\.)\]")
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)


def translate(exc: msgspec.ValidationError, raw: Any, root: type, *, file: str,
              lines: dict[str, int], origin: dict[str, str] | None = None) -> ConfigError:
    """A ``ConfigError`` for msgspec's error: real key path, what was wrong, what would fit.
    ``origin`` maps key paths set from outside the file to where (``--model``)."""
    m = _MSG.match(str(exc))
    assert m is not None  # the pattern matches any text
    msg, spath = m["msg"], m["path"] or "$"
    parts: list[str] = []
    cur_raw, cur_tp = raw, root
    for seg in _SEG.finditer(spath[1:]):
        tp = unwrap(cur_tp, cur_raw)
        if seg[1] is not None:
            name = seg[1]
            cur_tp = _hints(tp)[name] if _is_struct(tp) and name in _hints(tp) else Any
            cur_raw = cur_raw.get(name) if isinstance(cur_raw, dict) else None
            parts.append("." + name)
        elif seg[2] is not None:
            i = int(seg[2])
            cur_tp = get_args(tp)[0] if get_origin(tp) is list and get_args(tp) else Any
            cur_raw = cur_raw[i] if isinstance(cur_raw, list) and i < len(cur_raw) else None
            parts.append(f"[{i}]")
        else:
            cur_tp = get_args(tp)[1] if len(get_args(tp)) == 2 else Any
            key = _failing_key(cur_raw, cur_tp)
            cur_raw = cur_raw.get(key) if isinstance(cur_raw, dict) and key else None
            parts.append("." + (key or "*"))
    path = "".join(parts).lstrip(".")
    fix: str
    missing = re.match(r"Object missing required field `([^`]+)`", msg)
    if missing:
        name = missing[1]
        tp = unwrap(cur_tp, cur_raw)
        field_tp = _hints(tp).get(name, Any) if _is_struct(tp) else Any
        text = at_line(f"missing required key {name!r}", path, lines)
        path = join(path, name)
        fix = f"add {name}: <{describe(field_tp)}>"
    else:
        enum = re.match(r"Invalid enum value (.*)", msg)
        tp = unwrap(cur_tp, cur_raw)
        if enum and get_origin(tp) is Literal:
            options = [str(v) for v in get_args(tp)]
            what = "provider kind" if re.fullmatch(r"providers\.[^.]+\.kind", path) else "value"
            text = at_line(f"unknown {what} {enum[1]}; known: {', '.join(options)}", path, lines)
            fix = f"{did_you_mean(str(cur_raw), options)}use one of {', '.join(options)}"
        else:
            val = f" {cur_raw!r}" if isinstance(cur_raw, int | float | str) else ""
            text = at_line(f"wrong value{val}: {msg.replace('`', '')}", path, lines)
            fix = f"use {describe(cur_tp)}"
            if "got `bool`" in msg:
                fix += " (YAML reads yes/no/on/off as booleans: quote the value)"
    if origin and path in origin:
        text += f" (set by {origin[path]})"
    return ConfigError(text, file=file, path=path or None, fix=fix)


def _failing_key(raw: Any, value_tp: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    for key, value in raw.items():
        try:
            msgspec.convert(value, value_tp, strict=False)
        except msgspec.ValidationError:
            return str(key)
    return None
