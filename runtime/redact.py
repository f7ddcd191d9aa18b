"""Redaction: secrets never reach a file, a console line or an HTTP response.

``Redactor`` replaces API keys, bearer tokens, ``Authorization`` / ``x-api-key`` values and
configured regular expressions by ``[REDACTED]``. It works on strings and on JSON-like
values (dicts, lists) recursively, and is a structlog processor too. Pure: no I/O.

Cost: every rule is compiled once into one alternation used to *find* whether a string
holds anything to redact (one pass of the regex engine over the string); only a string that
matches is rewritten rule by rule. Most strings match nothing. :meth:`Redactor.changes`
asks that of a whole record at once: its strings are joined with NUL and searched in one
pass (a rule that matches a string alone also matches it inside the joined text, as long
as no rule looks at the edges of the text: anchors and lookarounds; a rule set with those
is searched string by string), so a record costs one search, whatever its size or the
number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import msgspec

__all__ = ["MARK", "Redactor", "scoped"]

MARK = "[REDACTED]"

# Values that are secrets wherever they appear, whatever the configuration says.
_BUILTIN = [
    r"(?i)(authorization\s*[:=]\s*)(?:bearer\s+|basic\s+)?[^\s,;\"']+",
    r"(?i)(x-api-key\s*[:=]\s*)[^\s,;\"']+",
    r"(?i)(api[_-]?key\s*[\"']?\s*[:=]\s*[\"']?)[^\s,;\"'&]+",
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}",
    r"\bsk-(?:ant-|proj-|or-v1-|or-)?[A-Za-z0-9_-]{10,}",
]
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "set-cookie",
     "openai-organization", "openai-project"}
)
_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
# what may behave differently inside a joined text than at the edges of one string:
# anchors (^ outside a class's [^, $, \A, \Z, \B) and lookarounds
_EDGE_SENSITIVE = re.compile(r"(?<!\[)\^|\$|\\[AZB]|\(\?<?[=!]")
_SEP = "\x00"
# Every built-in rule needs one of the words "api", "authorization", "bearer"
# (case-insensitively; "sk-" as is): _may_hold_builtin tests them. The only characters that
# re's IGNORECASE matches to a letter of these words without str.lower() giving that letter
# are U+0130 and U+0131 (both match "i"): a text holding one of them is searched whatever
# it says.


def _may_hold_builtin(text: str) -> bool:
    """False only when no built-in rule can match ``text`` (a cheap test before the regex:
    the case-insensitive alternation costs ~70 ns a character, this ~1 ns)."""
    if "sk-" in text:
        return True
    low = text.lower()
    return ("api" in low or "bearer" in low or "authorization" in low
            or (not text.isascii() and ("\u0130" in text or "\u0131" in text)))


def scoped(pattern: str) -> str:
    """``pattern`` with its leading global flags made local (``(?i)x`` -> ``(?i:x)``), so
    that it can stand inside an alternation."""
    m = _GLOBAL_FLAGS.match(pattern)
    if m is None:
        return f"(?:{pattern})"
    flags = m.group(1).replace("a", "").replace("L", "").replace("u", "")
    body = pattern[m.end():]
    return f"(?{flags}:{body})" if flags else f"(?:{body})"


_BUILTIN_ANY = re.compile("|".join(scoped(p) for p in _BUILTIN))


class Redactor:
    """Scrubs secrets from text and JSON-like values.

    ``secrets`` are literal strings (API keys from the config); ``patterns`` are regular
    expressions (``logging.redact``). A pattern with a first group keeps that group (the
    ``name=`` before a value) and redacts the rest of the match.
    """

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self._user = list(patterns)
        self._sources = [*_BUILTIN, *self._user]
        self._patterns = [re.compile(p) for p in self._sources]
        # the configured literals and patterns in one alternation (None: nothing configured;
        # _split False: a pattern cannot stand in an alternation, every rule is tried alone)
        self._extra: re.Pattern[str] | None = None
        self._split = True
        self._joinable = not any(_EDGE_SENSITIVE.search(p) for p in self._sources)
        for secret in secrets:
            self._add(secret)
        self._compile()

    def _add(self, secret: str) -> bool:
        if not secret or len(secret) < 4 or secret in self._secrets:
            return False
        self._secrets.add(secret)
        return True

    def _compile(self) -> None:
        lits = sorted(self._secrets, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, lits))) if lits else None
        alternatives = [scoped(p) for p in self._user]
        if self._literal is not None:
            alternatives.insert(0, self._literal.pattern)
        try:
            self._extra = re.compile("|".join(alternatives)) if alternatives else None
            self._split = True
        except re.error:  # a pattern that cannot stand in an alternation: check each one
            self._extra, self._split = None, False

    def add_secret(self, secret: str) -> None:
        """Redact this literal from now on (strings shorter than 4 characters are ignored)."""
        if self._add(secret):
            self._compile()

    def matches(self, value: str) -> bool:
        """Whether ``value`` holds anything to redact."""
        if not self._split:
            return ((self._literal is not None and self._literal.search(value) is not None)
                    or any(p.search(value) for p in self._patterns))
        if self._extra is not None and self._extra.search(value) is not None:
            return True
        return _may_hold_builtin(value) and _BUILTIN_ANY.search(value) is not None

    def text(self, value: str) -> str:
        if not self.matches(value):
            return value
        if self._literal is not None:
            value = self._literal.sub(MARK, value)
        for pat in self._patterns:
            if pat.groups:
                value = pat.sub(lambda m: (m.group(1) or "") + MARK, value)
            else:
                value = pat.sub(MARK, value)
        return value

    def value(self, value: Any) -> Any:
        """Redact a JSON-like value recursively; secret header names lose their value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(k, str) and k.lower() in _SECRET_HEADERS and v:
                    out[k] = MARK
                else:
                    out[k] = self.value(v)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def changes(self, value: Any) -> bool:
        """Whether :meth:`value` would change anything in ``value`` (a string, a JSON-like
        value, or a msgspec struct such as a transcript record); no copy is made. The
        strings are searched in one pass (see the module docstring)."""
        strings: list[str] = []
        if not _collect(value, strings):
            return True
        if self._joinable:
            return self.matches(_SEP.join(strings))
        return any(self.matches(v) for v in strings)

    def __call__(self, logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        """structlog processor."""
        return self.value(dict(event_dict))  # type: ignore[no-any-return]


_SCALARS = (int, float, bool, type(None))
_astuple = msgspec.structs.astuple


def _collect(value: Any, out: list[str]) -> bool:
    """Append the strings of ``value`` to ``out`` (dict keys are not redacted, so not
    collected); False when a secret header name holds a value (the value redacts it).
    Strings and scalars are handled in the loops, only containers recurse."""
    t = type(value)
    if t is str:
        out.append(value)
        return True
    if isinstance(value, msgspec.Struct):
        items: Any = _astuple(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if type(k) is str and v and k.lower() in _SECRET_HEADERS:
                return False
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif isinstance(value, str):  # a str subclass
        out.append(value)
        return True
    else:
        return True
    for v in items:
        tv = type(v)
        if tv is str:
            out.append(v)
        elif tv in _SCALARS:
            continue
        elif not _collect(v, out):
            return False
    return True
