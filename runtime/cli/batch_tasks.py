"""The tasks file of batch mode (``--tasks tasks.jsonl``), parsed and checked (pure).

One task a line, either a JSON object ``{"id", "task", "provider"?, "model"?,
"max_turns"?}`` or a JSON string (the task; its id is its line number). Blank lines are
skipped. The whole file is checked before anything runs: bad JSON, an unknown key, a wrong
type, a duplicate id, an id that cannot name a run folder, an empty task, a provider that the
config does not declare or a model outside that provider's allowlist is a ``ConfigError``
naming the file, the line and the fix, like the errors of agent.yaml.

No I/O and no trio: :func:`parse_tasks` takes the file's bytes, and the rule for ids
(``runtime.engine.valid_run_id``) is handed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import attrs
import msgspec

from ..config.paths import did_you_mean
from ..errors import ConfigError

__all__ = ["KEYS", "RESERVED_IDS", "TaskLine", "TaskSpec", "parse_tasks"]

KEYS = ("id", "task", "provider", "model", "max_turns")
RESERVED_IDS = frozenset({"batch.json", "batch.json.tmp"})   # files of the batch folder
_FORMAT = ('each line is one JSON object {"id": "...", "task": "..."} (optional "provider", '
           '"model", "max_turns") or one JSON string (the task)')
_ID_RULE = ("letters, digits, '.', '_' and '-' (not first), at most 128 characters, "
            "or a whole number")


class TaskLine(msgspec.Struct, forbid_unknown_fields=True):
    """One line of the tasks file given as an object."""

    id: str | int
    task: str
    provider: str | None = None
    model: str | None = None
    max_turns: Annotated[int, msgspec.Meta(ge=1)] | None = None


@attrs.frozen
class TaskSpec:
    """One task of the batch: its id names its run folder ``<batch>/<id>/``."""

    id: str
    task: str
    line: int
    provider: str | None = None
    model: str | None = None
    max_turns: int | None = None


_decoder = msgspec.json.Decoder(TaskLine | str)
_AT = re.compile(r" - at `\$\.?(?P<key>[A-Za-z_]*)[^`]*`$")
_UNKNOWN = re.compile(r"unknown field `(?P<key>[^`]*)`")
_MISSING = re.compile(r"missing required field `(?P<key>[^`]*)`")


def parse_tasks(data: bytes, file: str, *, providers: Mapping[str, Sequence[str]],
                default_provider: str, valid_id: Callable[[str], bool]) -> list[TaskSpec]:
    """The tasks of a tasks file, in file order (see the module docstring).

    ``providers`` maps each provider entry of the config to its model allowlist (empty: any
    model); ``default_provider`` is the one a task without ``provider`` runs on."""
    text = _text(data, file)
    tasks: list[TaskSpec] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        spec = _task(line, n, file, providers, default_provider, valid_id)
        first = seen.get(spec.id)
        if first is not None:
            raise ConfigError(f"duplicate id {spec.id!r} (first on line {first})", file=file,
                              path=f"line {n}", fix="give each task its own id (a string "
                              "line's id is its line number)")
        seen[spec.id] = n
        tasks.append(spec)
    if not tasks:
        raise ConfigError("the tasks file has no tasks", file=file, fix=_FORMAT)
    return tasks


def _text(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=file,
                          path=f"line {line}", fix="save the tasks file as UTF-8") from None


def _task(line: str, n: int, file: str, providers: Mapping[str, Sequence[str]],
          default_provider: str, valid_id: Callable[[str], bool]) -> TaskSpec:
    where = f"line {n}"
    try:
        value = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        message, fix = _explain(str(exc), providers)
        raise ConfigError(message, file=file, path=where, fix=fix) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=file, path=where,
                          fix=_FORMAT) from None
    if isinstance(value, str):
        spec = TaskSpec(id=str(n), task=value, line=n)
    else:
        spec = TaskSpec(id=str(value.id), task=value.task, line=n, provider=value.provider,
                        model=value.model, max_turns=value.max_turns)
    if not valid_id(spec.id) or spec.id in RESERVED_IDS:
        reserved = " (a file of the batch folder)" if spec.id in RESERVED_IDS else ""
        raise ConfigError(f"id {spec.id!r} cannot name a run folder{reserved}", file=file,
                          path=f"{where}: id", fix=f"use {_ID_RULE}")
    if not spec.task.strip():
        raise ConfigError("the task is empty", file=file, path=f"{where}: task",
                          fix="give the task some text")
    provider = spec.provider if spec.provider is not None else default_provider
    if provider not in providers:
        raise ConfigError(f"no provider named {provider!r} in the config", file=file,
                          path=f"{where}: provider",
                          fix=f"{did_you_mean(provider, list(providers))}use one of "
                              f"{', '.join(providers)}")
    if spec.model is not None and not spec.model.strip():
        raise ConfigError("the model is empty", file=file, path=f"{where}: model",
                          fix="name a model, or leave model out to use the provider's")
    allowed = providers[provider]
    if spec.model is not None and allowed and spec.model not in allowed:
        raise ConfigError(f"model {spec.model!r} is not in the allowlist of provider "
                          f"{provider!r} ({', '.join(allowed)})", file=file,
                          path=f"{where}: model",
                          fix=f"{did_you_mean(spec.model, allowed)}use one of the listed "
                              f"models or add it to providers.{provider}.models")
    return spec


_FIXES = {
    "id": f"the id is a string of {_ID_RULE}",
    "task": "the task is a JSON string",
    "provider": "the provider is the name of an entry of providers: in the config",
    "model": "the model is a JSON string",
    "max_turns": "max_turns is a whole number, at least 1",
}


def _explain(error: str, providers: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """msgspec's validation error as a message and a fix a person can act on."""
    m = _UNKNOWN.search(error)
    if m:
        key = m["key"]
        return (f"unknown key {key!r}",
                f"{did_you_mean(key, KEYS)}the keys are {', '.join(KEYS)}")
    m = _MISSING.search(error)
    if m:
        key = m["key"]
        return f"missing key {key!r}", f"add \"{key}\" to the object ({_FORMAT})"
    m = _AT.search(error)
    if m and m["key"]:
        key = m["key"]
        detail = error[:m.start()]
        fix = _FIXES.get(key, _FORMAT)
        if key == "provider":
            fix += f" ({', '.join(providers)})"
        return f"{key}: {detail[:1].lower()}{detail[1:]}", fix
    return f"not a task: {error[:1].lower()}{error[1:]}", _FORMAT
