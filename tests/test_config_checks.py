"""The config rules that look past a single key: the workspace on disk, a blank task, a cost
budget without prices, tools.shell_env, and the request params defined once (runtime.model.
Params) from agent.yaml to the request. Each bad case exits 2 from the command line too."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from runtime.cli import main
from runtime.config import Overrides, load_config
from runtime.config.schema import normalise
from runtime.errors import ConfigError
from runtime.model import Params, Response, TextPart, Usage
from runtime.pricing import Price, PriceTable
from runtime.providers.kinds import KINDS
from runtime.testing import ScriptedProvider

ENV = {"OPENAI_API_KEY": "sk-openai-test-5678", "ANTHROPIC_API_KEY": "sk-ant-test-1234"}
BASE: dict[str, Any] = {
    "provider": "main",
    "providers": {
        # a closed port: should a check ever let a bad config through, nothing leaves the host
        "main": {"kind": "openai-chat", "model": "gpt-4o", "api_key": "${OPENAI_API_KEY}",
                 "base_url": "http://127.0.0.1:9/v1"},
        "backup": {"kind": "anthropic", "model": "claude-sonnet-4-5",
                   "api_key": "${ANTHROPIC_API_KEY}", "base_url": "http://127.0.0.1:9"},
    },
    "fallbacks": ["backup"],
    "task": "do it",
    "tools": {"workspace": "./ws"},
    "limits": {"max_cost_usd": 1.0},
}


def base(**top: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(top)
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    data = {**data, "logging": {"dir": str(tmp_path / "logging")}}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def bad(tmp_path: Path, data: dict[str, Any], path: str, *words: str,
        env: dict[str, str] | None = None, **kw: Any) -> ConfigError:
    """Loading fails naming the file, the key path and a fix."""
    file = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(file, environ=env or ENV, **kw)
    err, text = info.value, str(info.value)
    assert err.file == str(file) and err.path == path and path in text
    assert err.fix and "fix:" in text
    for word in words:
        assert word in text, (word, text)
    return err


def cli(tmp_path: Path, data: dict[str, Any], *argv: str,
        monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run the command line on ``data`` with ENV set; returns (exit code, stdout, stderr)."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(write(tmp_path, data)), *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# -- tools.workspace ------------------------------------------------------------------------

def test_workspace_that_is_a_file(tmp_path: Path) -> None:
    """A workspace naming an existing file is an error that names tools.workspace."""
    (tmp_path / "ws").write_text("not a folder")
    bad(tmp_path, base(), "tools.workspace", "is a file", str(tmp_path / "ws"))


def test_missing_workspace_under_a_missing_parent(tmp_path: Path) -> None:
    """A typo'd workspace whose parent does not exist is an error, and nothing is created."""
    data = base(tools={"workspace": "./wrokspace/project/ws"})
    bad(tmp_path, data, "tools.workspace", "does not exist", "mkdir -p")
    assert not (tmp_path / "wrokspace").exists()


def test_missing_workspace_under_an_existing_parent_loads_without_creating_it(
        tmp_path: Path) -> None:
    """A missing workspace whose parent exists is accepted (the session creates it) and the
    loader itself creates nothing."""
    cfg = load_config(write(tmp_path, base()), environ=ENV)
    assert cfg.tools.workspace == str((tmp_path / "ws").resolve())
    assert not (tmp_path / "ws").exists()


def test_workspace_symlink_to_a_folder_is_a_folder(tmp_path: Path) -> None:
    """A workspace given as a symlink to a folder is that folder."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cfg = load_config(write(tmp_path, base(tools={"workspace": "link"})), environ=ENV)
    assert cfg.tools.workspace == str((tmp_path / "real").resolve())


# -- task -----------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["", "   ", " \n\t "])
def test_blank_task_in_the_file(tmp_path: Path, task: str) -> None:
    """An empty or whitespace-only task: is an error naming task."""
    bad(tmp_path, base(task=task), "task", "task is")


def test_blank_task_from_the_command_line(tmp_path: Path) -> None:
    """A whitespace-only --task is an error naming task and the flag."""
    bad(tmp_path, base(), "task", "whitespace", "--task", overrides=Overrides(task="  \n"))


# -- limits.max_cost_usd needs prices -------------------------------------------------------

def test_unpriced_main_model_with_a_cost_budget(tmp_path: Path) -> None:
    """A budget over a model without a price names the model and the pricing: entry that
    would fix it."""
    data = base()
    data["providers"]["main"]["model"] = "my-model"
    bad(tmp_path, data, "providers.main.model", "'my-model'", "limits.max_cost_usd",
        "pricing: {my-model: {input: ..., output: ...}}")


def test_unpriced_fallback_model_with_a_cost_budget(tmp_path: Path) -> None:
    """Every fallback that may take a turn needs a price too."""
    data = base()
    data["providers"]["backup"]["model"] = "claude-next"
    bad(tmp_path, data, "providers.backup.model", "'claude-next'", "pricing:")


def test_unpriced_model_chosen_by_a_flag(tmp_path: Path) -> None:
    """--model choosing an unpriced model fails the same way and names the flag."""
    bad(tmp_path, base(), "providers.main.model", "--model", "pricing:",
        overrides=Overrides(model="gpt-x"))


def test_a_pricing_entry_or_no_budget_makes_it_load(tmp_path: Path) -> None:
    """The fix works: a pricing: entry for the model, or no max_cost_usd at all."""
    data = base(pricing={"my-model": {"input": 1.0, "output": 2.0}})
    data["providers"]["main"]["model"] = "my-model"
    cfg = load_config(write(tmp_path, data), environ=ENV)
    assert cfg.price_table().price("my-model") == Price(1.0, 2.0)
    data = base(limits={})
    data["providers"]["main"]["model"] = "my-model"
    assert load_config(write(tmp_path, data), environ=ENV).main.model == "my-model"


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if v.free])
def test_free_kinds_need_no_price(tmp_path: Path, kind: str) -> None:
    """Kinds the table marks free (local, scripted) take a budget without any pricing."""
    data = base(fallbacks=[])
    data["providers"]["main"] = {"kind": kind, "model": "homegrown-model",
                                 "script": [{"text": "hi"}]}
    if not KINDS[kind].in_process:
        del data["providers"]["main"]["script"]
    assert load_config(write(tmp_path, data), environ=ENV).main.kind == kind


def test_price_table_only_user_prices_for_free_kinds() -> None:
    """builtin=False looks at the pricing: entries alone; the built-in table is ignored."""
    table = PriceTable({"Gemma-3": Price(0.5, 0.5)})
    assert table.price("gpt-4o") is not None and table.price("gpt-4o", builtin=False) is None
    assert table.price("gemma-3-270m", builtin=False) == Price(0.5, 0.5)
    assert table.cost("gpt-4o", Usage(1_000_000, 0), builtin=False) is None


async def test_free_kind_sessions_cost_zero_without_a_warning(write_config: Any,
                                                              run_agent: Any) -> None:
    """A scripted session on a model no table prices counts cost 0, not "unpriced", and
    warns about nothing; a pricing: entry for it still applies."""
    answer = Response("r", "homegrown", [TextPart("done")], "stop", "stop", Usage(500, 500))
    cfg = {"provider": "main", "task": "go", "limits": {"max_cost_usd": 1.0},
           "providers": {"main": {"kind": "scripted", "model": "homegrown",
                                  "script": [{"text": "unused"}]}}}
    run = await run_agent(write_config(cfg), providers={"main": ScriptedProvider("main",
                                                                                 [answer])})
    assert run.outcome.exit_code == 0
    assert run.summary["totals"]["cost_usd"] == 0.0
    assert [u["cost_usd"] for u in run.events("usage")] == [0.0]
    assert run.events("warning") == [] and "price" not in run.err
    priced = dict(cfg, pricing={"homegrown": {"input": 1000.0, "output": 0.0}})
    run = await run_agent(write_config(priced, "priced.yaml"),
                          providers={"main": ScriptedProvider("main", [answer])})
    assert [u["cost_usd"] for u in run.events("usage")] == [0.5]


# -- tools.shell_env ------------------------------------------------------------------------

def test_shell_env_names(tmp_path: Path) -> None:
    """tools.shell_env defaults to empty and takes variable names."""
    assert load_config(write(tmp_path, base()), environ=ENV).tools.shell_env == []
    data = base(tools={"workspace": "./ws", "shell_env": ["LANG", "PIP_INDEX_URL", "_X1"]})
    cfg = load_config(write(tmp_path, data), environ=ENV)
    assert cfg.tools.shell_env == ["LANG", "PIP_INDEX_URL", "_X1"]


@pytest.mark.parametrize("name", ["MY-VAR", "1ST", "A B", "", "$HOME"])
def test_shell_env_rejects_what_is_not_a_variable_name(tmp_path: Path, name: str) -> None:
    """Each entry must be a variable name, not a value or an expression."""
    data = base(tools={"workspace": "./ws", "shell_env": ["LANG", name]})
    bad(tmp_path, data, "tools.shell_env[1]", "not an environment variable name")


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "OPENROUTER_API_KEY", "CONDUCTOR_TRACE_KEY",
                                  "MY_KEY_VAR"])
def test_shell_env_never_passes_a_key(tmp_path: Path, name: str) -> None:
    """A provider key variable, the trace key variable, or any variable holding a secret of
    the config cannot be passed to run_shell."""
    data = base(tools={"workspace": "./ws", "shell_env": [name]})
    data["providers"]["main"]["api_key"] = "${MY_KEY_VAR}"
    bad(tmp_path, data, "tools.shell_env[0]", "holds a key",
        env={**ENV, "MY_KEY_VAR": "sk-from-another-variable-42"})


# -- params: one definition, from agent.yaml to the request ---------------------------------

EVERY_PARAM: dict[str, Any] = {
    "temperature": 0.3, "top_p": 0.9, "max_tokens": 77, "stop": ["END", "STOP"], "seed": 7,
    "tool_choice": "auto", "parallel_tool_calls": False,
    "response_format": {"type": "json_object"}, "reasoning_effort": "low",
    "reasoning_summary": "auto", "thinking_budget": 2048, "extra": {"user": "u-1"},
}


def test_every_param_is_a_config_key() -> None:
    """The config's params are exactly the fields of runtime.model.Params."""
    assert set(EVERY_PARAM) == set(Params.__struct_fields__)


async def test_every_param_reaches_the_request(write_config: Any, run_agent: Any) -> None:
    """Each Params field set in agent.yaml arrives, as written, in the provider's request."""
    provider = ScriptedProvider("main", [Response("r", "m", [TextPart("ok")], "stop", "stop",
                                                  Usage(1, 1))])
    cfg = {"provider": "main", "task": "go",
           "providers": {"main": {"kind": "scripted", "script": [{"text": "unused"}],
                                  "params": EVERY_PARAM}}}
    run = await run_agent(write_config(cfg), providers={"main": provider})
    assert run.outcome.exit_code == 0
    (req,) = provider.requests
    assert msgspec.structs.asdict(req.params) == EVERY_PARAM


def test_a_single_stop_string_is_a_list(tmp_path: Path) -> None:
    """`stop: END` is the one shorthand; it becomes ["END"] before decoding."""
    data = base()
    data["providers"]["main"]["params"] = {"stop": "END"}
    assert load_config(write(tmp_path, data), environ=ENV).main.params.stop == ["END"]
    raw: dict[str, Any] = {"providers": {"a": {"params": {"stop": "X"}}, "b": "not a map"}}
    normalise(raw)
    assert raw["providers"]["a"]["params"]["stop"] == ["X"]


@pytest.mark.parametrize(("field", "value", "word"), [
    ("temperature", "hot", "number"), ("temperature", -0.5, ">= 0"), ("top_p", 1.5, "<= 1"),
    ("max_tokens", 0, ">= 1"), ("max_tokens", 2.5, "integer"), ("stop", 5, "list"),
    ("seed", "lucky", "integer"), ("tool_choice", ["auto"], "string"),
    ("parallel_tool_calls", "maybe", "true or false"), ("response_format", "json", "mapping"),
    ("reasoning_effort", {"level": 1}, "string"), ("reasoning_summary", [1], "string"),
    ("thinking_budget", 0, ">= 1"), ("extra", ["user"], "mapping"),
])
def test_a_bad_param_names_its_key(tmp_path: Path, field: str, value: Any, word: str) -> None:
    """A wrong type or an out-of-range value names providers.main.params.<field>."""
    data = base()
    data["providers"]["main"]["params"] = {field: value}
    bad(tmp_path, data, f"providers.main.params.{field}", word)


def test_an_unknown_param_suggests_the_closest(tmp_path: Path) -> None:
    """A misspelt param is an unknown key with a "did you mean"."""
    data = base()
    data["providers"]["main"]["params"] = {"max_token": 10}
    bad(tmp_path, data, "providers.main.params.max_token", "did you mean 'max_tokens'")


# -- the command line: each bad case exits 2 and starts nothing -----------------------------

CLI_BAD: dict[str, tuple[Any, tuple[str, ...], str]] = {
    "workspace_is_a_file": ("file", (), "tools.workspace"),
    "workspace_parent_missing": ({"tools": {"workspace": "./no/such/ws"}}, (), "tools.workspace"),
    "blank_task_in_file": ({"task": "   "}, (), "task"),
    "blank_task_flag": ({}, ("--task", " \t "), "task"),
    "unpriced_with_budget": ({"limits": {"max_cost_usd": 0.5}}, ("--model", "gpt-x"),
                             "providers.main.model"),
    "unpriced_fallback": ({"providers": "backup-unpriced"}, (), "providers.backup.model"),
    "bad_shell_env": ({"tools": {"workspace": "./ws", "shell_env": ["NOT-A-NAME"]}}, (),
                      "tools.shell_env[0]"),
}


@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_bad_config_exits_2_before_anything_starts(case: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case exits 2 with one message naming the file and the key path; no run folder,
    no workspace is created and stdout stays empty."""
    change, argv, key = CLI_BAD[case]
    data = base()
    if change == "file":
        (tmp_path / "ws").write_text("a file")
    elif change.get("providers") == "backup-unpriced":
        data["providers"]["backup"]["model"] = "claude-next"
    else:
        data.update(change)
    code, out, err = cli(tmp_path, data, *argv, monkeypatch=monkeypatch)
    assert code == 2, err
    assert out == "" and "Traceback" not in err
    assert "agent.yaml" in err and key in err and "fix:" in err
    assert not (tmp_path / "logging").exists() and not (tmp_path / "no").exists()


def test_the_config_knows_every_builtin_tool() -> None:
    """tools.builtin accepts exactly the built-in tools the tools package provides."""
    from runtime.config import BUILTIN_TOOLS
    from runtime.tools.builtin import BUILTIN_NAMES

    assert BUILTIN_TOOLS == BUILTIN_NAMES
