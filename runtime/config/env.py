"""The environment side of agent.yaml: ``.env`` files and ``${VAR}`` interpolation.

Pure functions (the caller reads files): ``parse_dotenv`` turns ``.env`` text into a dict;
``interpolate`` / ``interpolate_tree`` replace ``${VAR}`` and ``${VAR:-default}`` in string
values after YAML parsing, so that a variable's value can never inject YAML. ``$${`` is a
literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["interpolate", "interpolate_tree", "parse_dotenv"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REF = re.compile(r"\$\$\{|\$\{(?P<name>" + _NAME + r")(?::-(?P<default>[^}]*))?\}|\$\{")
_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>" + _NAME + r")\s*=\s*(?P<value>.*)$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, *, file: str = ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments, blank lines, ``export `` prefixes, single quotes
    (literal) and double quotes (``\\n``-style escapes) are understood. An unquoted value
    ends at `` #``."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _DOTENV_LINE.match(line)
        if m is None:
            raise ConfigError(
                f"line {number} is not KEY=VALUE: {stripped[:60]!r}", file=file,
                fix="write one KEY=VALUE a line (names: letters, digits, _), or comment it "
                    "out with #")
        out[m["key"]] = _dotenv_value(m["value"].strip(), file, number)
    return out


def _dotenv_value(raw: str, file: str, number: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing_quote(raw, quote)
        if end < 0:
            raise ConfigError(f"line {number}: unterminated {quote} quote", file=file,
                              fix=f"close the value with {quote}")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"line {number}: text after the closing quote: {rest[:40]!r}",
                              file=file, fix="put comments after ' #' or quote the whole value")
        body = raw[1:end]
        if quote == "'":
            return body
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), body)
    cut = re.search(r"\s#", raw)
    return (raw[:cut.start()] if cut else raw).strip()


def _closing_quote(raw: str, quote: str) -> int:
    i = 1
    while i < len(raw):
        if quote == '"' and raw[i] == "\\":
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return -1


def interpolate(value: str, env: Mapping[str, str], *, file: str, path: str) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}`` (default when unset or empty); ``$${`` is a
    literal ``${``. An unset variable without default is a ``ConfigError`` naming it."""
    if "$" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "$${":
            return "${"
        name = m.group("name")
        if name is None:
            raise ConfigError(
                f"malformed variable reference in {value[:80]!r}", file=file, path=path,
                fix="write ${NAME} or ${NAME:-default} (NAME: letters, digits, _), or $${ "
                    "for a literal ${")
        got = env.get(name)
        default = m.group("default")
        if default is not None:
            return got if got else default
        if got is None:
            raise ConfigError(
                f"environment variable {name} is not set", file=file, path=path,
                fix=f"export {name}=... (or put {name}=... in a .env file beside the "
                    f"config), or write ${{{name}:-default}}")
        return got

    return _REF.sub(sub, value)


def interpolate_tree(data: Any, env: Mapping[str, str], *, file: str, path: str = "") -> Any:
    """``interpolate`` every string value of a YAML tree (keys are left alone)."""
    if isinstance(data, str):
        return interpolate(data, env, file=file, path=path)
    if isinstance(data, dict):
        return {k: interpolate_tree(v, env, file=file, path=join(path, k))
                for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, env, file=file, path=f"{path}[{i}]")
                for i, v in enumerate(data)]
    return data


def join(path: str, key: object) -> str:
    """The dotted key path of ``key`` under ``path``."""
    return f"{path}.{key}" if path else str(key)
