"""Redaction: secrets never reach a file, a console line or an HTTP response.

``Redactor`` replaces API keys, bearer tokens, ``Authorization`` / ``x-api-key`` values and
configured regular expressions by ``[REDACTED]``. It works on strings and on JSON-like
values (dicts, lists) recursively, and is a structlog processor too. Pure: no I/O.

Cost: every rule is compiled once into one alternation used to *find* whether a string
holds anything to redact (one pass of the regex engine over the string); only a string that
matches is rewritten rule by rule. Most strings match nothing, so redacting a record costs
one search per string value, whatever the number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

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


def scoped(pattern: str) -> str:
    """``pattern`` with its leading global flags made local (``(?i)x`` -> ``(?i:x)``), so
    that it can stand inside an alternation."""
    m = _GLOBAL_FLAGS.match(pattern)
    if m is None:
        return f"(?:{pattern})"
    flags = m.group(1).replace("a", "").replace("L", "").replace("u", "")
    body = pattern[m.end():]
    return f"(?{flags}:{body})" if flags else f"(?:{body})"


class Redactor:
    """Scrubs secrets from text and JSON-like values.

    ``secrets`` are literal strings (API keys from the config); ``patterns`` are regular
    expressions (``logging.redact``). A pattern with a first group keeps that group (the
    ``name=`` before a value) and redacts the rest of the match.
    """

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self._sources = [*_BUILTIN, *patterns]
        self._patterns = [re.compile(p) for p in self._sources]
        self._any: re.Pattern[str] | None = None
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
        alternatives = [scoped(p) for p in self._sources]
        if self._literal is not None:
            alternatives.insert(0, self._literal.pattern)
        try:
            self._any = re.compile("|".join(alternatives))
        except re.error:  # a pattern that cannot stand in an alternation: check each one
            self._any = None

    def add_secret(self, secret: str) -> None:
        """Redact this literal from now on (strings shorter than 4 characters are ignored)."""
        if self._add(secret):
            self._compile()

    def matches(self, value: str) -> bool:
        """Whether ``value`` holds anything to redact."""
        if self._any is not None:
            return self._any.search(value) is not None
        return ((self._literal is not None and self._literal.search(value) is not None)
                or any(p.search(value) for p in self._patterns))

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
        """Whether :meth:`value` would change anything (no copy is made)."""
        if isinstance(value, str):
            return self.matches(value)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.lower() in _SECRET_HEADERS and v:
                    return True
                if self.changes(v):
                    return True
            return False
        if isinstance(value, list | tuple):
            return any(self.changes(v) for v in value)
        return False

    def __call__(self, logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        """structlog processor."""
        return self.value(dict(event_dict))  # type: ignore[no-any-return]
