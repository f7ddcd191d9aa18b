"""The environment of shell commands (pure): an allowlist, and never a secret.

A command run by ``run_shell`` (and by the Responses ``shell`` / ``local_shell`` calls) gets
only these variables of our environment:

* :data:`BASE_ALLOW`: ``PATH HOME USER LOGNAME SHELL LANG LANGUAGE LC_* TERM TZ TMPDIR`` (what
  ordinary programs need to find themselves, their locale and a temporary folder);
* the names and globs of ``tools.shell_env`` in agent.yaml (``[GOPATH, MYAPP_*]``).

The provider key variables (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
``OPENROUTER_API_KEY``, ``LOCAL_API_KEY``) never pass, even when named. Any other variable is
dropped when its name looks like a secret (``*API_KEY*``,
``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``) unless ``tools.shell_env``
names it exactly (the user's explicit choice), and always when the secret test (the
config's API keys and the ``logging.redact`` patterns, see :func:`secret_test`) flags its
name, its value or ``NAME=value``. ``PWD`` is set to the command's folder by the runner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase

from ..providers.kinds import KINDS
from ..redact import Redactor

__all__ = ["BASE_ALLOW", "PROVIDER_KEYS", "SecretTest", "scrub_env", "secret_test"]

BASE_ALLOW: tuple[str, ...] = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE",
                               "LC_*", "TERM", "TZ", "TMPDIR")
_SECRET_NAME = re.compile(r"(?i)(api_?key|secret|token|passw(or)?d|credential)")
PROVIDER_KEYS = frozenset(k.key_env for k in KINDS.values() if k.key_env)

SecretTest = Callable[[str], bool]


def secret_test(redactor: Redactor | SecretTest | None) -> SecretTest:
    """A predicate that is true for text the redactor would change (a configured secret or
    a pattern match); the built-in patterns (``sk-...`` keys, bearer tokens) when ``None``."""
    if redactor is None:
        redactor = Redactor()
    if isinstance(redactor, Redactor):
        red = redactor
        return lambda text: red.text(text) != text
    return redactor


def _allowed(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, p) if any(c in p for c in "*?[") else name == p
               for p in patterns)


def scrub_env(env: Mapping[str, str], *, allow: Iterable[str] = (),
              is_secret: SecretTest | None = None) -> dict[str, str]:
    """The variables of ``env`` that may reach a command (see the module docstring)."""
    extra = list(allow)
    test = is_secret or secret_test(None)
    out = {}
    for name, value in env.items():
        if name in PROVIDER_KEYS or not _allowed(name, (*BASE_ALLOW, *extra)):
            continue
        if _SECRET_NAME.search(name) and name not in extra:
            continue
        if test(name) or test(value) or test(f"{name}={value}"):
            continue
        out[name] = value
    return out
