"""Window lookups (table, overrides, beta headers, /props) and the /props fetch."""

from __future__ import annotations

import httpx
import pytest

from runtime.context import (
    WindowTable,
    context_window,
    fetch_props_window,
    props_url,
    tokenizer_for,
    window_from_props,
)
from runtime.errors import ErrorKind, ProviderError
from runtime.testing import open_fake_server


@pytest.mark.parametrize(("model", "window"), [
    ("gpt-5", 400_000), ("gpt-5-mini-2025-08-07", 400_000), ("gpt-5.1", 400_000),
    ("gpt-5-chat-latest", 128_000), ("gpt-4.1-nano-2025-04-14", 1_047_576),
    ("gpt-4o-mini-2024-07-18", 128_000), ("openai/gpt-4o", 128_000), ("o3", 200_000),
    ("o4-mini", 200_000), ("o1-mini", 128_000), ("gpt-4", 8_192),
    ("claude-sonnet-4-5-20250929", 200_000), ("anthropic/claude-sonnet-4.5", 200_000),
    ("claude-3-5-haiku-latest", 200_000), ("claude-opus-4-6", 1_000_000),
    ("claude-sonnet-4-6", 1_000_000), ("claude-haiku-4-5", 200_000),
    ("google/gemini-2.5-pro", 1_048_576), ("gemini-1.5-pro-002", 2_097_152),
    ("deepseek/deepseek-chat-v3.1", 128_000), ("deepseek-reasoner", 128_000),
    ("mistralai/mistral-large-2411", 131_072), ("codestral-latest", 256_000),
    ("meta-llama/llama-3.3-70b-instruct", 131_072), ("llama-3-8b-instruct", 8_192),
    ("qwen/qwen3-coder", 262_144), ("qwen/qwen3-32b", 40_960),
    ("google/gemma-3-27b-it:free", 131_072), ("gemma-3-270m", 32_768),
])
def test_known_models(model: str, window: int) -> None:
    """Families match through provider prefixes, dots, date and free suffixes."""
    assert WindowTable().window(model) == window


def test_unknown_and_overrides() -> None:
    """Unknown models have no window; config and /props win over the table; a beta
    header widens Sonnet 4/4.5 to 1M."""
    assert WindowTable().window("totally-new-model") is None
    assert WindowTable({"totally-new-model": 5_000}).window("totally-new-model-v2") == 5_000
    assert context_window("gpt-4o", override=9_000, props=4_096) == 9_000
    assert context_window("gemma-3-270m", props=4_096) == 4_096
    assert context_window("claude-sonnet-4-5") == 200_000
    headers = {"Anthropic-Beta": "foo-2025-01-01, context-1m-2025-08-07"}
    assert context_window("claude-sonnet-4-5", headers=headers) == 1_000_000
    assert context_window("claude-opus-4-1", headers=headers) == 200_000


def test_props_shapes() -> None:
    """n_ctx is read from default_generation_settings, else the top level."""
    assert window_from_props({"default_generation_settings": {"n_ctx": 4096}}) == 4096
    assert window_from_props({"n_ctx": 8192}) == 8192
    assert window_from_props({"default_generation_settings": {}}) is None
    assert window_from_props({"n_ctx": True}) is None
    assert window_from_props([1, 2]) is None
    assert props_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/props"
    assert props_url("http://h:1") == "http://h:1/props"


def test_tokenizer_only_when_usable_offline() -> None:
    """A tokenizer is used when its loader gives one; otherwise the estimator serves."""

    class Words:
        def encode(self, text: str, disallowed_special: object = ()) -> list[str]:
            return text.split()

    count = tokenizer_for("gpt-4o", loader=lambda name: Words())
    assert count is not None and count("a b c") == 3
    assert tokenizer_for("claude-sonnet-4-5", loader=lambda name: Words()) is None
    assert tokenizer_for("gpt-4o", loader=lambda name: None) is None

    def broken(name: str) -> object:
        raise ImportError("no tiktoken")

    assert tokenizer_for("gpt-4o", loader=broken) is None


async def test_props_of_a_server_without_them_is_none() -> None:
    """A server that is not llama.cpp (404 on /props) has no window to tell."""
    async with open_fake_server([]) as server, httpx.AsyncClient() as client:
        assert await fetch_props_window(client, server.base_url("local")) is None


async def test_props_of_an_unreachable_server_is_a_connection_error() -> None:
    """Nothing listening: a typed connection error, not an httpx exception."""
    from scripts.local_model import free_port

    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as info:
            await fetch_props_window(client, f"http://127.0.0.1:{free_port()}/v1",
                                     provider="local")
    assert info.value.kind is ErrorKind.CONNECTION and info.value.provider == "local"
