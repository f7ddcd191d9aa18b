"""agent.yaml loading: schema, interpolation, .env, overrides, errors and the examples."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.config import (
    BUILTIN_TOOLS,
    AgentConfig,
    Overrides,
    interpolate,
    load_config,
    parse_dotenv,
)
from runtime.errors import ConfigError
from runtime.model import Params
from runtime.providers.kinds import KINDS

REPO = Path(__file__).resolve().parent.parent
ENV = {"ANTHROPIC_API_KEY": "sk-ant-test-1234", "OPENAI_API_KEY": "sk-openai-test-5678",
       "OPENROUTER_API_KEY": "sk-or-test-9012"}

BASE: dict[str, Any] = {
    "provider": "main",
    "providers": {
        "main": {
            "kind": "anthropic", "model": "claude-sonnet-4-5",
            "api_key": "${ANTHROPIC_API_KEY}", "models": ["claude-sonnet-4-5", "claude-opus"],
            "params": {"temperature": 0.2, "max_tokens": 4096},
            "timeout": {"connect": 10, "read": 120, "total": 600},
            "retry": {"max_attempts": 5, "base_delay": 0.5, "max_delay": 30},
            "rate_limit": {"requests_per_minute": 50, "tokens_per_minute": 80000},
        },
        "backup": {"kind": "openai-chat", "model": "gpt-4o", "api_key": "${OPENAI_API_KEY}"},
    },
    "fallbacks": ["backup"],
    "system": "You are a test.",
    "task": "do it",
    "tools": {
        "builtin": ["read_file", "write_file", "list_dir", "run_shell"],
        "workspace": "./ws",
        "approval": {"run_shell": "ask", "time__*": "auto", "docs__search": "deny"},
        "timeout": 60,
        "mcp": {"time": {"command": "python", "args": ["-m", "mcp_server_time"], "env": {}},
                "docs": {"url": "http://127.0.0.1:9000/mcp"}},
    },
    "limits": {"max_turns": 30, "max_total_tokens": 500000, "max_cost_usd": 2.0},
    "cache": {"mode": "bypass", "path": ".conductor/cache", "hash_prompts": False},
    "logging": {"dir": "logging", "redact": ["(?i)password=\\S+"]},
    "reasoning": {"encrypt": True, "key_env": "CONDUCTOR_TRACE_KEY"},
    "pricing": {"claude-opus": {"input": 15, "output": 75}},  # for max_cost_usd
}


def write(tmp_path: Path, data: Any, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), "utf-8")
    return path


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def load(tmp_path: Path, data: Any, env: dict[str, str] | None = None, **kw: Any) -> AgentConfig:
    return load_config(write(tmp_path, data), environ=ENV if env is None else env, **kw)


def bad(tmp_path: Path, data: Any, path: str, *words: str, env: dict[str, str] | None = None,
        **kw: Any) -> ConfigError:
    """Loading must fail with a ConfigError naming the file, ``path`` and a fix."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env, **kw)
    err, text = info.value, str(info.value)
    assert "agent.yaml" in text and err.file is not None and err.file.endswith("agent.yaml")
    assert err.path == path and path in text
    assert err.fix and "fix:" in text
    for word in words:
        assert word in text, (word, text)
    return err


def set_in(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *head, last = dotted.split(".")
    node = data
    for key in head:
        node = node[key]
    node[last] = value
    return data


# -- a good config --------------------------------------------------------------------------

def test_architecture_example_loads_with_types_and_defaults(tmp_path: Path) -> None:
    """The ARCHITECTURE.md example decodes into typed Structs, defaults filled in."""
    cfg = load(tmp_path, base())
    main = cfg.main
    assert main.kind == "anthropic" and main.api_key == ENV["ANTHROPIC_API_KEY"]
    assert main.base_url == "https://api.anthropic.com"
    assert main.retry.max_attempts == 5 and isinstance(main.timeout.connect, float)
    assert main.circuit.failure_threshold == 5 and main.circuit.cooldown == 30
    assert main.streaming_fallback_kinds == ["streaming_unsupported"]
    assert main.stream is True and main.cache_system is False and main.store is None
    assert cfg.providers["backup"].base_url == "https://api.openai.com/v1"
    assert cfg.provider_chain() == ["main", "backup"]
    assert cfg.tools.mcp["time"].args == ["-m", "mcp_server_time"]
    assert cfg.tools.mcp["docs"].url and cfg.tools.mcp["docs"].command is None
    assert cfg.tools.max_output_chars == 20000
    assert cfg.cache.max_bytes == 268435456 and cfg.logging.format == "console"
    assert cfg.source == (tmp_path / "agent.yaml").resolve() and cfg.config_dir == tmp_path


def test_workspace_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    """A relative workspace is relative to the config file, not the working directory."""
    sub = tmp_path / "conf"
    sub.mkdir()
    cfg = load_config(write(sub, base()), environ=ENV)
    assert Path(cfg.tools.workspace) == (sub / "ws").resolve()
    assert cfg.tools.workspace_path.is_absolute()


@pytest.mark.parametrize("kind", list(KINDS))
def test_base_url_defaults_per_kind(tmp_path: Path, kind: str) -> None:
    """Each kind gets its vendor's base URL when none is given."""
    data = base()
    data["providers"] = {"main": {"kind": kind, "model": "m", "api_key": "k-12345"}}
    data["fallbacks"] = []
    data["pricing"] = {"m": {"input": 1, "output": 1}}
    if kind == "scripted":
        data["providers"]["main"]["script"] = [{"text": "hi"}]
    cfg = load(tmp_path, data)
    assert cfg.main.base_url == KINDS[kind].base_url


def test_explicit_base_url_loses_trailing_slash(tmp_path: Path) -> None:
    data = set_in(base(), "providers.backup.base_url", "http://127.0.0.1:1234/v1/")
    assert load(tmp_path, data).providers["backup"].base_url == "http://127.0.0.1:1234/v1"


def test_request_params_match_the_model_params(tmp_path: Path) -> None:
    """params decode to runtime.model.Params with the same names; a single stop is a list."""
    params = {"temperature": 0, "top_p": 0.9, "max_tokens": 10, "stop": "END", "seed": 7,
              "tool_choice": "auto", "parallel_tool_calls": False,
              "response_format": {"type": "json_object"}, "reasoning_effort": "low",
              "reasoning_summary": "auto", "thinking_budget": 2048, "extra": {"user": "u"}}
    cfg = load(tmp_path, set_in(base(), "providers.main.params", params))
    got = cfg.main.params
    assert isinstance(got, Params)
    assert msgspec.structs.asdict(got) == {**params, "stop": ["END"]}
    assert set(msgspec.structs.asdict(got)) == set(Params.__struct_fields__)


def test_secrets_lists_every_api_key(tmp_path: Path) -> None:
    data = set_in(base(), "providers.backup.headers", {"Authorization": "Bearer hdr-secret"})
    data["tools"]["mcp"]["time"]["env"] = {"GITHUB_TOKEN": "tok-999", "LANG": "C"}
    secrets = load(tmp_path, data).secrets()
    assert ENV["ANTHROPIC_API_KEY"] in secrets and ENV["OPENAI_API_KEY"] in secrets
    assert "Bearer hdr-secret" in secrets and "tok-999" in secrets and "C" not in secrets


def test_scripted_provider_script_decodes(tmp_path: Path) -> None:
    data = base()
    data["providers"]["main"] = {"kind": "scripted", "script": [
        {"text": "a", "tool_calls": [{"name": "list_dir", "arguments": {"path": "."}}]},
        {"reasoning": "why", "text": "done"}]}
    main = load(tmp_path, data).main
    assert main.model == "scripted" and main.api_key is None and main.base_url is None
    assert main.script[0].tool_calls[0].arguments == {"path": "."}
    assert main.script[1].reasoning == "why" and main.script[1].tool_calls == []


def test_pricing_entries(tmp_path: Path) -> None:
    """User prices are USD per million tokens; the optional cache prices may be left out."""
    data = set_in(base(), "pricing", {"gpt-4.1": {"input": 2, "output": 8, "cached_input": 0.5}})
    price = load(tmp_path, data).pricing["gpt-4.1"]
    assert (price.input, price.output, price.cached_input, price.cache_write) == (2, 8, 0.5, None)
    bad(tmp_path, set_in(base(), "pricing", {"m": {"input": -1, "output": 1}}),
        "pricing.m.input", ">= 0")


# -- interpolation and .env -----------------------------------------------------------------

def test_interpolation_forms(tmp_path: Path) -> None:
    """${VAR}, ${VAR:-default} (unset or empty), $${ literal, inside longer strings and lists."""
    data = base()
    data["system"] = "hi ${WHO}, ${NOPE:-fallback}/${EMPTY:-dflt} costs $${PRICE}"
    data["logging"]["redact"] = ["${PAT}"]
    cfg = load(tmp_path, data, env={**ENV, "WHO": "Ada", "EMPTY": "", "PAT": "secret-\\d+"})
    assert cfg.system == "hi Ada, fallback/dflt costs ${PRICE}"
    assert cfg.logging.redact == ["secret-\\d+"]


def test_interpolated_numbers_are_coerced(tmp_path: Path) -> None:
    data = set_in(base(), "limits.max_turns", "${TURNS:-12}")
    assert load(tmp_path, data).limits.max_turns == 12
    assert load(tmp_path, data, env={**ENV, "TURNS": "3"}).limits.max_turns == 3


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_a_variable_value_cannot_inject_yaml(tmp_path_factory: pytest.TempPathFactory,
                                              value: str) -> None:
    """Whatever the variable holds (YAML syntax, newlines, ${...}) arrives verbatim."""
    tmp = tmp_path_factory.mktemp("inj")
    data = base()
    data["system"] = "${VALUE}"
    cfg = load(tmp, data, env={**ENV, "VALUE": value})
    assert cfg.system == value and cfg.task == "do it"


def test_dotenv_is_read_without_overriding_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# keys\nexport ANTHROPIC_API_KEY='from-dotenv-1'\nOPENAI_API_KEY=\"dot\\\"env\"\n"
        "WHO=dotenv # a comment\n\n", "utf-8")
    data = base()
    data["system"] = "${WHO}"
    before = dict(os.environ)
    cfg = load(tmp_path, data, env={"ANTHROPIC_API_KEY": "from-environ-2"})
    assert dict(os.environ) == before
    assert cfg.main.api_key == "from-environ-2"
    assert cfg.providers["backup"].api_key == 'dot"env' and cfg.system == "dotenv"
    assert cfg.environ["WHO"] == "dotenv" and cfg.environ["ANTHROPIC_API_KEY"] == "from-environ-2"


def test_parse_dotenv_rejects_a_line_that_is_not_key_value() -> None:
    assert parse_dotenv("A=1\n  export B = two words \nC='x # y'\n") == {
        "A": "1", "B": "two words", "C": "x # y"}
    with pytest.raises(ConfigError, match=r"line 2") as info:
        parse_dotenv("A=1\nnot a pair\n", file="conf/.env")
    assert info.value.file == "conf/.env"


def test_interpolate_rejects_a_malformed_reference() -> None:
    assert interpolate("plain", {}, file="f", path="p") == "plain"
    with pytest.raises(ConfigError, match="malformed") as info:
        interpolate("x ${1BAD}", {}, file="a.yaml", path="system")
    assert info.value.path == "system"


# -- overrides ------------------------------------------------------------------------------

def test_overrides_are_applied(tmp_path: Path) -> None:
    """--provider/--model/--max-turns/--cache/--task change the loaded config."""
    cfg = load(tmp_path, base(), overrides=Overrides(
        provider="backup", model="gpt-4o-mini", max_turns=4, cache="replay", task="new"))
    assert cfg.provider == "backup" and cfg.main.model == "gpt-4o-mini"
    assert cfg.fallbacks == []  # the chosen provider is no longer its own fallback
    assert cfg.providers["main"].model == "claude-sonnet-4-5"
    assert (cfg.limits.max_turns, cfg.cache.mode, cfg.task) == (4, "replay", "new")
    cfg = load(tmp_path, base(), overrides={"model": "claude-opus"})
    assert cfg.main.model == "claude-opus"


def test_overrides_are_validated(tmp_path: Path) -> None:
    """An override that breaks a rule fails like the file would, and names its flag."""
    bad(tmp_path, base(), "providers.main.model", "--model", "allowlist",
        overrides=Overrides(model="gpt-x"))
    bad(tmp_path, base(), "cache.mode", "--cache", "replay", overrides={"cache": "replya"})
    bad(tmp_path, base(), "limits.max_turns", "--max-turns", overrides={"max_turns": 0})
    bad(tmp_path, base(), "provider", "--provider", overrides={"provider": "nope"})
    with pytest.raises(ConfigError, match="override"):
        load(tmp_path, base(), overrides={"modle": "x"})


# -- bad configs: each names the file, the key path and a fix -------------------------------

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(tmp_path / "agent.yaml", environ=ENV)
    assert "agent.yaml" in str(info.value) and info.value.fix


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    text = "provider: main\nproviders:\n  main: {kind: anthropic\n  x: [1, 2\n"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    found = re.search(r"line (\d+), column (\d+)", str(info.value))
    assert "agent.yaml" in str(info.value) and found and int(found[1]) >= 3


def test_empty_or_non_mapping_file(tmp_path: Path) -> None:
    for text in ("", "- a\n- b\n"):
        with pytest.raises(ConfigError, match=r"agent\.yaml"):
            load(tmp_path, text)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    data = base()
    data["providers"]["main"]["retyr"] = data["providers"]["main"].pop("retry")
    err = bad(tmp_path, data, "providers.main.retyr", "did you mean 'retry'")
    assert re.search(r"line \d+", str(err))
    data = base()
    data["limitz"] = data.pop("limits")
    bad(tmp_path, data, "limitz", "did you mean 'limits'")


def test_duplicate_key(tmp_path: Path) -> None:
    text = yaml.safe_dump(base()) + "provider: backup\n"
    bad(tmp_path, text, "provider", "duplicate")


@pytest.mark.parametrize(("dotted", "value", "words"), [
    ("providers.main.retry.max_attempts", "five", ("integer",)),
    ("providers.main.retry.max_attempts", 0, (">= 1",)),
    ("providers.main.timeout.read", -1, ("> 0",)),
    ("providers.main.rate_limit.requests_per_minute", 0, (">= 1",)),
    ("providers.main.stream", "maybe", ("true or false",)),
    ("tools.timeout", 0, ("> 0",)),
    ("tools.max_output_chars", -5, (">= 1",)),
    ("limits.max_turns", 0, (">= 1",)),
    ("limits.max_cost_usd", -2.0, ("> 0",)),
    ("limits.max_total_tokens", 0, (">= 1",)),
    ("cache.max_bytes", 0, (">= 1",)),
    ("providers.main.params.temperature", "hot", ("number",)),
    ("providers.backup.headers", ["X-A"], ("mapping",)),
])
def test_wrong_types_and_non_positive_values(tmp_path: Path, dotted: str, value: Any,
                                             words: tuple[str, ...]) -> None:
    """msgspec's `$.providers[...]` path comes back with the real provider name."""
    bad(tmp_path, set_in(base(), dotted, value), dotted, *words)


def test_wrong_type_deep_in_a_list(tmp_path: Path) -> None:
    data = base()
    data["providers"]["main"] = {"kind": "scripted", "script": [
        {"text": "ok"}, {"tool_calls": [{"name": "x", "arguments": "not-a-dict"}]}]}
    bad(tmp_path, data, "providers.main.script[1].tool_calls[0].arguments", "mapping")


def test_missing_required_key(tmp_path: Path) -> None:
    data = base()
    del data["providers"]["backup"]["kind"]
    bad(tmp_path, data, "providers.backup.kind", "missing", "openai-chat")
    data = base()
    del data["providers"]
    bad(tmp_path, data, "providers", "missing")


def test_missing_secret_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "OPENAI_API_KEY"}
    err = bad(tmp_path, base(), "providers.backup.api_key", "OPENAI_API_KEY", "not set", env=env)
    assert re.search(r"line \d+", str(err))


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if v.key_required])
def test_empty_api_key_for_a_kind_that_needs_one(tmp_path: Path, kind: str) -> None:
    data = base()
    data["providers"]["main"] = {"kind": kind, "model": "m", "api_key": "${KEY:-}"}
    data["fallbacks"] = []
    bad(tmp_path, data, "providers.main.api_key", "required", kind)


def test_local_kind_needs_no_key(tmp_path: Path) -> None:
    data = set_in(base(), "providers.backup", {"kind": "local", "model": "gemma"})
    assert load(tmp_path, data).providers["backup"].api_key is None


def test_unknown_provider_kind_lists_the_known_ones(tmp_path: Path) -> None:
    err = bad(tmp_path, set_in(base(), "providers.main.kind", "antropic"),
              "providers.main.kind", "unknown provider kind", "did you mean 'anthropic'")
    assert all(k in str(err) for k in KINDS)


def test_provider_must_name_an_entry(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "provider", "mian"), "provider", "did you mean 'main'")


def test_bad_fallbacks(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "fallbacks", ["backup", "bakup"]), "fallbacks[1]",
        "did you mean 'backup'")
    bad(tmp_path, set_in(base(), "fallbacks", ["main"]), "fallbacks[0]", "main provider")


def test_model_outside_the_allowlist(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "providers.main.model", "claude-sonet-4-5"),
        "providers.main.model", "allowlist", "did you mean 'claude-sonnet-4-5'")


def test_model_is_required_for_http_kinds(tmp_path: Path) -> None:
    data = base()
    del data["providers"]["backup"]["model"]
    bad(tmp_path, data, "providers.backup.model", "model")


def test_unknown_builtin_tool(tmp_path: Path) -> None:
    err = bad(tmp_path, set_in(base(), "tools.builtin", ["read_file", "readfile"]),
              "tools.builtin[1]", "did you mean 'read_file'")
    assert all(t in str(err) for t in BUILTIN_TOOLS)


def test_bad_approval_value_and_key(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "tools.approval", {"run_shell": "allow"}),
        "tools.approval.run_shell", "auto, ask, deny")
    bad(tmp_path, set_in(base(), "tools.approval", {"run_shel": "ask"}),
        "tools.approval.run_shel", "did you mean 'run_shell'")
    bad(tmp_path, set_in(base(), "tools.approval", {"clock__now": "auto"}),
        "tools.approval.clock__now", "no MCP server named 'clock'")


def test_invalid_redact_regex(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "logging.redact", ["ok", "(unclosed"]), "logging.redact[1]",
        "regular expression")


@pytest.mark.parametrize(("server", "word"), [
    ({"command": "python", "url": "http://x/mcp"}, "both"),
    ({"args": ["-m", "x"]}, "neither"),
])
def test_mcp_server_needs_exactly_one_of_command_and_url(tmp_path: Path, server: Any,
                                                         word: str) -> None:
    data = set_in(base(), "tools.mcp.time", server)
    bad(tmp_path, data, "tools.mcp.time", "exactly one", word)


def test_bad_cache_mode(tmp_path: Path) -> None:
    bad(tmp_path, set_in(base(), "cache.mode", "read-thru"), "cache.mode",
        "did you mean 'read-through'")


def test_script_only_for_scripted_and_required_there(tmp_path: Path) -> None:
    data = set_in(base(), "providers.backup.script", [{"text": "x"}])
    bad(tmp_path, data, "providers.backup.script", "scripted")
    data = set_in(base(), "providers.backup", {"kind": "scripted"})
    bad(tmp_path, data, "providers.backup.script", "needs a script")


def test_unknown_streaming_fallback_kind(tmp_path: Path) -> None:
    data = set_in(base(), "providers.main.streaming_fallback_kinds", ["streaming_unsuported"])
    bad(tmp_path, data, "providers.main.streaming_fallback_kinds[0]",
        "did you mean 'streaming_unsupported'")


def test_yaml_boolean_where_a_string_is_expected(tmp_path: Path) -> None:
    """`off` is a YAML boolean: the fix says to quote it."""
    text = yaml.safe_dump(base()).replace("run_shell: ask", "run_shell: off")
    bad(tmp_path, text, "tools.approval.run_shell", "quote")


# -- the examples in config/ ----------------------------------------------------------------

EXAMPLES = sorted((REPO / "config").glob("*.yaml"))


def test_every_required_example_exists() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"openai-chat.yaml", "openai-responses.yaml", "anthropic.yaml", "openrouter.yaml",
            "local.yaml", "demo.yaml"} <= names
    readme = (REPO / "config" / "README.md").read_text("utf-8")
    assert all(f"`{n}`" in readme for n in names)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    cfg = load_config(str(path), environ=ENV)
    assert cfg.provider in cfg.providers and cfg.source == path.resolve()
    for name, prov in cfg.providers.items():
        assert prov.kind in KINDS, name
        assert prov.kind == "scripted" or prov.base_url


def test_local_example_is_deterministic_and_keyless() -> None:
    main = load_config(REPO / "config" / "local.yaml", environ={}).main
    assert (main.kind, main.base_url, main.model) == ("local", "http://127.0.0.1:8080/v1",
                                                      "gemma-3-270m")
    assert main.api_key is None
    params = main.params
    assert params.temperature == 0 and params.seed == 1
    assert params.max_tokens is not None and params.max_tokens <= 512


def test_demo_example_calls_enabled_auto_approved_tools() -> None:
    cfg = load_config(REPO / "config" / "demo.yaml", environ={})
    script = cfg.main.script
    assert cfg.main.kind == "scripted" and 3 <= len(script) <= 4
    calls = [c.name for turn in script for c in turn.tool_calls]
    assert {"write_file", "read_file", "list_dir"} <= set(calls)
    assert all(c in cfg.tools.builtin and cfg.tools.approval[c] == "auto" for c in calls)
    assert script[-1].tool_calls == [] and script[-1].text
    assert Path(cfg.tools.workspace).is_relative_to(REPO)
