"""Redaction: secrets never reach a file or a console line.

``Redactor`` replaces API keys, bearer tokens, ``Authorization`` / ``x-api-key`` values and
configured regular expressions by ``[REDACTED]``. It works on strings and on JSON-like
values (dicts, lists) recursively, and is a structlog processor too. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["MARK", "Redactor"]

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


class Redactor:
    """Scrubs secrets from text and JSON-like values.

    ``secrets`` are literal strings (API keys from the config); ``patterns`` are regular
    expressions (``logging.redact``). A pattern with a first group keeps that group (the
    ``name=`` before a value) and redacts the rest of the match.
    """

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self._patterns = [re.compile(p) for p in (*_BUILTIN, *patterns)]
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Redact this literal from now on (strings shorter than 4 characters are ignored)."""
        if not secret or len(secret) < 4 or secret in self._secrets:
            return
        self._secrets.add(secret)
        lits = sorted(self._secrets, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, lits)))

    def text(self, value: str) -> str:
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

    def __call__(self, logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        """structlog processor."""
        return self.value(dict(event_dict))  # type: ignore[no-any-return]
