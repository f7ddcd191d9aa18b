"""The one table of provider kinds (pure: no I/O, no trio, no httpx).

Everything the code knows per ``kind:`` of agent.yaml lives here and nowhere else: which wire
protocol and dialect speak to it, its default base URL (following each vendor's SDK: the
OpenAI kinds include ``/v1``, ``anthropic`` does not), the environment variable users keep
its key in, whether a key is required, and whether it costs money. The config schema's
``kind`` type (``KindName``), the config checks, the provider runtimes, the fake server, the
smoke scripts and the tests all read this table; ``tests/test_kinds.py`` checks that no other
module spells a list of kinds.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["KINDS", "Kind", "KindName", "kind_of"]

KindName = Literal["openai-chat", "openai-responses", "anthropic", "openrouter", "local",
                   "scripted"]
"""The values of ``providers.<name>.kind`` (the keys of ``KINDS``, in the same order)."""


@attrs.frozen
class Kind:
    """What one provider kind is.

    ``protocol``: the wire codec (``runtime.wire.codec_for``), or None for a provider that
    runs in process (no HTTP). ``dialect``: the codec's variant for this kind (see
    ``runtime.wire.openai_chat_request``). ``key_env``: the variable users conventionally
    keep the key in (named in the fix of a missing key). ``openai_base``: the base URL ends
    in the API version (``/v1``) and the codec appends ``/chat/completions`` or
    ``/responses``. ``free``: the model costs nothing unless ``pricing:`` says otherwise
    (a server on this machine, a script), so a cost budget needs no price for it.
    """

    name: KindName
    protocol: str | None
    dialect: str | None = None
    base_url: str | None = None
    key_env: str | None = None
    key_required: bool = False
    openai_base: bool = False
    free: bool = False

    @property
    def in_process(self) -> bool:
        """True for a provider answered in process, without HTTP (``scripted``)."""
        return self.protocol is None


KINDS: dict[str, Kind] = {k.name: k for k in (
    # also every OpenAI-compatible server (vLLM, LM Studio, Ollama, llama.cpp) by base_url
    Kind("openai-chat", "openai-chat", base_url="https://api.openai.com/v1",
         key_env="OPENAI_API_KEY", key_required=True, openai_base=True),
    Kind("openai-responses", "openai-responses", base_url="https://api.openai.com/v1",
         key_env="OPENAI_API_KEY", key_required=True, openai_base=True),
    Kind("anthropic", "anthropic", base_url="https://api.anthropic.com",
         key_env="ANTHROPIC_API_KEY", key_required=True),
    Kind("openrouter", "openai-chat", "openrouter", base_url="https://openrouter.ai/api/v1",
         key_env="OPENROUTER_API_KEY", key_required=True, openai_base=True),
    # a server on this machine (llama.cpp's llama-server, LM Studio, Ollama): no key, no price
    Kind("local", "openai-chat", "local", base_url="http://127.0.0.1:8080/v1",
         key_env="LOCAL_API_KEY", openai_base=True, free=True),
    # in process, deterministic answers from a script (tests, the demo)
    Kind("scripted", None, free=True),
)}


def kind_of(name: str) -> Kind:
    """The entry of ``name``; a ``KeyError`` naming the known kinds for anything else."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown provider kind {name!r}; known: {', '.join(KINDS)}") from None
